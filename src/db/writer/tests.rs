//! The writer's promises, checked against a real database file: group commits, a conflict or a
//! panic undoing only its own change, a failed commit failing its group, the queue's bound, and
//! the counts of metrics stored and deleted in one group.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use actix_web::ResponseError;

use super::*;
use crate::db::connection::configure_connection;
use crate::db::contexts::insert_context;
use crate::db::created::Created;
use crate::db::erase::delete_session;
use crate::db::insert::store_metrics;
use crate::db::metrics::count_metrics_by;
use crate::db::query::MetricQuery;
use crate::db::schema::prepare_schema;
use crate::db::test_support;
use crate::models::{Context, Metric};

/// A writer on a fresh database with the server's schema, in its own temporary directory.
fn start_writer() -> (tempfile::TempDir, PathBuf, Writer) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let mut conn = Connection::open(&path).unwrap();
    prepare_schema(&mut conn).unwrap();
    configure_connection(&mut conn).unwrap();
    let writer = Writer::start(conn, path.clone(), Synchronous::Full.into()).unwrap();
    (dir, path, writer)
}

fn context(h: &str, cpu_count: i64) -> Context {
    Context {
        h: h.into(),
        cpu_count,
        cpu_frequency: 2400.0,
        cpu_type: "x86_64".into(),
        cpu_vendor: String::new(),
        ram_total: 16384,
        machine_node: "ci-1".into(),
        machine_type: "x86_64".into(),
        machine_arch: "64bit".into(),
        system_info: "Linux".into(),
        python_info: "3.12".into(),
    }
}

/// How many contexts another connection sees committed.
fn committed_contexts(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("SELECT count(*) FROM contexts", [], |row| row.get(0))
        .unwrap()
}

type Write<'a, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + 'a>>;

/// Polls `write` once, which queues it; it must then be waiting for the writer.
async fn queue<T>(write: &mut Write<'_, T>) {
    std::future::poll_fn(|cx| {
        assert!(write.as_mut().poll(cx).is_pending(), "a write did not wait");
        std::task::Poll::Ready(())
    })
    .await;
}

/// Occupies the writer with a write of its own until the returned sender is used (or
/// dropped), so that the writes queued meanwhile are taken together as the next group.
async fn hold(writer: &Writer) -> (Write<'_, ()>, std_mpsc::Sender<()>) {
    let (running, is_running) = std_mpsc::channel();
    let (release, released) = std_mpsc::channel::<()>();
    let mut held: Write<'_, ()> = Box::pin(writer.write(move |_| {
        running.send(()).unwrap();
        let _ = released.recv();
        Ok(())
    }));
    queue(&mut held).await;
    is_running
        .recv()
        .expect("the writer never ran the holding write");
    (held, release)
}

fn status(err: &ApiError) -> u16 {
    err.error_response().status().as_u16()
}

#[test]
fn writes_queued_together_share_one_commit_and_a_conflicting_one_alone_gets_409() {
    let (_dir, path, writer) = start_writer();
    actix_web::rt::System::new().block_on(async {
        // Arrange: three writes queued while the writer is busy; the second one reuses the
        // first one's hash with other content.
        let (held, release) = hold(&writer).await;
        let mut first: Write<'_, _> =
            Box::pin(writer.write(|conn| insert_context(conn, &context("a", 1))));
        let mut clash: Write<'_, _> =
            Box::pin(writer.write(|conn| insert_context(conn, &context("a", 2))));
        let check_path = path.clone();
        let mut last: Write<'_, _> = Box::pin(writer.write(move |conn| {
            let stored = insert_context(conn, &context("b", 1))?;
            // Within the group's transaction the writer sees the first context, while
            // another connection sees nothing committed yet: one transaction, one commit.
            let seen: i64 =
                conn.query_row("SELECT count(*) FROM contexts", [], |row| row.get(0))?;
            Ok((stored, seen, committed_contexts(&check_path)))
        }));
        for write in [&mut first, &mut clash] {
            queue(write).await;
        }
        queue(&mut last).await;

        // Act
        drop(release);
        held.await.unwrap();
        let (first, clash, last) = (first.await, clash.await, last.await);

        // Assert
        assert_eq!(first.unwrap(), Created::New(context("a", 1)));
        assert_eq!(status(&clash.unwrap_err()), 409);
        let (stored, seen, committed) = last.unwrap();
        assert_eq!(stored, Created::New(context("b", 1)));
        assert_eq!((seen, committed), (2, 0));
    });
    assert_eq!(committed_contexts(&path), 2);
}

