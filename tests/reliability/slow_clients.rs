//! Slow and greedy clients cannot starve the others: a client that trickles its headers or its
//! body is dropped after [`HEADER_TIMEOUT`] or [`BODY_TIMEOUT`], a body over 1 MiB is refused
//! without being buffered, `per_page` is capped, and the number of connections held is bounded.
//! Meanwhile a well-behaved client keeps getting quick answers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use monitor_server::routes::auth::Tokens;
use monitor_server::routes::{BODY_LIMIT, BODY_TIMEOUT};
use monitor_server::server::{Options, HEADER_TIMEOUT};

use crate::common::{
    agent, exchange, metric, raw_exchange, spawn_app_with_options, spawn_app_with_tokens,
    status_of, TestApp, DEADLINE,
};

/// How much later than its timeout the server may drop a slow client.
const MARGIN: Duration = Duration::from_secs(3);

/// The longest a well-behaved client's request may take while slow clients are connected.
const QUICK: Duration = Duration::from_secs(2);

/// A well-behaved client on its own thread: it stores a metric and reads the count, over and over,
/// until told to stop, timing every request.
struct Probe {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<ProbeReport>,
}

/// What a [`Probe`] saw.
#[derive(Debug)]
struct ProbeReport {
    requests: usize,
    slowest: Duration,
    failures: Vec<String>,
}

impl Probe {
    fn start(app: &TestApp) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let metrics_url = app.url("/metrics/");
        let count_url = app.url("/metrics/count");
        let thread = std::thread::spawn(move || {
            let agent = agent();
            let mut report = ProbeReport {
                requests: 0,
                slowest: Duration::ZERO,
                failures: Vec::new(),
            };
            let mut n = 0;
            while !stopped.load(Ordering::Relaxed) {
                n += 1;
                let started = Instant::now();
                let stored = exchange(
                    agent.post(&metrics_url),
                    Some(&metric(&format!("probe_{n}"))),
                );
                let counted = exchange(agent.get(&count_url), None);
                let took = started.elapsed() / 2;
                report.requests += 2;
                report.slowest = report.slowest.max(took);
                if stored.status != 201 || counted.status != 200 {
                    report.failures.push(format!("{stored:?} {counted:?}"));
                }
            }
            report
        });
        Probe { stop, thread }
    }

    /// Stops the probe and checks it was answered correctly and quickly throughout.
    fn finish(self) -> ProbeReport {
        self.stop.store(true, Ordering::Relaxed);
        let report = self.thread.join().expect("the probe panicked");
        assert!(report.failures.is_empty(), "{report:?}");
        assert!(report.requests > 0, "{report:?}");
        assert!(
            report.slowest < QUICK,
            "a normal request took too long: {report:?}"
        );
        report
    }
}

/// How a slow client's connection ended.
#[derive(Debug)]
struct Ending {
    /// Time from connecting until the server closed the connection (None: still open at the end).
    closed_after: Option<Duration>,
    /// The status the server answered before closing, 0 for none.
    status: u16,
    /// Bytes the client managed to send.
    sent: usize,
}

/// Connects, writes `prefix` at once, then writes `trickle` one byte at a time every `pace`,
/// until the server closes the connection or `give_up` passes (`trickle` must last that long).
fn slow_client(
    addr: SocketAddr,
    prefix: &[u8],
    trickle: &[u8],
    pace: Duration,
    give_up: Duration,
) -> Ending {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).expect("cannot connect");
    let mut sent = 0;
    let closed = |status, sent| Ending {
        closed_after: Some(started.elapsed()),
        status,
        sent,
    };
    if stream.write_all(prefix).is_err() {
        return closed(0, sent);
    }
    sent += prefix.len();
    // Reading with a timeout is the client's pause between bytes, and notices the server's answer.
    stream.set_read_timeout(Some(pace)).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    for byte in trickle {
        match stream.read(&mut buf) {
            Ok(0) => return closed(crate::common::status_of_bytes(&answer), sent),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return closed(crate::common::status_of_bytes(&answer), sent),
        }
        if started.elapsed() > give_up {
            return Ending {
                closed_after: None,
                status: crate::common::status_of_bytes(&answer),
                sent,
            };
        }
        if stream.write_all(&[*byte]).is_err() {
            // The server closed its end; read whatever it answered before that.
            stream
                .set_read_timeout(Some(Duration::from_secs(1)))
                .unwrap();
            let _ = stream.read_to_end(&mut answer);
            return closed(crate::common::status_of_bytes(&answer), sent);
        }
        sent += 1;
    }
    panic!("the slow client ran out of bytes to trickle before {give_up:?}")
}

