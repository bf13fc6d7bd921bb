//! The bad-input corpus: every POST route gets every kind of malformed body, and every GET route of
//! [`monitor_server::routes::ENDPOINTS`] gets hostile path segments and query strings. Each one
//! must be answered — never a 5xx, never a dropped connection — with a JSON 4xx carrying a
//! `message` (POST bodies with the exact status and the field at fault), and at the end the server
//! still answers and the database holds exactly what it held before the corpus.
//!
//! The corpus is generated, not listed: POST bodies start from a valid record and, for every
//! field, drop it, null it, give it every wrong JSON type and the values its rule forbids; GET
//! requests take each route's path from `ENDPOINTS`, so a new route is covered without a change
//! here. Requests are written on raw sockets so that bytes no HTTP client would send (invalid
//! percent-encoding, invalid UTF-8, `../`) reach the server as they are.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use actix_web::http::Method;
use monitor_server::routes::{BODY_LIMIT, ENDPOINTS};
use monitor_server::server::Options;
use serde_json::{json, Value};

use crate::common::spawn_app_with_options;
use crate::record_rules::{obeys, Field, Rule, CONTEXT_FIELDS, METRIC_FIELDS, SESSION_FIELDS};

/// How long one answer may take.
const ANSWER_DEADLINE: Duration = Duration::from_secs(30);

/// Client threads sending the GET corpus (the server has as many workers as cores).
const CLIENTS: usize = 4;

/// A 5 MB string: five times the body limit.
const FIVE_MB: usize = 5 * 1000 * 1000;

// ---------------------------------------------------------------- a raw HTTP/1.1 client

/// What the server answered.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

/// How a body is framed on the wire.
#[derive(Clone, Copy, PartialEq)]
enum Framing {
    ContentLength,
    Chunked,
}

/// Sends one request with `target` written exactly as given, on its own connection, and reads
/// the answer. The body is written on another thread, so a server that answers before reading
/// it all (413) is heard rather than deadlocked against.
fn exchange(
    addr: SocketAddr,
    method: &str,
    target: &str,
    content_type: Option<&str>,
    body: &[u8],
    framing: Framing,
) -> Result<Answer, String> {
    let mut stream = TcpStream::connect(addr).map_err(|err| format!("connect: {err}"))?;
    stream.set_read_timeout(Some(ANSWER_DEADLINE)).unwrap();
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(content_type) = content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    match framing {
        Framing::ContentLength => head.push_str(&format!("Content-Length: {}\r\n", body.len())),
        Framing::Chunked => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    head.push_str("\r\n");
    let mut writer = stream.try_clone().map_err(|err| err.to_string())?;
    let mut raw = Vec::new();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            // The server may close once it has answered; a failed write is then expected.
            let _ = writer.write_all(head.as_bytes());
            match framing {
                Framing::ContentLength => {
                    let _ = writer.write_all(body);
                }
                Framing::Chunked => {
                    for chunk in body.chunks(64 * 1024) {
                        let framed =
                            [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
                        if writer.write_all(&framed).is_err() {
                            return;
                        }
                    }
                    let _ = writer.write_all(b"0\r\n\r\n");
                }
            }
        });
        // Read until the answer is complete (or the connection ends: an answer followed by a
        // reset is still in `raw`), then close both ways, which also ends a write the server
        // stopped reading.
        let mut buffer = [0; 64 * 1024];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buffer[..n]),
            }
            if parse_answer(&raw).is_ok() {
                break;
            }
        }
        let _ = stream.shutdown(Shutdown::Both);
    });
    parse_answer(&raw)
}

