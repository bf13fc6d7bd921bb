//! A store written by schema version 3 is served by this binary exactly as version 3 served it:
//! `tests/common/fixtures/store_v3.sql` (made through the HTTP API of a schema-3 binary by
//! `make_store_v3.py`) is loaded into a file, the real binary started on it — migrating it first
//! if its schema is newer — and every recorded URL of `store_v3_answers.json` asked again: the
//! status and the body must be the recorded ones, byte for byte, at that start and at the next.
//! The file must then be at this binary's schema version and intact.
//!
//! The recorded answers cover every GET route of the route table but the ones in [`LEFT_OUT`];
//! a route added to the table without recorded answers fails
//! [`every_get_route_of_the_table_has_recorded_answers_or_a_reason_to_have_none`]: record them
//! (on a schema-3 binary, see the script) or say here why its answers cannot be compared.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use actix_web::http::Method;
use monitor_server::db::{Db, SCHEMA_VERSION};
use monitor_server::routes::{API_PREFIX, ENDPOINTS, ROOT_ENDPOINTS};
use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;
use serde_json::Value;

use crate::common::{Server, DEADLINE};

const DUMP: &str = include_str!("../common/fixtures/store_v3.sql");
const ANSWERS: &str = include_str!("../common/fixtures/store_v3_answers.json");

/// The GET routes whose answers are not compared, and why: what they answer does not come from
/// the store, or differs between two runs of the same binary on the same file.
const LEFT_OUT: [(&str, &str); 3] = [
    (
        "/api/v1/openapi.json",
        "describes the binary's routes and parameters, which a later binary may extend",
    ),
    ("/api/v1/docs", "renders the OpenAPI document"),
    (
        "/metrics",
        "Prometheus counters: uptime, request counts and latencies, file sizes",
    ),
];

/// One recorded request: the route's pattern, the URL asked, and what the schema-3 server answered.
struct Answer {
    route: String,
    url: String,
    status: u16,
    body: String,
}

/// `store_v3_answers.json`: the schema version the answers were recorded on, the arguments the
/// server was started with, and the answers in the order asked.
struct Recording {
    schema_version: i64,
    server_args: Vec<String>,
    answers: Vec<Answer>,
}

fn recording() -> Recording {
    let doc: Value = serde_json::from_str(ANSWERS).expect("store_v3_answers.json is JSON");
    let text = |value: &Value, what: &str| {
        value
            .as_str()
            .unwrap_or_else(|| panic!("store_v3_answers.json: {what} is not a string: {value}"))
            .to_owned()
    };
    let answers = doc["answers"]
        .as_array()
        .expect("store_v3_answers.json lists `answers`")
        .iter()
        .map(|answer| Answer {
            route: text(&answer["route"], "route"),
            url: text(&answer["url"], "url"),
            status: answer["status"]
                .as_u64()
                .and_then(|status| u16::try_from(status).ok())
                .unwrap_or_else(|| panic!("no status in {answer}")),
            body: text(&answer["body"], "body"),
        })
        .collect();
    Recording {
        schema_version: doc["schema_version"]
            .as_i64()
            .expect("store_v3_answers.json gives `schema_version`"),
        server_args: doc["server_args"]
            .as_array()
            .expect("store_v3_answers.json gives `server_args`")
            .iter()
            .map(|arg| text(arg, "a server argument"))
            .collect(),
        answers,
    }
}

/// Loads the dump into `db`, as the schema-`version` server left it.
fn load_fixture(db: &Path, version: i64) {
    let conn = Connection::open(db).expect("a new database file");
    conn.execute_batch(DUMP).expect("store_v3.sql loads");
    assert_eq!(user_version(&conn), version, "the fixture's schema version");
}

fn user_version(conn: &Connection) -> i64 {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("user_version")
}