/// A request line and headers that do not end for minutes at one byte every 100 ms: one header
/// line after another (fewer than actix-http's limit of headers).
fn endless_headers() -> Vec<u8> {
    let mut head = b"GET /api/v1/metrics/count HTTP/1.1\r\nHost: x\r\n".to_vec();
    head.extend(b"X-Slow: still-coming\r\n".repeat(60));
    head
}

/// A chunked body that does not end for minutes at one byte every 100 ms.
fn endless_chunks() -> Vec<u8> {
    b"1\r\nx\r\n".repeat(1000)
}

#[test]
fn fifty_slowloris_connections_are_dropped_after_the_header_timeout_while_others_are_served_quickly(
) {
    // Arrange
    let app = spawn_app_with_tokens(Tokens::default());
    let probe = Probe::start(&app);

    // Act: 50 clients send a request line and headers byte by byte, never finishing them.
    let slow: Vec<_> = (0..50)
        .map(|_| {
            let addr = app.addr;
            std::thread::spawn(move || {
                slow_client(
                    addr,
                    b"",
                    &endless_headers(),
                    Duration::from_millis(100),
                    HEADER_TIMEOUT + MARGIN,
                )
            })
        })
        .collect();
    let endings: Vec<Ending> = slow.into_iter().map(|t| t.join().unwrap()).collect();
    let report = probe.finish();

    // Assert: every slow connection was held until about the header timeout, then dropped.
    for ending in &endings {
        let after = ending
            .closed_after
            .unwrap_or_else(|| panic!("a slowloris connection is still open: {ending:?}"));
        assert!(
            after >= HEADER_TIMEOUT - Duration::from_millis(500),
            "dropped before the header timeout: {ending:?}"
        );
        assert!(
            ending.status == 0 || ending.status == 408,
            "unexpected answer to a slowloris client: {ending:?}"
        );
    }
    let latest = endings.iter().filter_map(|e| e.closed_after).max().unwrap();
    eprintln!(
        "50 slowloris connections, last dropped after {latest:?}; meanwhile {} normal requests, slowest {:?}",
        report.requests, report.slowest
    );
    assert_eq!(app.stored_metrics() as usize, report.requests / 2);
}

#[test]
fn a_slowloris_after_a_first_quick_request_on_the_same_connection_is_dropped_too() {
    // Arrange: one complete request, which the server answers.
    let app = spawn_app_with_tokens(Tokens::default());

    // Act: on the same connection, the next request's headers trickle in.
    let ending = slow_client(
        app.addr,
        b"GET /api/v1/metrics/count HTTP/1.1\r\nHost: x\r\n\r\n",
        &endless_headers(),
        Duration::from_millis(100),
        HEADER_TIMEOUT + MARGIN,
    );

    // Assert
    eprintln!("{ending:?}");
    assert!(
        ending.closed_after.is_some(),
        "the connection is still open: {ending:?}"
    );
}