/// Splits an HTTP/1.1 answer into status, Content-Type and (de-chunked) body.
fn parse_answer(raw: &[u8]) -> Result<Answer, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no answer: {:?}", String::from_utf8_lossy(raw)))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.strip_prefix("HTTP/1.1 "))
        .and_then(|line| line.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status line: {head:?}"))?;
    let headers: BTreeMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        dechunk(rest)?
    } else if let Some(length) = headers.get("content-length") {
        let length: usize = length.parse().map_err(|_| "bad Content-Length")?;
        rest.get(..length)
            .ok_or_else(|| format!("body cut short: {} of {length} bytes", rest.len()))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Answer {
        status,
        content_type: headers.get("content-type").cloned().unwrap_or_default(),
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("unterminated chunk size")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.trim(), 16).map_err(|_| "bad chunk size")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(rest.get(..size).ok_or("chunk cut short")?);
        rest = rest.get(size + 2..).ok_or("chunk cut short")?;
    }
}

/// Checks the rules every refusal obeys; `Err` says what is wrong.
fn check_refusal(answer: &Answer) -> Result<Value, String> {
    if !(400..500).contains(&answer.status) {
        return Err(format!("status {}", answer.status));
    }
    if answer.content_type != "application/json" {
        return Err(format!(
            "{} answered as {:?}: {}",
            answer.status,
            answer.content_type,
            String::from_utf8_lossy(&answer.body)
        ));
    }
    let body: Value = serde_json::from_slice(&answer.body).map_err(|err| {
        format!(
            "{} with invalid JSON ({err}): {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        )
    })?;
    match body["message"].as_str() {
        Some(message) if !message.is_empty() => Ok(body),
        _ => Err(format!("{} without a message: {body}", answer.status)),
    }
}

// ---------------------------------------------------------------- the POST corpus

/// A valid record for each POST route, with the rules of its fields. A POST route missing here
/// fails the test, so that a new one gets its corpus.
fn post_routes() -> Vec<(&'static str, Value, &'static [Field])> {
    vec![
        (
            "/metrics",
            json!({
                "session_h": "5e55107b2a4d0c1e9f1a6f0e6d39b3f6f5c8a7b1",
                "context_h": "c7a1e0f2b3d4e5f60718293a4b5c6d7e8f901234",
                "item_start_time": "2021-03-04T10:11:12.131415",
                "item_path": "tests.test_api",
                "item": "test_one",
                "item_variant": "test_one[1]",
                "item_fs_loc": "tests/test_api.py",
                "kind": "function",
                "component": "api",
                "total_time": 1.25,
                "user_time": 0.75,
                "kernel_time": 0.25,
                "cpu_usage": 0.8,
                "mem_usage": 12.5
            }),
            METRIC_FIELDS,
        ),
        (
            "/contexts",
            json!({
                "h": "c7a1e0f2b3d4e5f60718293a4b5c6d7e8f901234",
                "cpu_count": 8,
                "cpu_frequency": 2800.5,
                "cpu_type": "x86_64",
                "cpu_vendor": "GenuineIntel",
                "ram_total": 16384,
                "machine_node": "ci-runner-3",
                "machine_type": "x86_64",
                "machine_arch": "64bit",
                "system_info": "Linux - 5.15.0",
                "python_info": "3.11.4"
            }),
            CONTEXT_FIELDS,
        ),
        (
            "/sessions",
            json!({
                "session_h": "5e55107b2a4d0c1e9f1a6f0e6d39b3f6f5c8a7b1",
                "run_date": "2021-03-04T10:11:00.000001",
                "scm_ref": "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
                "description": {"description": "nightly", "pipeline_branch": "main"}
            }),
            SESSION_FIELDS,
        ),
    ]
}

/// One bad request to a POST route and the answer it must get.
struct PostCase {
    route: &'static str,
    what: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    framing: Framing,
    status: u16,
    /// The field `errors` must name, when one is at fault.
    blame: Option<String>,
}

/// The batch route, whose corpus is the single metric's ([`batch_cases`]).
const BATCH: &str = "/metrics/batch";

/// Each bad metric body of `cases` that is one line, sent to the batch route after a valid
/// `metric` line, as `application/x-ndjson`: the whole batch must be refused, blaming the same
/// field, and nothing stored (the test compares the tables before and after).
fn batch_cases(cases: &[PostCase], metric: &Value) -> Vec<PostCase> {
    cases
        .iter()
        .filter(|case| case.route == "/metrics" && case.status == 400)
        // A blank line is skipped by design, not a bad one.
        .filter(|case| !case.body.contains(&b'\n') && !case.body.trim_ascii().is_empty())
        .map(|case| {
            let mut body = to_bytes(metric);
            body.push(b'\n');
            body.extend_from_slice(&case.body);
            PostCase {
                route: BATCH,
                what: format!("line 2 {}", case.what),
                content_type: Some("application/x-ndjson"),
                body,
                framing: case.framing,
                status: 400,
                blame: case.blame.clone(),
            }
        })
        .collect()
}

/// Times that are not ISO 8601 as `isoformat()` writes it, or name no real instant.
const BAD_TIMES: &[&str] = &[
    "",
    "yesterday",
    "now",
    "2020-02-30T10:00:00",
    "2021-02-29T00:00:00",
    "2020-13-01T00:00:00",
    "2020-00-10T00:00:00",
    "2020-12-00T00:00:00",
    "2020-12-32T00:00:00",
    "2020-12-04T24:00:00",
    "2020-12-04T23:60:00",
    "2020-12-04T23:59:60",
    "2020-12-04T-1:00:00",
    "0000-01-01T00:00:00",
    "-2020-12-04T23:18:15",
    "+10000-01-01T00:00:00",
    "99999-12-31T23:59:59",
    "2020-12-04",
    "23:18:15",
    "2020-12-04T23:18",
    "2020-12-04T23:18:15.",
    "2020-12-04T23:18:15.1234567890",
    "2020-12-04T23:18:15.12a",
    "2020-12-04T23:18:15+25:00",
    "2020-12-04T23:18:15+05:60",
    "2020-12-04T23:18:15+0530",
    "2020-12-04T23:18:15+05",
    "2020-12-04T23:18:15ZZ",
    "2020-12-04T23:18:15 junk",
    "2020-12-04X23:18:15",
    "2020-12-04t23:18:15",
    "2020/12/04 23:18:15",
    " 2020-12-04T23:18:15",
    "2020-12-04T23:18:15\u{0}",
    "２０２０-12-04T23:18:15",
    "2020-12-04T23:18:15.661016\n",
    "1607123895",
];

/// Every JSON value of a type other than those `rule` accepts, plus the values of an accepted
/// type that the rule forbids.
fn bad_values(rule: Rule) -> Vec<Value> {
    let mut values = vec![Value::Null, json!(true), json!(false), json!([]), json!({})];
    let strings = [json!(""), json!("1"), json!("text")];
    let numbers = [json!(0), json!(1.5), json!(-1)];
    match rule {
        Rule::Text { non_empty, max } => {
            values.extend(numbers);
            values.extend([json!(["x"]), json!({"a": "b"})]);
            if non_empty {
                values.push(json!(""));
            }
            values.push(Value::String("x".repeat(max + 1)));
            values.push(Value::String("é".repeat(max + 1)));
            values.push(Value::String("x".repeat(10 * 1024)));
        }
        Rule::Time => {
            values.extend(numbers);
            values.extend([json!(["2020-12-04T23:18:15"]), json!({"t": 1})]);
            values.extend(BAD_TIMES.iter().map(|t| json!(t)));
        }
        Rule::NonNegative => {
            values.extend(strings);
            values.extend([json!([1]), json!({"n": 1})]);
            values.extend([json!(-1), json!(-0.000001), json!(-1e308), json!(-5e-324)]);
            values.push(json!(i64::MIN));
        }
        Rule::Number => {
            values.extend(strings);
            values.extend([json!([1]), json!({"n": 1})]);
        }
        Rule::Count => {
            values.extend(strings);
            values.extend([json!([1]), json!({"n": 1})]);
            values.extend([
                json!(-1),
                json!(-1.0),
                json!(1.5),
                json!(0.1),
                json!(1e300),
                json!(9.5e15),
                json!(i64::MIN),
                json!(u64::MAX),
            ]);
        }
        Rule::Object => {
            values.retain(|v| v != &json!({})); // no tags at all is a valid description
            values.extend(strings);
            values.extend(numbers);
            values.extend([json!(["a", "b"]), json!([{"a": 1}])]);
        }
    }
    values
}

fn to_bytes(value: &Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

/// `{"key": value,` followed by the rest of `base`'s text: `key` given once more, first.
fn with_key_first(base: &Value, key: &str, value: &str) -> Vec<u8> {
    let text = base.to_string();
    format!("{{{}:{value},{}", json!(key), &text[1..]).into_bytes()
}

/// Every bad body for one POST route.
fn post_cases(route: &'static str, base: &Value, fields: &[Field]) -> Vec<PostCase> {
    let json = Some("application/json");
    let mut cases = Vec::new();
    let mut case = |what: String, body: Vec<u8>, status: u16, blame: Option<&str>| {
        cases.push(PostCase {
            route,
            what,
            content_type: json,
            body,
            framing: Framing::ContentLength,
            status,
            blame: blame.map(str::to_owned),
        });
    };
    let base_text = base.to_string();

    // Field by field, under each spelling.
    for field in fields {
        for name in field.spellings() {
            let mut renamed = base.clone();
            let object = renamed.as_object_mut().unwrap();
            let good = object.remove(field.name).unwrap();
            if field.required && name == field.name {
                case(
                    format!("without {name}"),
                    to_bytes(&renamed),
                    400,
                    Some(name),
                );
            }
            for bad in bad_values(field.rule) {
                assert!(
                    !obeys(field.rule, &bad),
                    "the corpus of bad values holds {name} = {bad}, which obeys the rule \
                     (for times: which parse_iso8601 accepts)"
                );
                let mut body = renamed.clone();
                body[name] = bad.clone();
                let shown: String = bad.to_string().chars().take(40).collect();
                case(
                    format!("{name} = {shown}"),
                    to_bytes(&body),
                    400,
                    Some(name),
                );
            }
            // The same key twice, with the valid value both times.
            let mut once = renamed.clone();
            once[name] = good.clone();
            let duplicated = with_key_first(&once, name, &good.to_string());
            case(format!("{name} twice"), duplicated, 400, Some(name));
            // A value just under the body limit (past it, the field no longer matters: see the
            // 5 MB bodies below).
            let mut big = renamed.clone();
            big[name] = Value::String("y".repeat(BODY_LIMIT - base_text.len() - 64));
            case(
                format!("{name} = a 1 MB string"),
                to_bytes(&big),
                400,
                Some(name),
            );
            // Nesting far past any parser's depth, where the field's value goes.
            let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
            let nested = with_key_first(&renamed, name, &deep);
            case(format!("{name} nested 100,000 deep"), nested, 400, None);
        }
        // Two spellings of one field at once.
        for alias in field.aliases {
            let mut both = base.clone();
            both[*alias] = base[field.name].clone();
            case(
                format!("{} and {alias} together", field.name),
                to_bytes(&both),
                400,
                Some(field.name),
            );
        }
    }

    // Bodies that are not one JSON object, or are too large.
    let valid = to_bytes(base);
    let mut huge = base.clone();
    huge[fields[0].name] = Value::String("z".repeat(FIVE_MB));
    let not_objects: Vec<(&str, Vec<u8>)> = vec![
        ("an empty body", Vec::new()),
        ("whitespace", b" \n\t ".to_vec()),
        ("null", b"null".to_vec()),
        ("true", b"true".to_vec()),
        ("a number", b"42".to_vec()),
        ("a negative number", b"-1".to_vec()),
        ("an out-of-range number", b"1e999".to_vec()),
        ("a string", b"\"text\"".to_vec()),
        ("an empty array", b"[]".to_vec()),
        ("an array of the record", [b"[", &valid[..], b"]"].concat()),
        ("an empty object", b"{}".to_vec()),
        ("the record followed by junk", [&valid[..], b"x"].concat()),
        ("the record twice", [&valid[..], &valid[..]].concat()),
        (
            "a byte-order mark first",
            [b"\xef\xbb\xbf", &valid[..]].concat(),
        ),
        ("single quotes", base_text.replace('"', "'").into_bytes()),
        (
            "a trailing comma",
            format!("{},}}", &base_text[..base_text.len() - 1]).into_bytes(),
        ),
        ("a comment", format!("/* c */{base_text}").into_bytes()),
        ("NaN", with_key_first(base, "nan", "NaN")),
        ("form encoding", b"session_h=abc&h=def".to_vec()),
        (
            "a key that is not a string",
            format!("{{1:2,{}", &base_text[1..]).into_bytes(),
        ),
        (
            "a raw newline in a string",
            base_text.replacen(":\"", ":\"\n", 1).into_bytes(),
        ),
        (
            "a raw NUL in a string",
            base_text.replacen(":\"", ":\"\0", 1).into_bytes(),
        ),
        (
            "a lone surrogate escape",
            base_text.replacen(":\"", ":\"\\ud800", 1).into_bytes(),
        ),
        (
            "a bad escape",
            base_text.replacen(":\"", ":\"\\x41", 1).into_bytes(),
        ),
        (
            "arrays 100,000 deep",
            [b"[".repeat(100_000), b"]".repeat(100_000)].concat(),
        ),
        (
            "objects 100,000 deep",
            [
                b"{\"a\":".repeat(100_000),
                b"1".to_vec(),
                b"}".repeat(100_000),
            ]
            .concat(),
        ),
        ("an unclosed array 100,000 deep", b"[".repeat(100_000)),
        ("5 MB of whitespace", b" ".repeat(FIVE_MB)),
        ("a 5 MB string", to_bytes(&huge)),
    ];
    for (what, body) in not_objects {
        let status = if body.len() > BODY_LIMIT { 413 } else { 400 };
        case(what.to_owned(), body, status, None);
    }
    // Invalid UTF-8, in a value and in a key.
    for (what, bytes) in [
        ("0xFF", &b"\xff"[..]),
        ("an overlong slash", b"\xc0\xaf"),
        ("an encoded surrogate", b"\xed\xa0\x80"),
        ("a lone continuation byte", b"\x80"),
        ("a cut sequence", b"\xe2\x82"),
    ] {
        let at = base_text.find(":\"").unwrap() + 2;
        let in_value = [&valid[..at], bytes, &valid[at..]].concat();
        case(format!("{what} in a value"), in_value, 400, None);
        let in_key = [&valid[..2], bytes, &valid[2..]].concat();
        case(format!("{what} in a key"), in_key, 400, None);
    }
    // Truncated: cut at many points, and one to three bytes short.
    let step = (valid.len() / 40).max(1);
    let cuts: Vec<usize> = (1..valid.len())
        .step_by(step)
        .chain(valid.len() - 3..valid.len())
        .collect();
    for cut in cuts {
        case(
            format!("cut at byte {cut}"),
            valid[..cut].to_vec(),
            400,
            None,
        );
    }
    // A deep object where an object is allowed (a session's description).
    if fields.iter().any(|f| matches!(f.rule, Rule::Object)) {
        let deep = [
            b"{\"a\":".repeat(100_000),
            b"1".to_vec(),
            b"}".repeat(100_000),
        ]
        .concat();
        let deep = String::from_utf8(deep).unwrap();
        let mut body = base.clone();
        body.as_object_mut().unwrap().remove("description");
        case(
            "description nested 100,000 deep".into(),
            with_key_first(&body, "description", &deep),
            400,
            None,
        );
    }

    // The valid record, but not declared as JSON.
    for content_type in [
        None,
        Some("text/plain"),
        Some("text/json"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/xml"),
        Some("application/jsonx"),
        Some("application/json-patch"),
        Some("json"),
        Some(""),
        Some("application/ json"),
        Some("*/*"),
    ] {
        cases.push(PostCase {
            route,
            what: format!("Content-Type {content_type:?}"),
            content_type,
            body: valid.clone(),
            framing: Framing::ContentLength,
            status: 415,
            blame: None,
        });
    }
    // A body past the limit that does not say its length.
    cases.push(PostCase {
        route,
        what: "a chunked 5 MB body".into(),
        content_type: json,
        body: to_bytes(&huge),
        framing: Framing::Chunked,
        status: 413,
        blame: None,
    });
    cases
}

// ---------------------------------------------------------------- the GET corpus

/// Percent-encodes every byte but the unreserved ones.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Hostile path segments, as written on the wire.
fn hostile_segments() -> Vec<String> {
    let mut wire: Vec<String> = [
        // empty-looking
        "%20",
        "%09",
        "%0A",
        "%0D%0A",
        "%E2%80%8B",
        "%22%22",
        "null",
        "undefined",
        "-",
        "_",
        "~",
        // NUL
        "%00",
        "a%00b",
        // paths
        "..",
        "%2E%2E",
        "../..",
        "../../../../etc/passwd",
        "%2E%2E%2F%2E%2E%2Fmonitor.db",
        "..%2F..%2F",
        "%2F",
        "a%2Fb",
        "%5C..%5C",
        "a;b",
        "a,b",
        // invalid percent-encoding and invalid UTF-8
        "%ZZ",
        "%",
        "%0",
        "%G1",
        "a%",
        "%%",
        "%FF%FE",
        "%C0%AF",
        "%ED%A0%80",
        "%80",
        "a%FFb",
        "%F4%90%80%80",
        // numbers where numbers are parsed
        "0",
        "-1",
        "1e9",
        "99999999999999999999",
        "NaN",
        "inf",
        "0x10",
        "%2B5",
        "%205",
        "5.0",
        "00005",
        "-0",
        // unicode
        "%C3%BC",
        "%F0%9F%92%A9",
        "%E2%80%AE",
        "e%CC%81",
        "%EF%BB%BF",
        "%F4%8F%BF%BF",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for text in [
        "' OR 1=1 --",
        "\" OR \"\"=\"",
        "1; DROP TABLE metrics; --",
        "'; DELETE FROM metrics; --",
        "%",
        "%%",
        "_%_",
        "\\",
        "*",
        "$(reboot)",
        "{{7*7}}",
        "<script>alert(1)</script>",
        "a?b=c",
        "a#b",
        "head",
        "memory",
    ] {
        wire.push(encode(text));
    }
    wire.push("a".repeat(10 * 1024));
    wire.push("%41".repeat(3500));
    wire.push("%FF".repeat(3500));
    wire.push(encode(&"é".repeat(1800)));
    wire
}

/// Hostile query strings, as written on the wire.
fn hostile_queries() -> Vec<String> {
    let mut wire: Vec<String> = [
        "page=1e9",
        "page=1000000000",
        "page=-99999999999999999999",
        "page=99999999999999999999",
        "page=-1000000000",
        "page=0",
        "page=-0",
        "page=abc",
        "page=",
        "page",
        "page=1&page=2",
        "page=%ZZ",
        "page=%FF",
        "page=1.5",
        "page=%2B1",
        "page=%00",
        "page=0x1",
        "per_page=abc",
        "per_page=0",
        "per_page=-1",
        "per_page=10001",
        "per_page=99999999999999999999",
        "per_page=1e3",
        "per_page=1&per_page=2",
        "foo=bar",
        "%FF=1",
        "%ZZ=1",
        "=",
        "&&&",
        "&=&",
        "a=b=c",
        "from=not-a-date",
        "from=2020-02-30T00:00:00",
        "to=%00",
        "from=2020-12-04T23:18:15&from=2020-12-04T23:18:15",
        "to=99999-12-31T23:59:59",
        "sort=drop%20table",
        "sort=drop+table",
        "sort=item_start_time%3BDROP%20TABLE%20metrics",
        "sort=",
        "order=sideways",
        "order=asc",
        "sort=total_time&order=DESC",
        "min_total_time=abc",
        "min_total_time=NaN",
        "min_total_time=inf",
        "min_total_time=1e999",
        "min_mem_usage=-1e309",
        "method=bogus",
        "with_flags=a&method=match_none",
        "restrict_flags=a,,b",
        "with_flags=%FF",
        "component=%00",
        "kind=%27%20OR%201%3D1%20--",
        "session_h=%25",
        "scm_ref=%5C",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    wire.push(format!("with_flags={}", "a,".repeat(5000)));
    wire.push(format!("item={}", "%41".repeat(3500)));
    wire.push(format!("{}=1", "k".repeat(10 * 1024)));
    wire.push(
        (0..500)
            .map(|i| format!("p{i}=1"))
            .collect::<Vec<_>>()
            .join("&"),
    );
    wire
}

/// A value for a path parameter that lets the request get past that parameter, so that a hostile
/// value in another one is what the server meets.
fn benign(parameter: &str) -> &'static str {
    match parameter {
        "resource" => "memory",
        "direction" => "head",
        "n" => "5",
        _ => "x",
    }
}

/// The path parameters of an actix pattern, in order.
fn parameters(pattern: &str) -> Vec<&str> {
    pattern
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// `pattern` with each parameter replaced by its benign value, except `hostile` for `target`.
fn fill(pattern: &str, target: Option<&str>, hostile: &str) -> String {
    pattern
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) if Some(name) == target => hostile.to_owned(),
                Some(name) => benign(name).to_owned(),
                None => segment.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

// ---------------------------------------------------------------- the database

/// Every row of every table, as text, in a fixed order.
fn dump(path: &Path) -> BTreeMap<String, Vec<String>> {
    let conn = rusqlite::Connection::open(path).expect("cannot open the database");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables
        .into_iter()
        .map(|table| {
            let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
            let columns = stmt.column_count();
            let mut rows: Vec<String> = stmt
                .query_map([], |row| {
                    let values: Vec<String> = (0..columns)
                        .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                        .collect();
                    Ok(values.join("|"))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            rows.sort();
            (table, rows)
        })
        .collect()
}

// ---------------------------------------------------------------- the test

#[test]
fn every_bad_input_gets_a_json_4xx_nothing_is_stored_and_the_server_stays_up() {
    // Arrange: a server holding one valid record of each kind.
    let app = spawn_app_with_options(Options::default());
    let routes = post_routes();
    for endpoint in ENDPOINTS.iter().filter(|e| e.method == Method::POST) {
        assert!(
            routes.iter().any(|(path, _, _)| *path == endpoint.path) || endpoint.path == BATCH,
            "POST {} has no corpus: add its valid record to post_routes()",
            endpoint.path
        );
    }
    for (route, base, _) in &routes {
        let answer = exchange(
            app.addr,
            "POST",
            &format!("/api/v1{route}/"),
            Some("application/json"),
            &to_bytes(base),
            Framing::ContentLength,
        )
        .unwrap();
        assert_eq!(
            answer.status, 201,
            "the valid record of {route} was refused"
        );
    }
    let before = dump(&app.db_path);
    let failures = Mutex::new(Vec::<String>::new());
    let tried = AtomicUsize::new(0);
    let fail = |what: String| failures.lock().unwrap().push(what);

    // Act and assert: the POST corpus.
    let mut post = Vec::new();
    for (route, base, fields) in &routes {
        post.extend(post_cases(route, base, fields));
    }
    post.extend(batch_cases(&post, &routes[0].1));
    // Garbage posted to routes that take no body.
    for endpoint in ENDPOINTS.iter().filter(|e| e.method == Method::GET) {
        post.push(PostCase {
            route: endpoint.path,
            what: "invalid JSON to a GET route".into(),
            content_type: Some("application/json"),
            body: b"{\"a\":".to_vec(),
            framing: Framing::ContentLength,
            status: 0,
            blame: None,
        });
    }
    std::thread::scope(|scope| {
        for share in post.chunks(post.len().div_ceil(CLIENTS)) {
            let (app, tried, fail) = (&app, &tried, &fail);
            scope.spawn(move || {
                for case in share {
                    tried.fetch_add(1, Ordering::Relaxed);
                    let target = format!("/api/v1{}/", fill(case.route, None, ""));
                    let label = format!("POST {} {}", case.route, case.what);
                    let answer = match exchange(
                        app.addr,
                        "POST",
                        &target,
                        case.content_type,
                        &case.body,
                        case.framing,
                    ) {
                        Ok(answer) => answer,
                        Err(err) => {
                            fail(format!("{label}: {err}"));
                            continue;
                        }
                    };
                    let body = match check_refusal(&answer) {
                        Ok(body) => body,
                        Err(err) => {
                            fail(format!("{label}: {err}"));
                            continue;
                        }
                    };
                    if case.status != 0 && answer.status != case.status {
                        fail(format!(
                            "{label}: {} instead of {}: {body}",
                            answer.status, case.status
                        ));
                    } else if let Some(field) = &case.blame {
                        if !body["errors"][field].is_string() {
                            fail(format!("{label}: errors.{field} missing: {body}"));
                        }
                    }
                }
            });
        }
    });

    // The GET corpus: every route, each parameter in turn, then each query.
    let segments = hostile_segments();
    let queries = hostile_queries();
    let mut targets = Vec::new();
    for endpoint in ENDPOINTS.iter().filter(|e| e.method == Method::GET) {
        let path = endpoint.path;
        for parameter in parameters(path) {
            for value in &segments {
                targets.push(format!("/api/v1{}", fill(path, Some(parameter), value)));
            }
        }
        for query in &queries {
            targets.push(format!("/api/v1{}?{query}", fill(path, None, "")));
        }
    }
    std::thread::scope(|scope| {
        for share in targets.chunks(targets.len().div_ceil(CLIENTS)) {
            let (app, tried, fail) = (&app, &tried, &fail);
            scope.spawn(move || {
                for target in share {
                    tried.fetch_add(1, Ordering::Relaxed);
                    let shown: String = target.chars().take(120).collect();
                    match exchange(app.addr, "GET", target, None, b"", Framing::ContentLength) {
                        Err(err) => fail(format!("GET {shown}: {err}")),
                        Ok(answer) if answer.status >= 500 => fail(format!(
                            "GET {shown}: {} {}",
                            answer.status,
                            String::from_utf8_lossy(&answer.body)
                        )),
                        Ok(answer) if answer.status >= 400 => {
                            if let Err(err) = check_refusal(&answer) {
                                fail(format!("GET {shown}: {err}"));
                            }
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });

    let tried = tried.into_inner();
    let failures = failures.into_inner().unwrap();
    let _ = writeln!(
        std::io::stderr(),
        "reliability input: {tried} bad inputs tried ({} POST bodies, {} GET targets), {} failed",
        post.len(),
        targets.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {tried} bad inputs were mishandled; the first:\n{}",
        failures.len(),
        failures
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The server still answers, and holds exactly what it held before.
    let answer = exchange(
        app.addr,
        "GET",
        "/api/v1/metrics/count",
        None,
        b"",
        Framing::ContentLength,
    )
    .expect("the server no longer answers");
    assert_eq!(answer.status, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&answer.body).unwrap(),
        json!({"count": 1})
    );
    assert_eq!(
        dump(&app.db_path),
        before,
        "a rejected request changed the database"
    );
}