/// Serves `db` and asks every recorded URL: a line per answer that differs from the recorded
/// one, showing both bodies from their first differing byte.
fn differences(db: &Path, recording: &Recording) -> Vec<String> {
    let args: Vec<&str> = recording.server_args.iter().map(String::as_str).collect();
    let server = Server::serve(db, &args);
    let mut differences = Vec::new();
    for answer in &recording.answers {
        let (status, body) = fetch(&server, &answer.url);
        if status != answer.status || body != answer.body.as_bytes() {
            let at = body
                .iter()
                .zip(answer.body.as_bytes())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| body.len().min(answer.body.len()));
            differences.push(format!(
                "GET {} ({}): recorded {} {}\n    now {} {}",
                answer.url,
                answer.route,
                answer.status,
                excerpt(answer.body.as_bytes(), at),
                status,
                excerpt(&body, at),
            ));
        }
    }
    let status = server.terminate();
    assert!(status.success(), "the server exited with {status}");
    differences
}

/// GET `url` (from the root): the status and the raw body.
fn fetch(server: &Server, url: &str) -> (u16, Vec<u8>) {
    let full = format!("{}{url}", server.address());
    let response = match ureq::get(&full).timeout(DEADLINE).call() {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(err) => panic!("GET {full}: {err}; server stderr:\n{}", server.stderr()),
    };
    let status = response.status();
    let mut body = Vec::new();
    response
        .into_reader()
        .read_to_end(&mut body)
        .unwrap_or_else(|err| panic!("GET {full}: the body could not be read: {err}"));
    (status, body)
}

/// At most 240 characters of `body` around byte `at`, where two bodies first differ.
fn excerpt(body: &[u8], at: usize) -> String {
    let start = at.saturating_sub(120);
    let end = (at + 120).min(body.len());
    let shown = String::from_utf8_lossy(&body[start.min(end)..end]);
    format!(
        "{}{shown}{}",
        if start > 0 { "…" } else { "" },
        if end < body.len() { "…" } else { "" }
    )
}

#[test]
fn a_schema_3_store_is_served_with_every_recorded_answer_unchanged_and_ends_at_this_schema() {
    let recording = recording();
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("monitor.db");
    load_fixture(&db, recording.schema_version);

    // The first start migrates the file (when this binary's schema is newer); the second finds
    // it up to date, and must answer the same.
    for start in ["first", "second"] {
        let differences = differences(&db, &recording);
        assert!(
            differences.is_empty(),
            "at the {start} start, {} of {} answers differ from schema {}'s (the first 10 \
             shown):\n{}",
            differences.len(),
            recording.answers.len(),
            recording.schema_version,
            differences[..differences.len().min(10)].join("\n")
        );
    }

    let conn = Connection::open(&db).expect("the served file opens");
    assert_eq!(
        user_version(&conn),
        SCHEMA_VERSION,
        "the file's schema version after serving"
    );
    let integrity: String = conn
        .pragma_query_value(None, "integrity_check", |row| row.get(0))
        .expect("integrity_check");
    assert_eq!(integrity, "ok");
}

#[test]
fn a_migrated_schema_3_store_has_exactly_the_layout_of_a_new_file() {
    // Arrange: the schema-3 fixture, and an empty directory for a new file.
    let recording = recording();
    let dir = tempfile::tempdir().expect("temp dir");
    let (migrated, fresh) = (dir.path().join("migrated.db"), dir.path().join("fresh.db"));
    load_fixture(&migrated, recording.schema_version);

    // Act: opening each brings it to this binary's schema, migrating the first.
    for db in [&migrated, &fresh] {
        drop(Db::open(db, 1).expect("the file opens"));
    }

    // Assert: the same tables, columns, indexes, keys and views (`migrate.rs` writes the
    // tables of version 4 a second time, apart from `schema.sql`).
    let (migrated, fresh) = (layout(&migrated), layout(&fresh));
    let only_migrated: Vec<&String> = migrated.difference(&fresh).collect();
    let only_fresh: Vec<&String> = fresh.difference(&migrated).collect();
    assert!(
        only_migrated.is_empty() && only_fresh.is_empty(),
        "only in the migrated file: {only_migrated:#?}\nonly in a new file: {only_fresh:#?}"
    );
}

