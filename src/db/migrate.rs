//! Schema migrations: how a database written by an older monitor-server is brought up to
//! [`SCHEMA_VERSION`](crate::db::SCHEMA_VERSION) in place.
//!
//! The version lives in `PRAGMA user_version`. [`MIGRATIONS`] lists one step per version, each
//! taking a file from version `from` to `from + 1`; at start-up `schema::prepare_schema` runs every
//! step a file needs, then `schema.sql` and the new `user_version`, all inside **one** transaction:
//! a step that fails midway (a row it cannot convert, a table it does not expect) rolls everything
//! back, so the file is left exactly as it was and the old binary can still use it.
//!
//! A step is history: it must not read `schema.sql` (which describes only the newest layout) but
//! carry the statements of its own version, so that it keeps meaning the same as the schema moves
//! on. Steps check what is there rather than assume it, because a file may hold more than its
//! version promises (see version 1 below).
//!
//! | version | layout |
//! |---|---|
//! | 0 | an empty file: `schema.sql` is applied as is |
//! | 1 | the first release (`tests/fixtures/schema_v1.sql`): contexts, sessions, session_tags, metrics without `start_us`, two indexes. Files written by the development builds between the first release and version 2 also say 1 but already have the version-2 layout. |
//! | 2 | `metrics.start_us`, the `counters`, `metric_facets` and `component_sessions` tables and their triggers, and the query indexes (`tests/fixtures/schema_v2.sql`) |
//! | 3 | no triggers: the writer counts the metrics it stores ([`crate::db::insert_metrics`]) and those it deletes ([`crate::db::MetricEraser`]) |
//! | 4 | the strings metrics repeat stored once (`session_hashes`, `context_hashes`, `components`, `kinds`, `tests`), `metric_rows` holding their ids, the `metrics` view showing them as before, `sessions.hash_id` |

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, Transaction};

use crate::db::ids::NameIds;
use crate::models::{is_canonical_iso8601, parse_iso8601, Metric};

/// One step of the schema's history.
pub struct Migration {
    /// The version this step starts from; it leaves the file at `from + 1`.
    pub from: i64,
    /// What the step does, for the log.
    pub summary: &'static str,
    /// The step itself, run inside the start-up transaction. The error is one line for the
    /// operator.
    pub run: fn(&Transaction<'_>) -> Result<(), String>,
}

/// Every step, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        from: 1,
        summary: "add metrics.start_us and the counter, facet and component tables",
        run: v1_to_v2,
    },
    Migration {
        from: 2,
        summary: "count stored and deleted metrics in the writer instead of triggers",
        run: v2_to_v3,
    },
    Migration {
        from: 3,
        summary: "store each session and context hash, component, kind and test once",
        run: v3_to_v4,
    },
];

/// Runs every step from `version` up to the newest, inside `tx`. Versions 0 (a new file) and the
/// newest need no step.
pub fn upgrade(tx: &Transaction<'_>, version: i64) -> Result<(), String> {
    if version == 0 {
        return Ok(());
    }
    for step in MIGRATIONS.iter().filter(|step| step.from >= version) {
        let to = step.from + 1;
        let started = std::time::Instant::now();
        (step.run)(tx).map_err(|reason| {
            format!(
                "cannot migrate it from schema version {} to {to}: {reason}; \
                 nothing was changed",
                step.from
            )
        })?;
        // Logged once done, so that a failed start-up stays one line; the transaction commits
        // after every step and schema.sql have run.
        log::info!(
            "migrated the database from schema version {} to {to} in {:?}: {}",
            step.from,
            started.elapsed(),
            step.summary
        );
    }
    Ok(())
}

/// Rows of `metrics` converted per batch while filling `start_us`, so that the select and the
/// updates never interleave on one table.
const START_US_BATCH: i64 = 10_000;

/// The tables, indexes and triggers version 2 added, exactly as version 2 created them.
const V2_ADDITIONS: &str = "
CREATE INDEX IF NOT EXISTS metrics_by_session ON metrics (session_h);
CREATE INDEX IF NOT EXISTS metrics_by_context ON metrics (context_h);
CREATE INDEX IF NOT EXISTS metrics_by_component ON metrics (component);
CREATE INDEX IF NOT EXISTS metrics_by_item ON metrics (item);
CREATE INDEX IF NOT EXISTS metrics_by_variant ON metrics (item_variant);
CREATE INDEX IF NOT EXISTS metrics_by_kind ON metrics (kind);
CREATE INDEX IF NOT EXISTS metrics_by_start ON metrics (start_us);
-- head/tail of each resource, and sorted listings.
CREATE INDEX IF NOT EXISTS metrics_by_total_time ON metrics (total_time);
CREATE INDEX IF NOT EXISTS metrics_by_user_time ON metrics (user_time);
CREATE INDEX IF NOT EXISTS metrics_by_kernel_time ON metrics (kernel_time);
CREATE INDEX IF NOT EXISTS metrics_by_cpu_usage ON metrics (cpu_usage);
CREATE INDEX IF NOT EXISTS metrics_by_mem_usage ON metrics (mem_usage);

