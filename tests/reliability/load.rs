//! Load: many pytest-xdist workers posting at once. Every write is queued in-process in front of
//! the one writer connection, so SQLite's write lock is never contended and no client ever sees
//! a busy database: all 201, and the count is exact.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::common::{metric, Setup, TestApp};

/// Concurrent clients, as many as a large pytest-xdist run has workers.
const WRITERS: usize = 64;

/// Metrics each client posts, one after the other.
const POSTS_PER_WRITER: usize = 100;

/// The binary's pool size, so readers and the writer are set up as in production.
const POOL_SIZE: u32 = 16;

/// What one client saw: each answer's status, and those that were not 201 with their details.
struct Outcome {
    statuses: Vec<u16>,
    failures: Vec<String>,
}

fn post_all(address: &str, writer: usize) -> Outcome {
    // Keep-alive within a client, as pytest-monitor's `requests` session does.
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build();
    let mut outcome = Outcome {
        statuses: Vec::with_capacity(POSTS_PER_WRITER),
        failures: Vec::new(),
    };
    for n in 0..POSTS_PER_WRITER {
        let body = metric(&format!("test_w{writer}_n{n}")).to_string();
        let answer = agent
            .post(&format!("{address}/metrics/"))
            .set("Content-Type", "application/json")
            .send_string(&body);
        let status = match answer {
            Ok(response) => response.status(),
            Err(ureq::Error::Status(status, response)) => {
                let retry_after = response.header("Retry-After").map(str::to_owned);
                let text = response.into_string().unwrap_or_default();
                outcome.failures.push(format!(
                    "writer {writer} post {n}: {status} (Retry-After {retry_after:?}) {text}"
                ));
                status
            }
            Err(err) => {
                outcome
                    .failures
                    .push(format!("writer {writer} post {n}: no answer: {err}"));
                0
            }
        };
        outcome.statuses.push(status);
    }
    outcome
}

#[test]
fn sixty_four_writers_posting_a_hundred_metrics_each_all_get_201_and_the_count_is_exact() {
    // Arrange
    let server = TestApp::start(Setup {
        pool_size: POOL_SIZE,
        ..Setup::default()
    });
    let api = server.url("");
    let start = Barrier::new(WRITERS);

    // Act: every client starts at the same moment and posts as fast as it is answered.
    let began = Instant::now();
    let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let (address, start) = (&api, &start);
                scope.spawn(move || {
                    start.wait();
                    post_all(address, writer)
                })
            })
            .collect();
        clients
            .into_iter()
            .map(|client| client.join().expect("a client thread panicked"))
            .collect()
    });
    let took = began.elapsed();

    // Assert: every answer was a 201 (no 503 from a busy database, no 500), ...
    let requests = WRITERS * POSTS_PER_WRITER;
    let failures: Vec<&String> = outcomes.iter().flat_map(|o| &o.failures).collect();
    let created = outcomes
        .iter()
        .flat_map(|o| &o.statuses)
        .filter(|&&status| status == 201)
        .count();
    eprintln!(
        "load: {requests} POSTs from {WRITERS} writers in {took:.2?}, {created} answered 201, \
         {} otherwise",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {requests} POSTs were not answered 201; the first ones: {:#?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert_eq!(created, requests);

    // ... the API counts exactly what was posted, ...
    let count = ureq::get(&server.url("/metrics/count"))
        .call()
        .expect("the count is not answered")
        .into_string()
        .expect("unreadable count");
    assert_eq!(count, format!(r#"{{"count":{requests}}}"#));

    // ... and so does the file, with every item present exactly once.
    let conn = rusqlite::Connection::open(&server.db_path).expect("cannot open the database");
    let (rows, distinct): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(DISTINCT item) FROM metrics",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("cannot count the rows");
    assert_eq!((rows, distinct), (requests as i64, requests as i64));
}
