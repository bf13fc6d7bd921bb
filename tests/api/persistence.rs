//! What a 201 promises: the record is on disk, survives a restart, and is not lost when many
//! clients (pytest-xdist workers) post at once.

use std::sync::Barrier;

use serde_json::json;

use crate::common::{context, metric, session, spawn_app};

#[test]
fn data_posted_before_a_restart_is_listed_by_a_new_server_on_the_same_file() {
    // Arrange
    let app = spawn_app();
    let stored_context = app.create("/api/v1/contexts/", &context("c1"));
    let stored_session = app.create("/api/v1/sessions/", &session("s1"));
    let stored_metrics: Vec<_> = ["m1", "m2", "m3"]
        .into_iter()
        .map(|item| app.create("/api/v1/metrics/", &metric(item)))
        .collect();
    let old_address = app.address.clone();

    // Act
    let app = app.restart();

    // Assert
    assert_ne!(app.address, old_address, "a new server must be answering");
    let (_, metrics) = app.get("/api/v1/metrics/");
    assert_eq!(metrics["metrics"], json!(stored_metrics));
    let (_, contexts) = app.get("/api/v1/contexts/c1");
    assert_eq!(contexts["contexts"], json!([stored_context]));
    let (_, sessions) = app.get("/api/v1/sessions/s1");
    assert_eq!(sessions["sessions"], json!([stored_session]));
    // Idempotent re-creation still recognises the records stored by the previous server.
    assert_eq!(app.post_json("/api/v1/contexts/", &context("c1")).0, 201);
    let mut different = context("c1");
    different["cpu_count"] = json!(1);
    assert_eq!(app.post_json("/api/v1/contexts/", &different).0, 409);
}

#[test]
fn sixteen_clients_posting_at_once_all_get_201_and_every_metric_is_stored() {
    const CLIENTS: usize = 16;
    const PER_CLIENT: usize = 5;
    let app = spawn_app();
    let start = Barrier::new(CLIENTS);

    let statuses: Vec<Vec<u16>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let (app, start) = (&app, &start);
                scope.spawn(move || {
                    start.wait();
                    (0..PER_CLIENT)
                        .map(|n| {
                            let body = metric(&format!("client{client}_test{n}"));
                            app.post_json("/api/v1/metrics/", &body).0
                        })
                        .collect()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a client thread panicked"))
            .collect()
    });

    for (client, statuses) in statuses.iter().enumerate() {
        assert_eq!(statuses, &[201; PER_CLIENT], "client {client}");
    }
    let expected = (CLIENTS * PER_CLIENT) as u64;
    assert_eq!(
        app.get("/api/v1/metrics/count"),
        (200, json!({"count": expected}))
    );
    assert_eq!(app.rows_in("metrics"), expected as i64);
    // Every client's metrics appear in the order that client sent them.
    let (_, listing) = app.get("/api/v1/metrics/");
    for client in 0..CLIENTS {
        let prefix = format!("client{client}_");
        let mine: Vec<&str> = listing["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["item"].as_str())
            .filter(|item| item.starts_with(&prefix))
            .collect();
        let sent: Vec<String> = (0..PER_CLIENT)
            .map(|n| format!("client{client}_test{n}"))
            .collect();
        assert_eq!(mine, sent);
    }
}

#[test]
fn racing_workers_creating_the_same_context_and_session_all_get_201() {
    const WORKERS: usize = 8;
    let app = spawn_app();
    let start = Barrier::new(WORKERS);

    let statuses: Vec<(u16, u16)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let (app, start) = (&app, &start);
                scope.spawn(move || {
                    start.wait();
                    let ctx = app.post_json("/api/v1/contexts/", &context("shared")).0;
                    let ses = app.post_json("/api/v1/sessions/", &session("shared")).0;
                    (ctx, ses)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });

    assert_eq!(statuses, vec![(201, 201); WORKERS]);
    assert_eq!(app.rows_in("contexts"), 1);
    assert_eq!(app.rows_in("sessions"), 1);
    assert_eq!(app.rows_in("session_tags"), 4);
}
