//! The schema: `schema.sql`, its version in `PRAGMA user_version`, and the start-up check that a
//! file is ours and up to date before anything is written to it ([`crate::db::migrate`] holds the
//! steps that bring an older file up).

use rusqlite::{Connection, TransactionBehavior};

use crate::db::connection::describe;

/// The schema, applied at every start-up; each statement is idempotent.
pub const SCHEMA: &str = include_str!("../../schema.sql");

/// The schema version this binary writes, kept in `PRAGMA user_version`. Older files are
/// migrated at start-up by the steps of [`crate::db::migrate::MIGRATIONS`].
pub const SCHEMA_VERSION: i64 = 3;

/// The tables this binary owns; a file holding any other table belongs to someone else, except
/// those of [`REPLICATOR_PREFIX`].
const OWN_TABLES: [&str; 8] = [
    "contexts",
    "sessions",
    "session_tags",
    "metrics",
    "counters",
    "metric_facets",
    "component_sessions",
    "metric_holes",
];

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
        .partition(|t| OWN_TABLES.contains(&t.as_str()));
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
    if version == SCHEMA_VERSION && own.len() == OWN_TABLES.len() && !stale_trigger {
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
    tx.commit().map_err(|err| describe(&err))
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
    use crate::db::test_support::{facets, metric, open_temp};
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

    #[test]
    fn a_version_1_file_is_migrated_with_its_metrics_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let expected = {
            let db = Db::open(&path, 1).unwrap();
            let conn = db.pool.get().unwrap();
            for m in [
                metric("s1", "function", "core"),
                metric("s1", "class", ""),
                metric("s2", "function", "core"),
            ] {
                store_metrics(&conn, &[m]).unwrap();
            }
            let expected = facets(&conn);
            // What version 1 left: no kind, context or session facets, the old index, its
            // version number.
            conn.execute_batch(
                "DELETE FROM metric_facets WHERE field IN ('kind', 'context_h', 'session_h');
                 DROP INDEX metrics_by_component;
                 CREATE INDEX metrics_by_component_item ON metrics (component, item);
                 PRAGMA user_version = 1;",
            )
            .unwrap();
            expected
        };
        let db = Db::open(&path, 1).unwrap();
        let conn = db.pool.get().unwrap();
        assert_eq!(facets(&conn), expected);
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'metrics'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(indexes.contains(&"metrics_by_component".to_owned()));
        assert!(!indexes.contains(&"metrics_by_component_item".to_owned()));
        // What comes next is counted too.
        store_metrics(&conn, &[metric("s2", "module", "io")]).unwrap();
        let kinds = MetricQuery::all().eq(TextColumn::Kind, "function");
        assert_eq!(count_metrics_by(&conn, &kinds).unwrap(), 2);
        let session = MetricQuery::all().eq(TextColumn::SessionH, "s2");
        assert_eq!(count_metrics_by(&conn, &session).unwrap(), 2);
    }

    #[test]
    fn a_version_3_file_still_counting_deletes_by_trigger_loses_the_trigger_and_counts_once() {
        // Arrange: a file of a development build of version 3, which kept the delete trigger.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        {
            let db = Db::open(&path, 1).unwrap();
            let conn = db.pool.get().unwrap();
            store_metrics(&conn, &[metric("s1", "function", "core")]).unwrap();
            store_metrics(&conn, &[metric("s2", "class", "io")]).unwrap();
            conn.execute_batch(
                "CREATE TRIGGER metrics_uncounted AFTER DELETE ON metrics BEGIN
                     UPDATE counters SET n = n - 1 WHERE name = 'metrics';
                 END;",
            )
            .unwrap();
        }

        // Act
        let db = Db::open(&path, 1).unwrap();
        let conn = db.pool.get().unwrap();
        delete_session(&conn, "s2").unwrap();

        // Assert
        let triggers: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(triggers, 0);
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