#[test]
fn a_commit_that_fails_fails_every_write_of_its_group_and_stores_none_of_them() {
    let (_dir, path, writer) = start_writer();
    actix_web::rt::System::new().block_on(async {
        // Arrange: a good write, then one that makes the COMMIT fail (a tag of a session that
        // does not exist, its foreign key checked only at COMMIT), queued as one group.
        let (held, release) = hold(&writer).await;
        let mut good: Write<'_, _> =
            Box::pin(writer.write(|conn| insert_context(conn, &context("good", 1))));
        let mut breaking: Write<'_, _> = Box::pin(writer.write(|conn| {
            conn.execute_batch(
                "PRAGMA defer_foreign_keys = ON;
                 INSERT INTO session_tags (session_id, name, value) VALUES (999, 'n', 'v');",
            )?;
            Ok(())
        }));
        queue(&mut good).await;
        queue(&mut breaking).await;

        // Act
        drop(release);
        held.await.unwrap();
        let (good, breaking) = (good.await, breaking.await);

        // Assert: both answered the commit's error; then the writer takes writes again.
        assert_eq!(status(&good.unwrap_err()), 500);
        assert_eq!(status(&breaking.unwrap_err()), 500);
        writer
            .write(|conn| insert_context(conn, &context("after", 1)))
            .await
            .expect("the writer is stuck after a failed commit");
    });
    let conn = Connection::open(&path).unwrap();
    let hashes: Vec<String> = conn
        .prepare("SELECT h FROM contexts")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(hashes, ["after"]);
    let tags: i64 = conn
        .query_row("SELECT count(*) FROM session_tags", [], |row| row.get(0))
        .unwrap();
    assert_eq!(tags, 0);
}

/// A metric of test `item`, of kind `function`.
fn metric(session_h: &str, item: &str, component: &str) -> Metric {
    Metric {
        item: item.into(),
        item_variant: format!("{item}[]"),
        ..test_support::metric(session_h, "function", component)
    }
}

/// The kept counts as another connection sees them, and the same counts recomputed from the
/// committed metrics: (what is kept, what it should be).
fn kept_and_recomputed_counts(path: &Path) -> (Vec<String>, Vec<String>) {
    let conn = Connection::open(path).unwrap();
    let rows = |sql: &str| -> Vec<String> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    let kept = rows(
        "SELECT 'metrics ' || n FROM counters WHERE name = 'metrics' \
         UNION ALL SELECT * FROM (SELECT field || ' ' || value || ' ' || n FROM metric_facets \
                                  ORDER BY field, value) \
         UNION ALL SELECT * FROM (SELECT 'pair ' || component || ' ' || session_h \
                                  FROM component_sessions ORDER BY 1)",
    );
    let mut facets = Vec::new();
    for field in [
        "component",
        "context_h",
        "item",
        "item_variant",
        "kind",
        "session_h",
    ] {
        facets.push(format!(
            "SELECT '{field}' AS f, {field} AS v, count(*) AS n FROM metrics GROUP BY {field}"
        ));
    }
    let recomputed = rows(&format!(
        "SELECT 'metrics ' || count(*) FROM metrics HAVING count(*) > 0 \
         UNION ALL SELECT * FROM (SELECT f || ' ' || v || ' ' || n FROM ({}) ORDER BY f, v) \
         UNION ALL SELECT * FROM (SELECT DISTINCT 'pair ' || component || ' ' || session_h \
                                  FROM metrics ORDER BY 1)",
        facets.join(" UNION ALL ")
    ));
    (kept, recomputed)
}