-- Row counts kept by triggers, so that counting a large table never scans it.
CREATE TABLE IF NOT EXISTS counters (
    name TEXT    PRIMARY KEY,
    n    INTEGER NOT NULL
) WITHOUT ROWID;

-- The distinct values of the columns routes select by, with how many metrics carry each, kept by
-- triggers: listing components or matching item names by substring reads this small table
-- instead of scanning every metric, and counting the metrics of a kind, a machine, a session or
-- a set of sessions (a pipeline, a build, an SCM reference) adds up a few of its rows.
CREATE TABLE IF NOT EXISTS metric_facets (
    field TEXT    NOT NULL, -- 'component', 'item', 'item_variant', 'kind', 'context_h', 'session_h'
    value TEXT    NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (field, value)
) WITHOUT ROWID;

-- Which sessions reported metrics of which component, kept by triggers, so that a component's
-- pipelines and builds are found without reading its metrics.
CREATE TABLE IF NOT EXISTS component_sessions (
    component TEXT NOT NULL,
    session_h TEXT NOT NULL,
    PRIMARY KEY (component, session_h)
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS metrics_counted AFTER INSERT ON metrics BEGIN
    INSERT OR IGNORE INTO component_sessions (component, session_h)
        VALUES (NEW.component, NEW.session_h);
    INSERT INTO counters (name, n) VALUES ('metrics', 1)
        ON CONFLICT (name) DO UPDATE SET n = n + 1;
    INSERT INTO metric_facets (field, value, n)
        VALUES ('component', NEW.component, 1), ('item', NEW.item, 1),
               ('item_variant', NEW.item_variant, 1), ('kind', NEW.kind, 1),
               ('context_h', NEW.context_h, 1), ('session_h', NEW.session_h, 1)
        ON CONFLICT (field, value) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER IF NOT EXISTS metrics_uncounted AFTER DELETE ON metrics BEGIN
    UPDATE counters SET n = n - 1 WHERE name = 'metrics';
    UPDATE metric_facets SET n = n - 1
        WHERE (field = 'component' AND value = OLD.component)
           OR (field = 'item' AND value = OLD.item)
           OR (field = 'item_variant' AND value = OLD.item_variant)
           OR (field = 'kind' AND value = OLD.kind)
           OR (field = 'context_h' AND value = OLD.context_h)
           OR (field = 'session_h' AND value = OLD.session_h);
    DELETE FROM metric_facets WHERE n <= 0
        AND ((field = 'component' AND value = OLD.component)
          OR (field = 'item' AND value = OLD.item)
          OR (field = 'item_variant' AND value = OLD.item_variant)
          OR (field = 'kind' AND value = OLD.kind)
          OR (field = 'context_h' AND value = OLD.context_h)
          OR (field = 'session_h' AND value = OLD.session_h));
    DELETE FROM component_sessions
        WHERE component = OLD.component AND session_h = OLD.session_h
          AND NOT EXISTS (SELECT 1 FROM metrics
                          WHERE session_h = OLD.session_h AND component = OLD.component);
END;
";

/// The trigger-kept tables, rebuilt from the metrics as the triggers would have kept them.
pub(super) const V2_REBUILD_DERIVED: &str = "
DELETE FROM counters WHERE name = 'metrics';
INSERT INTO counters (name, n) SELECT 'metrics', count(*) FROM metrics HAVING count(*) > 0;
DELETE FROM metric_facets;
INSERT INTO metric_facets (field, value, n)
    SELECT 'component', component, count(*) FROM metrics GROUP BY component;
INSERT INTO metric_facets (field, value, n)
    SELECT 'item', item, count(*) FROM metrics GROUP BY item;
INSERT INTO metric_facets (field, value, n)
    SELECT 'item_variant', item_variant, count(*) FROM metrics GROUP BY item_variant;
INSERT INTO metric_facets (field, value, n)
    SELECT 'kind', kind, count(*) FROM metrics GROUP BY kind;
INSERT INTO metric_facets (field, value, n)
    SELECT 'context_h', context_h, count(*) FROM metrics GROUP BY context_h;
INSERT INTO metric_facets (field, value, n)
    SELECT 'session_h', session_h, count(*) FROM metrics GROUP BY session_h;
DELETE FROM component_sessions;
INSERT INTO component_sessions (component, session_h)
    SELECT DISTINCT component, session_h FROM metrics;
";

/// Version 1 → 2: adds `metrics.start_us`, computed from each row's `item_start_time` with the
/// parser requests go through (SQLite's own date functions do not read every spelling
/// `isoformat()` writes), then the new tables, filled from the stored metrics, their triggers and
/// the new indexes. A file that already has some of these (a development build's) keeps its
/// `start_us` values, and its derived tables are rebuilt, which gives the same content.
fn v1_to_v2(tx: &Transaction<'_>) -> Result<(), String> {
    let sql_error = |err: rusqlite::Error| err.to_string();
    if !has_column(tx, "metrics", "start_us").map_err(sql_error)? {
        // ADD COLUMN needs a default for a NOT NULL column; every row gets its real value below
        // and every insert gives one, so the 0 is never read.
        tx.execute_batch("ALTER TABLE metrics ADD COLUMN start_us INTEGER NOT NULL DEFAULT 0")
            .map_err(sql_error)?;
        fill_start_us(tx)?;
    }
    // Files written by early version-1 builds may hold the first triggers (which counted fewer
    // facets) and the (component, item) index; version 2 replaces both.
    tx.execute_batch(
        "DROP TRIGGER IF EXISTS metrics_counted;
         DROP TRIGGER IF EXISTS metrics_uncounted;
         DROP INDEX IF EXISTS metrics_by_component_item;",
    )
    .map_err(sql_error)?;
    tx.execute_batch(V2_ADDITIONS).map_err(sql_error)?;
    tx.execute_batch(V2_REBUILD_DERIVED).map_err(sql_error)
}

/// Version 2 → 3: drops both triggers, `metrics_counted` and `metrics_uncounted`. The counts
/// they kept are right and stay; from now on the writer keeps them, adding up what a whole group
/// of stores ([`crate::db::insert_metrics`]) or a delete ([`crate::db::MetricEraser`]) changes
/// before applying it, which costs a fraction of the triggers' statements per row.
fn v2_to_v3(tx: &Transaction<'_>) -> Result<(), String> {
    tx.execute_batch(
        "DROP TRIGGER IF EXISTS metrics_counted;
         DROP TRIGGER IF EXISTS metrics_uncounted;",
    )
    .map_err(|err| err.to_string())
}

/// Sets `start_us` of every metric from its `item_start_time`; fails on the first time that does
/// not parse, naming the row.
fn fill_start_us(tx: &Transaction<'_>) -> Result<(), String> {
    let sql_error = |err: rusqlite::Error| err.to_string();
    let mut select = tx
        .prepare("SELECT id, item_start_time FROM metrics WHERE id > ?1 ORDER BY id LIMIT ?2")
        .map_err(sql_error)?;
    let mut update = tx
        .prepare("UPDATE metrics SET start_us = ?2 WHERE id = ?1")
        .map_err(sql_error)?;
    let mut last = i64::MIN;
    loop {
        let batch: Vec<(i64, String)> = select
            .query_map(params![last, START_US_BATCH], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(sql_error)?;
        let Some(&(end, _)) = batch.last() else {
            return Ok(());
        };
        for (id, text) in &batch {
            let micros = parse_iso8601(text).map_err(|reason| {
                let shown: String = text.chars().take(64).collect();
                format!("metric {id} has item_start_time {shown:?}, which {reason}")
            })?;
            update.execute(params![id, micros]).map_err(sql_error)?;
        }
        last = end;
    }
}

/// True when `table` has a column `column`.
fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?;
    stmt.exists(params![table, column])
}

/// The tables version 4 added, exactly as version 4 created them, without the metric rows'
/// indexes, which [`V4_INDEXES`] builds once the rows are in.
const V4_TABLES: &str = "
CREATE TABLE session_hashes (id INTEGER PRIMARY KEY, h TEXT NOT NULL UNIQUE);
CREATE TABLE context_hashes (id INTEGER PRIMARY KEY, h TEXT NOT NULL UNIQUE);
CREATE TABLE components (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE kinds (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE tests (
    id           INTEGER PRIMARY KEY,
    item_path    TEXT    NOT NULL,
    item         TEXT    NOT NULL,
    item_variant TEXT    NOT NULL,
    item_fs_loc  TEXT    NOT NULL,
    kind_id      INTEGER NOT NULL REFERENCES kinds (id),
    component_id INTEGER NOT NULL REFERENCES components (id),
    UNIQUE (item_path, item, item_variant, item_fs_loc, kind_id, component_id)
);
CREATE INDEX tests_by_item ON tests (item);
CREATE INDEX tests_by_variant ON tests (item_variant);
CREATE INDEX tests_by_component ON tests (component_id);
CREATE TABLE metric_rows (
    id              INTEGER PRIMARY KEY,
    session_id      INTEGER NOT NULL,
    context_id      INTEGER NOT NULL,
    test_id         INTEGER NOT NULL,
    component_id    INTEGER NOT NULL,
    kind_id         INTEGER NOT NULL,
    start_us        INTEGER NOT NULL,
    item_start_time TEXT,
    total_time      REAL    NOT NULL,
    user_time       REAL    NOT NULL,
    kernel_time     REAL    NOT NULL,
    cpu_usage       REAL    NOT NULL,
    mem_usage       REAL    NOT NULL
);
";

/// The column version 4 added to `sessions`, filled with each session's id in `session_hashes`
/// (a session no metric named gets one there, as `db::insert_session` gives it).
const SESSION_HASH_IDS: &str = "
ALTER TABLE sessions ADD COLUMN hash_id INTEGER;
INSERT OR IGNORE INTO session_hashes (h) SELECT session_h FROM sessions ORDER BY id;
UPDATE sessions SET hash_id = (SELECT id FROM session_hashes WHERE h = sessions.session_h);
";

/// The metric rows' indexes of version 4, built one by one once the rows are copied.
const V4_INDEXES: [&str; 11] = [
    "CREATE INDEX metric_rows_by_session ON metric_rows (session_id)",
    "CREATE INDEX metric_rows_by_context ON metric_rows (context_id)",
    "CREATE INDEX metric_rows_by_test ON metric_rows (test_id)",
    "CREATE INDEX metric_rows_by_component ON metric_rows (component_id)",
    "CREATE INDEX metric_rows_by_kind ON metric_rows (kind_id)",
    "CREATE INDEX metric_rows_by_start ON metric_rows (start_us)",
    "CREATE INDEX metric_rows_by_total_time ON metric_rows (total_time)",
    "CREATE INDEX metric_rows_by_user_time ON metric_rows (user_time)",
    "CREATE INDEX metric_rows_by_kernel_time ON metric_rows (kernel_time)",
    "CREATE INDEX metric_rows_by_cpu_usage ON metric_rows (cpu_usage)",
    "CREATE INDEX metric_rows_by_mem_usage ON metric_rows (mem_usage)",
];

/// Version 3 → 4: copies every metric, in id order and keeping its id (the order stored, and the
/// runs of `metric_holes`, stay exactly as they were), into `metric_rows`, its strings replaced by
/// the ids of the rows that store each once ([`NameIds`], which gives ids as version 4 does: a
/// later version that changes it must keep a copy here), and `item_start_time` kept only where it
/// is not the spelling the `metrics` view writes back. Then gives each session its hash's id
/// ([`SESSION_HASH_IDS`]), builds the indexes and drops the old table; the counts kept beside
/// the metrics (`counters`, `metric_facets`, `component_sessions`) hold names, not ids, and stay
/// as they are. Reports its progress on standard error.
fn v3_to_v4(tx: &Transaction<'_>) -> Result<(), String> {
    let sql_error = |err: rusqlite::Error| err.to_string();
    tx.execute_batch(V4_TABLES).map_err(sql_error)?;
    let total: u64 = tx
        .query_row(
            "SELECT coalesce((SELECT n FROM counters WHERE name = 'metrics'), 0)",
            [],
            |row| row.get(0),
        )
        .map_err(sql_error)?;
    let mut progress = Progress::new(total);
    let mut select = tx
        .prepare(
            "SELECT id, session_h, context_h, item_start_time, start_us, item_path, item, \
             item_variant, item_fs_loc, kind, component, total_time, user_time, kernel_time, \
             cpu_usage, mem_usage FROM metrics ORDER BY id",
        )
        .map_err(sql_error)?;
    let mut insert = tx
        .prepare(
            "INSERT INTO metric_rows (id, session_id, context_id, test_id, component_id, \
             kind_id, start_us, item_start_time, total_time, user_time, kernel_time, cpu_usage, \
             mem_usage) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )
        .map_err(sql_error)?;
    let mut ids = NameIds::default();
    let mut rows = select.query([]).map_err(sql_error)?;
    let mut copied = 0u64;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let id: i64 = row.get(0).map_err(sql_error)?;
        let m = Metric {
            session_h: row.get(1).map_err(sql_error)?,
            context_h: row.get(2).map_err(sql_error)?,
            item_start_time: row.get(3).map_err(sql_error)?,
            start_us: row.get(4).map_err(sql_error)?,
            item_path: row.get(5).map_err(sql_error)?,
            item: row.get(6).map_err(sql_error)?,
            item_variant: row.get(7).map_err(sql_error)?,
            item_fs_loc: row.get(8).map_err(sql_error)?,
            kind: row.get(9).map_err(sql_error)?,
            component: row.get(10).map_err(sql_error)?,
            total_time: row.get(11).map_err(sql_error)?,
            user_time: row.get(12).map_err(sql_error)?,
            kernel_time: row.get(13).map_err(sql_error)?,
            cpu_usage: row.get(14).map_err(sql_error)?,
            mem_usage: row.get(15).map_err(sql_error)?,
        };
        let of = ids.of(tx, &m).map_err(sql_error)?;
        let spelled = (!is_canonical_iso8601(&m.item_start_time, m.start_us))
            .then_some(m.item_start_time.as_str());
        insert
            .execute(params![
                id,
                of.session,
                of.context,
                of.test,
                of.component,
                of.kind,
                m.start_us,
                spelled,
                m.total_time,
                m.user_time,
                m.kernel_time,
                m.cpu_usage,
                m.mem_usage
            ])
            .map_err(sql_error)?;
        copied += 1;
        progress.copied(copied);
    }
    drop(rows);
    tx.execute_batch(SESSION_HASH_IDS).map_err(sql_error)?;
    for (n, index) in V4_INDEXES.iter().enumerate() {
        progress.indexing(n + 1, V4_INDEXES.len());
        tx.execute_batch(index).map_err(sql_error)?;
    }
    tx.execute_batch("DROP TABLE metrics").map_err(sql_error)?;
    progress.done(copied);
    Ok(())
}

/// The progress of a long migration on standard error: a line rewritten in place on a terminal,
/// else a line every 10% (a log, a service's journal). Quiet for small files.
struct Progress {
    total: u64,
    terminal: bool,
    started: Instant,
    shown: Instant,
    next_tenth: u64,
}

impl Progress {
    /// How often the line on a terminal is rewritten.
    const EVERY: Duration = Duration::from_millis(500);
    /// Files with fewer metrics migrate in well under a second: nothing is shown.
    const QUIET_BELOW: u64 = 100_000;

    fn new(total: u64) -> Self {
        let now = Instant::now();
        Progress {
            total,
            terminal: std::io::stderr().is_terminal(),
            started: now,
            shown: now,
            next_tenth: 1,
        }
    }

    fn quiet(&self) -> bool {
        self.total < Self::QUIET_BELOW
    }

    fn copied(&mut self, copied: u64) {
        if self.quiet() || copied % 4096 != 0 {
            return;
        }
        let percent = copied.saturating_mul(100) / self.total.max(1);
        if self.terminal {
            if self.shown.elapsed() < Self::EVERY {
                return;
            }
            self.shown = Instant::now();
            eprint!(
                "\rmigrating to schema 4: {copied} of {} metrics copied ({percent}%), {:.0} s",
                self.total,
                self.started.elapsed().as_secs_f64()
            );
        } else if percent >= self.next_tenth * 10 {
            self.next_tenth = percent / 10 + 1;
            eprintln!(
                "migrating to schema 4: {copied} of {} metrics copied ({percent}%), {:.0} s",
                self.total,
                self.started.elapsed().as_secs_f64()
            );
        }
        let _ = std::io::stderr().flush();
    }

    fn indexing(&mut self, n: usize, of: usize) {
        if self.quiet() {
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        if self.terminal {
            eprint!("\rmigrating to schema 4: building index {n} of {of}, {elapsed:.0} s\x1b[K");
        } else {
            eprintln!("migrating to schema 4: building index {n} of {of}, {elapsed:.0} s");
        }
        let _ = std::io::stderr().flush();
    }

    fn done(&self, copied: u64) {
        if self.quiet() {
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let (start, end) = if self.terminal {
            ("\r", "\x1b[K")
        } else {
            ("", "")
        };
        eprintln!(
            "{start}migrating to schema 4: {copied} metrics copied and indexed in {elapsed:.0} s; \
             committing{end}"
        );
    }
}