#[test]
fn a_body_trickled_after_its_headers_gets_408_after_the_body_timeout_and_nothing_is_stored() {
    // Arrange: a valid metric, sent once with its length declared and once chunked.
    let app = spawn_app_with_tokens(Tokens::default());
    let probe = Probe::start(&app);
    let body = format!("{:<1000}", metric("trickled").to_string());
    let declared = format!(
        "POST /api/v1/metrics/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    let chunked = "POST /api/v1/metrics/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                   Transfer-Encoding: chunked\r\n\r\n";
    let chunks: Vec<u8> = body
        .bytes()
        .flat_map(|byte| [&b"1\r\n"[..], &[byte], b"\r\n"].concat())
        .collect();

    // Act: the headers at once, then the body two bytes a second — it would need minutes.
    let clients: Vec<_> = [
        (declared.clone().into_bytes(), body.clone().into_bytes()),
        (chunked.as_bytes().to_vec(), chunks),
    ]
    .into_iter()
    .map(|(head, trickle)| {
        let addr = app.addr;
        std::thread::spawn(move || {
            slow_client(
                addr,
                &head,
                &trickle,
                Duration::from_millis(500),
                BODY_TIMEOUT + MARGIN,
            )
        })
    })
    .collect();
    let endings: Vec<Ending> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let report = probe.finish();

    // Assert
    for ending in &endings {
        let after = ending
            .closed_after
            .unwrap_or_else(|| panic!("a trickling client is still connected: {ending:?}"));
        assert!(
            after >= BODY_TIMEOUT - Duration::from_millis(500),
            "dropped before the body timeout: {ending:?}"
        );
        assert_eq!(ending.status, 408, "{ending:?}");
        assert!(ending.sent < declared.len() + body.len(), "{ending:?}");
    }
    eprintln!(
        "trickled bodies answered 408 and dropped after {:?}; meanwhile {} normal requests, \
         slowest {:?}",
        endings.iter().filter_map(|e| e.closed_after).max(),
        report.requests,
        report.slowest
    );
    assert_eq!(app.stored_metrics() as usize, report.requests / 2);
}

#[test]
fn a_body_trickled_to_a_route_that_does_not_read_it_does_not_hold_the_connection() {
    let app = spawn_app_with_tokens(Tokens::default());

    for head in [
        // declared length, on a route that answers without reading a body
        "GET /api/v1/metrics/count HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
        // chunked, on an unknown route
        "POST /api/v1/nowhere HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        // chunked, to a route that exists
        "GET /api/v1/metrics/count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        let ending = slow_client(
            app.addr,
            head.as_bytes(),
            &endless_chunks(),
            Duration::from_millis(100),
            HEADER_TIMEOUT + BODY_TIMEOUT + MARGIN,
        );
        assert!(
            ending.closed_after.is_some(),
            "{head:?}: the connection is still open: {ending:?}"
        );
        eprintln!("{head:?}: {ending:?}");
    }
}