#[test]
fn metrics_of_a_group_are_counted_once_before_the_commit_and_a_failed_change_leaves_no_count() {
    let (_dir, path, writer) = start_writer();
    actix_web::rt::System::new().block_on(async {
        // Arrange: queued together behind a held writer: metrics, a change that stores
        // metrics then fails, a change that reads the count, and more metrics.
        let (held, release) = hold(&writer).await;
        let mut first: Write<'_, _> = Box::pin(writer.store_metrics(vec![
            metric("s1", "test_a", "core"),
            metric("s1", "test_b", "core"),
            metric("s2", "test_a", ""),
        ]));
        let mut failing: Write<'_, ()> = Box::pin(writer.write(|conn| {
            store_metrics(conn, &[metric("s3", "test_x", "gone")])?;
            Err(ApiError::Conflict("refused after storing".into()))
        }));
        let mut reading: Write<'_, _> =
            Box::pin(writer.write(|conn| Ok(count_metrics_by(conn, &MetricQuery::all())?)));
        let mut last: Write<'_, _> =
            Box::pin(writer.store_metrics(vec![metric("s2", "test_c", "core")]));
        queue(&mut first).await;
        queue(&mut failing).await;
        queue(&mut reading).await;
        queue(&mut last).await;

        // Act
        drop(release);
        held.await.unwrap();

        // Assert: the failed change was answered its error, the read saw the metrics stored
        // before it in the group, and every count agrees with the metrics committed.
        assert_eq!(first.await.unwrap().len(), 3);
        assert_eq!(status(&failing.await.unwrap_err()), 409);
        assert_eq!(reading.await.unwrap(), 3);
        assert_eq!(last.await.unwrap()[0].item, "test_c");
    });
    let (kept, recomputed) = kept_and_recomputed_counts(&path);
    assert!(kept.contains(&"metrics 4".to_owned()), "{kept:?}");
    assert!(kept.contains(&"session_h s2 2".to_owned()), "{kept:?}");
    assert!(!kept.iter().any(|row| row.contains("gone")), "{kept:?}");
    assert_eq!(kept, recomputed);
}

#[test]
fn stores_and_a_delete_of_the_same_session_in_one_group_leave_every_count_exact() {
    let (_dir, path, writer) = start_writer();
    actix_web::rt::System::new().block_on(async {
        // Arrange: queued together behind a held writer: metrics of s1 and s2, the delete of
        // s1 (whose metrics are not counted yet when it is queued), and more metrics of s1.
        let (held, release) = hold(&writer).await;
        let mut before: Write<'_, _> = Box::pin(writer.store_metrics(vec![
            metric("s1", "test_a", "core"),
            metric("s1", "test_b", "core"),
            metric("s2", "test_a", ""),
        ]));
        let mut delete: Write<'_, _> =
            Box::pin(writer.write(|conn| Ok(delete_session(conn, "s1")?)));
        let mut after: Write<'_, _> = Box::pin(writer.store_metrics(vec![
            metric("s1", "test_c", "io"),
            metric("s2", "test_b", "core"),
        ]));
        queue(&mut before).await;
        queue(&mut delete).await;
        queue(&mut after).await;

        // Act
        drop(release);
        held.await.unwrap();

        // Assert
        assert_eq!(before.await.unwrap().len(), 3);
        assert_eq!(delete.await.unwrap().metrics, 2);
        assert_eq!(after.await.unwrap().len(), 2);
    });
    let (kept, recomputed) = kept_and_recomputed_counts(&path);
    assert!(kept.contains(&"metrics 3".to_owned()), "{kept:?}");
    assert!(kept.contains(&"session_h s1 1".to_owned()), "{kept:?}");
    assert!(!kept.contains(&"pair core s1".to_owned()), "{kept:?}");
    assert_eq!(kept, recomputed);
}

