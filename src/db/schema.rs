//! The schema: `schema.sql`, its version in `PRAGMA user_version`, and the start-up check that a
//! file is ours and up to date before anything is written to it ([`crate::db::migrate`] holds the
//! steps that bring an older file up).

use rusqlite::{Connection, TransactionBehavior};

use crate::db::connection::describe;

/// The schema, applied at every start-up; each statement is idempotent.
pub const SCHEMA: &str = include_str!("../../schema.sql");

/// The schema version this binary writes, kept in `PRAGMA user_version`. Older files are
/// migrated at start-up by the steps of [`crate::db::migrate::MIGRATIONS`].
pub const SCHEMA_VERSION: i64 = 4;

/// The tables this binary writes; a file holding any other table (but those of
/// [`EARLIER_TABLES`] and [`REPLICATOR_PREFIX`]) belongs to someone else.
const OWN_TABLES: [&str; 13] = [
    "contexts",
    "sessions",
    "session_tags",
    "session_hashes",
    "context_hashes",
    "components",
    "kinds",
    "tests",
    "metric_rows",
    "counters",
    "metric_facets",
    "component_sessions",
    "metric_holes",
];

/// Tables of earlier schema versions that a migration replaces: `metrics` was a table until
/// version 4 made it a view of `metric_rows`.
const EARLIER_TABLES: [&str; 1] = ["metrics"];

/// The prefix of the tables Litestream adds to a database it replicates (`_litestream_seq`,
/// `_litestream_lock`): they travel into every restored copy too, and monitor-server neither
/// reads nor writes them.
const REPLICATOR_PREFIX: &str = "_litestream_";

/// Checks that the file is an SQLite database this binary may write: writable, readable where
/// it matters (header, schema and the first page of each table: a few pages, whatever the file's
/// size), holding no table of another application (Litestream's own excepted), and not newer than this binary. Only then,
/// in one transaction, migrates an older file ([`crate::db::migrate`]), applies `schema.sql` and
/// sets the version. Nothing is written to a file that is refused, nor to one a migration fails on.
pub(super) fn prepare_schema(conn: &mut Connection) -> Result<(), String> {
    if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
        return Err(
            "the file or its directory is read-only; monitor-server must write to it".into(),
        );
    }
    let version = schema_version(conn)?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
        .map_err(|err| describe(&err))?;
    let (own, foreign): (Vec<&String>, Vec<&String>) = tables
        .iter()
        .filter(|t| !t.starts_with(REPLICATOR_PREFIX))
        .partition(|t| OWN_TABLES.contains(&t.as_str()) || EARLIER_TABLES.contains(&t.as_str()));
    if let Some(foreign) = foreign.first() {
        return Err(format!(
            "it holds a table `{foreign}` that monitor-server did not create; \
             refusing to write into another application's database"
        ));
    }
    for table in &tables {
        // Reads the table's root and first leaf: a damaged table is found now, not by a request.
        conn.prepare(&format!("SELECT * FROM \"{table}\" LIMIT 1"))
            .and_then(|mut stmt| stmt.exists([]))
            .map_err(|err| describe(&err))?;
    }
    // Development builds of version 3 left the delete trigger, which schema.sql drops: such a
    // file is not done yet.
    let stale_trigger = conn
        .prepare(
            "SELECT 1 FROM sqlite_schema WHERE type = 'trigger' AND name = 'metrics_uncounted'",
        )
        .and_then(|mut stmt| stmt.exists([]))
        .map_err(|err| describe(&err))?;
    let current = own
        .iter()
        .filter(|t| OWN_TABLES.contains(&t.as_str()))
        .count();
    if version == SCHEMA_VERSION
        && current == own.len()
        && current == OWN_TABLES.len()
        && !stale_trigger
    {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|err| describe(&err))?;
    // Another process may have upgraded the file between the read above and the lock.
    let version = schema_version(&tx)?;
    crate::db::migrate::upgrade(&tx, version)?;
    tx.execute_batch(SCHEMA).map_err(|err| describe(&err))?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(|err| describe(&err))?;
    tx.commit().map_err(|err| describe(&err))?;
    if version > 0 {
        reclaim_free_pages(conn);
    }
    Ok(())
}