/// A line for each table, view, column, index (its columns, uniqueness and condition) and
/// foreign key of the file: what a query or a write can tell apart, whatever the text of the
/// statements that made them (a column added by ALTER TABLE reads differently).
fn layout(db: &Path) -> BTreeSet<String> {
    let conn = Connection::open(db).expect("the file opens");
    let objects = "FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'";
    let mut layout: BTreeSet<String> = lines(
        &conn,
        &format!(
            "SELECT type, name, tbl_name, \
             CASE WHEN type = 'view' OR sql LIKE '%WHERE%' THEN sql END {objects}"
        ),
        [],
    )
    .into_iter()
    .collect();
    for name in lines(&conn, &format!("SELECT name {objects}"), []) {
        for (what, sql) in [
            (
                "column",
                "SELECT name, type, \"notnull\", dflt_value, pk, hidden \
                 FROM pragma_table_xinfo(?1)",
            ),
            (
                "index",
                "SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1)",
            ),
            (
                "key",
                "SELECT \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list(?1)",
            ),
            (
                "indexed",
                "SELECT seqno, name, \"desc\", coll, key FROM pragma_index_xinfo(?1)",
            ),
        ] {
            for line in lines(&conn, sql, [&name]) {
                layout.insert(format!("{name}: {what} {line}"));
            }
        }
    }
    layout
}

/// Each row `sql` yields, its values joined into a line.
fn lines(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Vec<String> {
    let mut stmt = conn.prepare(sql).expect(sql);
    let width = stmt.column_count();
    stmt.query_map(params, |row| {
        let values = (0..width).map(|i| row.get::<_, SqlValue>(i).map(|v| shown(&v)));
        values.collect::<rusqlite::Result<Vec<String>>>()
    })
    .expect(sql)
    .map(|values| values.expect(sql).join(" | "))
    .collect()
}

fn shown(value: &SqlValue) -> String {
    match value {
        SqlValue::Null => "NULL".into(),
        SqlValue::Integer(n) => n.to_string(),
        SqlValue::Real(x) => x.to_string(),
        SqlValue::Text(text) => text.clone(),
        SqlValue::Blob(bytes) => format!("{bytes:?}"),
    }
}

#[test]
fn every_get_route_of_the_table_has_recorded_answers_or_a_reason_to_have_none() {
    let recorded: BTreeSet<String> = recording()
        .answers
        .into_iter()
        .map(|answer| answer.route)
        .collect();
    let left_out: BTreeSet<&str> = LEFT_OUT.iter().map(|(route, _)| *route).collect();
    let under_api = ENDPOINTS.iter().map(|e| (e, API_PREFIX));
    let at_root = ROOT_ENDPOINTS.iter().map(|e| (e, ""));
    let routes: BTreeSet<String> = under_api
        .chain(at_root)
        .filter(|(endpoint, _)| endpoint.method == Method::GET)
        .map(|(endpoint, prefix)| format!("{prefix}{}", endpoint.path))
        .collect();

    let unrecorded: Vec<&String> = routes
        .iter()
        .filter(|route| !recorded.contains(*route) && !left_out.contains(route.as_str()))
        .collect();
    assert!(
        unrecorded.is_empty(),
        "GET routes with no recorded schema-3 answer (record them with \
         tests/common/fixtures/make_store_v3.py on a schema-3 binary, or list them in LEFT_OUT \
         with the reason): {unrecorded:?}"
    );
    let unknown: Vec<&String> = recorded
        .iter()
        .filter(|route| !routes.contains(*route))
        .collect();
    assert!(
        unknown.is_empty(),
        "recorded routes the table no longer has: {unknown:?}"
    );
    let stale: Vec<&&str> = left_out
        .iter()
        .filter(|route| !routes.contains(**route))
        .collect();
    assert!(
        stale.is_empty(),
        "LEFT_OUT names routes the table no longer has: {stale:?}"
    );
}