#[test]
fn a_write_beyond_the_queue_bound_is_refused_at_once_with_503_and_the_queued_ones_still_run() {
    let (_dir, path, writer) = start_writer();
    actix_web::rt::System::new().block_on(async {
        // Arrange: the writer is busy and the queue full.
        let (held, release) = hold(&writer).await;
        let mut queued: Vec<Write<'_, _>> = (0..MAX_QUEUED_WRITES)
            .map(|n| -> Write<'_, _> {
                Box::pin(
                    writer.write(move |conn| insert_context(conn, &context(&format!("q{n}"), 1))),
                )
            })
            .collect();
        for write in &mut queued {
            queue(write).await;
        }

        // Act
        let refused =
            actix_web::rt::time::timeout(Duration::from_secs(10), writer.write(|_| Ok(())))
                .await
                .expect("the write waited in the full queue instead of being refused");

        // Assert: refused without waiting, as a 503 the client may retry ...
        let response = refused
            .expect_err("the queue is full, yet the write was accepted")
            .error_response();
        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
        // ... while every queued write is made once the writer is free, and frees its place.
        drop(release);
        held.await.unwrap();
        for write in queued {
            write.await.expect("a queued write failed");
        }
        writer
            .write(|conn| insert_context(conn, &context("after", 1)))
            .await
            .expect("the queue has room again");
    });
    assert_eq!(
        committed_contexts(&path),
        MAX_QUEUED_WRITES as i64 + 1,
        "every queued write and the one after are stored"
    );
}

#[test]
fn a_write_that_panics_is_rolled_back_and_answered_500_while_the_rest_of_its_group_is_stored() {
    let (_dir, path, writer) = start_writer();
    actix_web::rt::System::new().block_on(async {
        // Arrange
        let (held, release) = hold(&writer).await;
        let mut before: Write<'_, _> =
            Box::pin(writer.write(|conn| insert_context(conn, &context("before", 1))));
        let mut panicking: Write<'_, ()> = Box::pin(writer.write(|conn| {
            insert_context(conn, &context("never", 1))?;
            panic!("a bug in a write");
        }));
        let mut after: Write<'_, _> =
            Box::pin(writer.write(|conn| insert_context(conn, &context("after", 1))));
        queue(&mut before).await;
        queue(&mut panicking).await;
        queue(&mut after).await;

        // Act
        drop(release);
        held.await.unwrap();

        // Assert
        before.await.expect("the write before the panic failed");
        assert_eq!(status(&panicking.await.unwrap_err()), 500);
        after.await.expect("the write after the panic failed");
    });
    assert_eq!(committed_contexts(&path), 2);
    let never: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM contexts WHERE h = 'never'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(never, 0);
}

/// Queues a write of context `h` whose future owns its handle on the writer.
fn queued_context(writer: &Arc<Writer>, h: &str) -> Write<'static, Created<Context>> {
    let (writer, context) = (Arc::clone(writer), context(h, 1));
    Box::pin(async move {
        writer
            .write(move |conn| insert_context(conn, &context))
            .await
    })
}

#[test]
fn dropping_the_writer_makes_the_writes_still_queued_before_its_thread_stops() {
    let (_dir, path, writer) = start_writer();
    let writer = Arc::new(writer);
    let (about_to_drop, dropping) = std_mpsc::channel();
    actix_web::rt::System::new().block_on(async {
        // Arrange: three writes queued behind a held writer, their clients gone.
        let (held, release) = hold(&writer).await;
        for n in 0..3 {
            let mut write = queued_context(&writer, &format!("q{n}"));
            queue(&mut write).await;
        }
        drop(held);

        // Act: the writer is dropped (on another thread, as the drop waits for the writer
        // thread), and let go.
        let dropper = std::thread::spawn(move || {
            about_to_drop.send(()).unwrap();
            drop(writer);
        });
        dropping.recv().unwrap();
        drop(release);
        dropper.join().expect("dropping the writer panicked");
    });

    // Assert: the drop returned once the queued writes were committed.
    assert_eq!(committed_contexts(&path), 3);
}