#[test]
fn a_5_mb_body_with_its_length_declared_gets_413_before_it_is_sent() {
    // Arrange
    let app = spawn_app_with_tokens(Tokens::default());
    let size = 5 * 1024 * 1024;
    let mut stream = TcpStream::connect(app.addr).unwrap();
    stream
        .set_read_timeout(Some(crate::common::DEADLINE))
        .unwrap();

    // Act: the headers and only the first 64 KiB of the body.
    let head = format!(
        "POST /api/v1/metrics/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {size}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&vec![b' '; 64 * 1024]).unwrap();
    let started = Instant::now();
    let mut answer = vec![0u8; 4096];
    let n = stream
        .read(&mut answer)
        .expect("no answer to a 5 MB upload");

    // Assert: answered while 5 MB - 64 KiB were still to come.
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert_eq!(crate::common::status_of(&answer), 413, "{answer}");
    assert!(started.elapsed() < QUICK, "{:?}", started.elapsed());
    assert_eq!(app.stored_metrics(), 0);
}

#[test]
fn a_5_mb_chunked_body_gets_413_and_nothing_is_stored() {
    // Arrange
    let app = spawn_app_with_tokens(Tokens::default());
    let probe = Probe::start(&app);
    let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
    let mut stream = TcpStream::connect(app.addr).unwrap();
    stream
        .set_read_timeout(Some(crate::common::DEADLINE))
        .unwrap();

    // Act: chunks of 64 KiB until 5 MB are sent or the server stops reading.
    stream
        .write_all(
            b"POST /api/v1/metrics/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Transfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap();
    let mut sent = 0;
    while sent < 5 * 1024 * 1024 {
        if stream.write_all(chunk.as_bytes()).is_err() {
            break;
        }
        sent += 0x10000;
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let report = probe.finish();

    // Assert
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(crate::common::status_of(&answer), 413, "{answer}");
    assert!(
        answer.contains(&BODY_LIMIT.to_string()),
        "the answer should state the limit: {answer}"
    );
    assert_eq!(app.stored_metrics() as usize, report.requests / 2);
}

#[test]
fn per_page_over_10000_is_a_400_and_10000_is_served() {
    let app = spawn_app_with_tokens(Tokens::default());
    let agent = agent();

    let huge = exchange(agent.get(&app.url("/metrics/?per_page=1000000")), None);
    let most = exchange(agent.get(&app.url("/metrics/?per_page=10000")), None);

    assert_eq!(huge.status, 400, "{huge:?}");
    assert!(huge.json()["errors"]["per_page"].is_string(), "{huge:?}");
    assert_eq!(most.status, 204, "{most:?}");
}

#[test]
fn connections_beyond_the_cap_wait_and_are_served_once_the_header_timeout_frees_a_slot() {
    // Arrange: two connections per worker, every one of them taken by a client that sends nothing.
    let cap = 2;
    let app = spawn_app_with_options(Options {
        max_connections_per_worker: cap,
        ..Options::default()
    });
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let idle: Vec<TcpStream> = (0..cap * workers)
        .map(|_| TcpStream::connect(app.addr).unwrap())
        .collect();
    // Every idle connection is accepted once the server has answered one request on top of them
    // — the server cannot, so probe with a raw request on a connection made after them.
    let started = Instant::now();

    // Act
    let (status, answer) = raw_exchange(
        app.addr,
        b"GET /api/v1/metrics/count HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let waited = started.elapsed();

    // Assert: the extra connection was held in the backlog, and served once the idle ones timed out.
    assert_eq!(status, 200, "{answer}");
    assert!(
        waited >= HEADER_TIMEOUT - Duration::from_secs(1),
        "served after {waited:?}: the cap of {cap} per worker did not hold"
    );
    assert!(
        waited < HEADER_TIMEOUT + MARGIN,
        "served only after {waited:?}"
    );
    eprintln!("with every slot taken, a new client was served after {waited:?}");
    drop(idle);
}

/// Reads one HTTP/1.1 answer with a `Content-Length` from `stream`, leaving the connection open;
/// returns its head and body.
fn read_answer(stream: &mut TcpStream) -> (String, String) {
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = read.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf).expect("no answer");
        assert!(n > 0, "the server closed the connection mid-answer");
        read.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&read[..head_end]).into_owned();
    let length: usize = head
        .to_ascii_lowercase()
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no content-length in {head}"));
    while read.len() < head_end + length {
        let n = stream.read(&mut buf).expect("the body did not arrive");
        assert!(n > 0, "the server closed the connection mid-body");
        read.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&read[head_end..head_end + length]).into_owned();
    (head, body)
}

#[test]
fn with_keep_alive_on_a_post_and_a_get_are_answered_over_one_connection() {
    // Arrange
    let app = spawn_app_with_options(Options {
        keep_alive: Some(Duration::from_secs(5)),
        ..Options::default()
    });
    let mut stream = TcpStream::connect(app.addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let body = metric("kept_alive").to_string();
    let post = format!(
        "POST /api/v1/metrics/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );

    // Act: two requests, one after the other, on the same connection.
    stream.write_all(post.as_bytes()).unwrap();
    let (stored_head, _) = read_answer(&mut stream);
    stream
        .write_all(b"GET /api/v1/metrics/count HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (count_head, count) = read_answer(&mut stream);

    // Assert
    assert_eq!(status_of(&stored_head), 201, "{stored_head}");
    assert!(
        !stored_head
            .to_ascii_lowercase()
            .contains("connection: close"),
        "{stored_head}"
    );
    assert_eq!(status_of(&count_head), 200, "{count_head}");
    assert_eq!(count, r#"{"count":1}"#);
}

#[test]
fn with_keep_alive_off_by_default_the_server_answers_connection_close_and_closes() {
    // Arrange
    let app = spawn_app_with_tokens(Tokens::default());

    // Act: a request that asks for nothing about the connection (HTTP/1.1: keep it).
    let (status, answer) = raw_exchange(
        app.addr,
        b"GET /api/v1/metrics/count HTTP/1.1\r\nHost: x\r\n\r\n",
    );

    // Assert: answered, told the connection closes, and closed (raw_exchange reads to the end).
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
}