/// Gives the pages a migration freed back to the file system (`VACUUM`) when they are a large
/// share of the file: moving to schema 4 leaves the old metrics table's pages free, most of the
/// file. The migration is committed by then; a failure here (no room for the copy VACUUM makes)
/// only leaves the file larger than it need be, and is logged.
fn reclaim_free_pages(conn: &Connection) {
    let pages = |pragma: &str| -> i64 {
        conn.query_row(&format!("PRAGMA {pragma}"), [], |row| row.get(0))
            .unwrap_or(0)
    };
    let (total, free, page_size) = (
        pages("page_count"),
        pages("freelist_count"),
        pages("page_size"),
    );
    if free * 4 < total || free * page_size < 64 << 20 {
        return;
    }
    let started = std::time::Instant::now();
    eprintln!(
        "compacting the file: {} MB of {} MB are pages the old layout left free",
        (free * page_size) >> 20,
        (total * page_size) >> 20
    );
    match conn.execute_batch("VACUUM") {
        Ok(()) => log::info!(
            "compacted the database to {} MB in {:?}",
            (pages("page_count") * page_size) >> 20,
            started.elapsed()
        ),
        Err(err) => log::warn!("could not compact the database after migrating it: {err}"),
    }
}

/// The file's schema version; an error when it is newer than this binary's.
fn schema_version(conn: &Connection) -> Result<i64, String> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|err| describe(&err))?;
    if version > SCHEMA_VERSION {
        return Err(format!(
            "its schema version {version} is newer than this binary's ({SCHEMA_VERSION}); \
             use a newer monitor-server"
        ));
    }
    if version < 0 {
        return Err(format!(
            "its schema version {version} is not one monitor-server writes"
        ));
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::query::{MetricQuery, TextColumn};
    use crate::db::test_support::{facets, metric, open_temp, v3_file};
    use crate::db::{count_metrics, count_metrics_by, delete_session, store_metrics, Db};

    #[test]
    fn opening_twice_keeps_the_schema_version() {
        let (dir, db) = open_temp();
        drop(db);
        let db = Db::open(&dir.path().join("m.db"), 2).unwrap();
        let conn = db.pool.get().unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    /// The names of the indexes and views `conn`'s file holds.
    fn objects(conn: &Connection, kind: &str) -> Vec<String> {
        conn.prepare("SELECT name FROM sqlite_schema WHERE type = ?1 ORDER BY name")
            .unwrap()
            .query_map([kind], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn a_version_1_file_is_migrated_with_its_metrics_counted() {
        // Arrange: the first release's layout, with the metrics it held; and the counts the
        // same metrics give when stored by this binary.
        let stored = [
            metric("s1", "function", "core"),
            metric("s1", "class", ""),
            metric("s2", "function", "core"),
        ];
        let (_fresh_dir, fresh) = open_temp();
        store_metrics(&fresh.pool.get().unwrap(), &stored).unwrap();
        let expected = facets(&fresh.pool.get().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(include_str!("../../tests/common/fixtures/schema_v1.sql"))
                .unwrap();
            for m in &stored {
                conn.execute(
                    "INSERT INTO metrics (session_h, context_h, item_start_time, item_path, \
                     item, item_variant, item_fs_loc, kind, component, total_time, user_time, \
                     kernel_time, cpu_usage, mem_usage) \
                     VALUES (?1, ?2, ?3, 'p', 'i', 'v', 'f', ?4, ?5, 1, 1, 1, 1, 1)",
                    rusqlite::params![
                        m.session_h,
                        m.context_h,
                        m.item_start_time,
                        m.kind,
                        m.component
                    ],
                )
                .unwrap();
            }
            conn.pragma_update(None, "user_version", 1).unwrap();
        }

        // Act
        let db = Db::open(&path, 1).unwrap();

        // Assert
        let conn = db.pool.get().unwrap();
        let kinds_and_more: Vec<_> = facets(&conn)
            .into_iter()
            .filter(|(field, _, _)| !field.starts_with("item"))
            .collect();
        let expected: Vec<_> = expected
            .into_iter()
            .filter(|(field, _, _)| !field.starts_with("item"))
            .collect();
        assert_eq!(kinds_and_more, expected);
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert!(objects(&conn, "index").contains(&"metric_rows_by_component".to_owned()));
        assert_eq!(objects(&conn, "view"), ["metrics"]);
        // What comes next is counted too.
        store_metrics(&conn, &[metric("s2", "module", "io")]).unwrap();
        let kinds = MetricQuery::all().eq(TextColumn::Kind, "function");
        assert_eq!(count_metrics_by(&conn, &kinds).unwrap(), 2);
        let session = MetricQuery::all().eq(TextColumn::SessionH, "s2");
        assert_eq!(count_metrics_by(&conn, &session).unwrap(), 2);
    }

    #[test]
    fn a_version_3_file_is_served_as_before_with_each_name_stored_once() {
        // Arrange: a version-3 file whose metrics name two sessions, one spelling its times
        // otherwise than pytest-monitor does.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let mut stored = vec![
            metric("s1", "function", "core"),
            metric("s1", "class", "io"),
            metric("s2", "function", "core"),
        ];
        stored[0].item_start_time = "2024-01-01T00:00:00.000000".into();
        stored[1].item_start_time = "2024-01-01T01:00:00+01:00".into();
        v3_file(&path, &stored);
        let before = facets(&Connection::open(&path).unwrap());

        // Act
        let db = Db::open(&path, 1).unwrap();

        // Assert
        let conn = db.pool.get().unwrap();
        let listed = crate::db::list_metrics(&conn, 0, 10).unwrap();
        assert_eq!(listed, stored);
        assert_eq!(facets(&conn), before);
        let names: (i64, i64, i64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM session_hashes), (SELECT count(*) FROM tests), \
                 (SELECT count(*) FROM metric_rows WHERE item_start_time IS NOT NULL)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        // Two sessions; two tests (a class in io, a function in core measured twice); the two
        // times not spelled with six digits of fraction kept as sent.
        assert_eq!(names, (2, 2, 2));
        assert!(objects(&conn, "table").iter().all(|t| t != "metrics"));
    }

    #[test]
    fn a_version_3_file_still_counting_deletes_by_trigger_loses_the_trigger_and_counts_once() {
        // Arrange: a file of a development build of version 3, which kept the delete trigger.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        v3_file(
            &path,
            &[
                metric("s1", "function", "core"),
                metric("s2", "class", "io"),
            ],
        );
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER metrics_uncounted AFTER DELETE ON metrics BEGIN
                     UPDATE counters SET n = n - 1 WHERE name = 'metrics';
                 END;",
            )
            .unwrap();

        // Act
        let db = Db::open(&path, 1).unwrap();
        let conn = db.pool.get().unwrap();
        delete_session(&conn, "s2").unwrap();

        // Assert
        assert!(objects(&conn, "trigger").is_empty());
        assert_eq!(count_metrics(&conn).unwrap(), 1);
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        let text = "these are not the pages you are looking for\n".repeat(200);
        std::fs::write(&path, &text).unwrap();
        let err = Db::open(&path, 1).err().expect("must refuse");
        assert!(err.to_string().contains("not an SQLite database"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = Db::open(&path, 1).err().expect("must refuse");
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[test]
    fn litestreams_own_tables_are_accepted_and_nothing_else_foreign() {
        // Arrange: a file as Litestream leaves it (live or restored): ours, plus its two tables.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        drop(Db::open(&path, 1).unwrap());
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER);
                 CREATE TABLE _litestream_lock (id INTEGER);",
            )
            .unwrap();

        // Act / Assert: it opens, and stays writable.
        let db = Db::open(&path, 1).expect("Litestream's tables must be accepted");
        store_metrics(&db.pool.get().unwrap(), &[metric("s1", "function", "core")]).unwrap();
        drop(db);

        // A name that only resembles Litestream's is someone else's.
        for foreign in ["_litestreamer", "litestream_seq"] {
            Connection::open(&path)
                .unwrap()
                .execute_batch(&format!("CREATE TABLE {foreign} (id INTEGER)"))
                .unwrap();
            let err = Db::open(&path, 1).err().expect("must refuse");
            assert!(err.to_string().contains(&format!("`{foreign}`")), "{err}");
            Connection::open(&path)
                .unwrap()
                .execute_batch(&format!("DROP TABLE {foreign}"))
                .unwrap();
        }
    }
}