#[test]
fn a_checkpoint_comes_after_the_writes_queued_before_it() {
    let (_dir, path, writer) = start_writer();
    let writer = Arc::new(writer);
    actix_web::rt::System::new().block_on(async {
        // Arrange: three writes queued behind a held writer, then a checkpoint, asked for
        // as `Writer::checkpoint` does (which then blocks for the answer).
        let (held, release) = hold(&writer).await;
        let mut queued: Vec<_> = (0..3)
            .map(|n| queued_context(&writer, &format!("q{n}")))
            .collect();
        for write in &mut queued {
            queue(write).await;
        }
        let (reply, checkpointed) = oneshot::channel();
        writer
            .queue
            .as_ref()
            .unwrap()
            .send(Message::Checkpoint(reply))
            .unwrap();

        // Act
        drop(release);
        held.await.unwrap();
        for write in queued {
            write.await.expect("a queued write failed");
        }
        let outcome = checkpointed.await.unwrap().expect("the checkpoint failed");
        assert!(outcome.complete(), "{outcome:?}");
        let wal = path.with_extension("db-wal");
        let wal_size = std::fs::metadata(&wal).map_or(0, |m| m.len());

        // Assert: the writes were in the database file, not the WAL, when it was truncated.
        assert_eq!(
            wal_size, 0,
            "the WAL still held something after the checkpoint"
        );
    });
    assert_eq!(committed_contexts(&path), 3);
}

#[test]
fn a_checkpoint_held_back_by_a_reader_says_it_was_busy_and_how_far_it_got() {
    // Arrange: a reader holding a snapshot taken before the last commit, as Litestream does.
    let (_dir, path, writer) = start_writer();
    let writer = Arc::new(writer);
    let runtime = actix_web::rt::System::new();
    runtime.block_on(queued_context(&writer, "before")).unwrap();
    let reader = Connection::open(&path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let seen: i64 = reader
        .query_row("SELECT count(*) FROM contexts", [], |row| row.get(0))
        .unwrap();
    runtime.block_on(queued_context(&writer, "after")).unwrap();

    // Act
    let outcome = writer
        .checkpoint()
        .expect("a busy checkpoint is not an error");

    // Assert: busy, with the frames the reader still needs left in the WAL.
    assert_eq!(seen, 1);
    assert!(outcome.busy, "{outcome:?}");
    assert!(!outcome.complete(), "{outcome:?}");
    assert!(
        outcome.checkpointed_frames < outcome.log_frames,
        "{outcome:?}"
    );
    reader.execute_batch("COMMIT").unwrap();
    assert!(writer.checkpoint().unwrap().complete());
    assert_eq!(committed_contexts(&path), 2);
}

#[test]
fn the_writer_checkpoints_as_often_as_it_is_told_and_never_with_zero() {
    for (asked, expected) in [
        (None, DEFAULT_WAL_AUTOCHECKPOINT),
        (Some(0), 0),
        (Some(250), 250),
    ] {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let mut conn = Connection::open(&path).unwrap();
        prepare_schema(&mut conn).unwrap();
        configure_connection(&mut conn).unwrap();
        let durability = match asked {
            None => Durability::from(Synchronous::Full),
            Some(pages) => Durability {
                synchronous: Synchronous::Full,
                wal_autocheckpoint: pages,
            },
        };
        let writer = Writer::start(conn, path, durability).unwrap();

        // Act: what the connection that commits every write was set to.
        let pages: u32 = actix_web::rt::System::new()
            .block_on(writer.write(|conn| {
                Ok(conn.query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))?)
            }))
            .unwrap();

        // Assert
        assert_eq!(pages, expected, "asked for {asked:?}");
    }
}
