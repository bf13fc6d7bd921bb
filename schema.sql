-- monitor-server's storage, schema version 3 (kept in PRAGMA user_version; older files are
-- migrated by src/migrate.rs before this is applied).
-- Applied at every start-up inside one transaction: every statement must be idempotent.

-- The machines sessions ran on, keyed by pytest-monitor's hash.
CREATE TABLE IF NOT EXISTS contexts (
    id            INTEGER PRIMARY KEY,
    h             TEXT    NOT NULL UNIQUE,
    cpu_count     INTEGER NOT NULL,
    cpu_frequency REAL    NOT NULL,
    cpu_type      TEXT    NOT NULL,
    cpu_vendor    TEXT    NOT NULL DEFAULT '',
    ram_total     INTEGER NOT NULL,
    machine_node  TEXT    NOT NULL,
    machine_type  TEXT    NOT NULL,
    machine_arch  TEXT    NOT NULL,
    system_info   TEXT    NOT NULL,
    python_info   TEXT    NOT NULL
);

-- One row per pytest run. `description` is the tags object as JSON text, key order kept.
CREATE TABLE IF NOT EXISTS sessions (
    id          INTEGER PRIMARY KEY,
    session_h   TEXT NOT NULL UNIQUE,
    run_date    TEXT NOT NULL,
    scm_ref     TEXT NOT NULL,
    description TEXT NOT NULL
);

-- The session's tags flattened, so that tag, pipeline and build queries can use an index.
CREATE TABLE IF NOT EXISTS session_tags (
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    PRIMARY KEY (session_id, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS session_tags_by_name ON session_tags (name, value);

-- One row per measured test item. `id` is the order of storage, which listings follow.
-- session_h and context_h are not foreign keys: a metric may name a session or context the
-- server has never seen (the seed's own example does).
CREATE TABLE IF NOT EXISTS metrics (
    id              INTEGER PRIMARY KEY,
    session_h       TEXT NOT NULL,
    context_h       TEXT NOT NULL,
    item_start_time TEXT NOT NULL,
    -- item_start_time in microseconds since 1970 UTC (a time without offset counts as UTC), so
    -- that time ranges and sorting work whatever spelling each client used.
    start_us        INTEGER NOT NULL,
    item_path       TEXT NOT NULL,
    item            TEXT NOT NULL,
    item_variant    TEXT NOT NULL,
    item_fs_loc     TEXT NOT NULL,
    kind            TEXT NOT NULL,
    component       TEXT NOT NULL,
    total_time      REAL NOT NULL,
    user_time       REAL NOT NULL,
    kernel_time     REAL NOT NULL,
    cpu_usage       REAL NOT NULL,
    mem_usage       REAL NOT NULL
);
-- One index per column a route or filter matches exactly. Single columns on purpose: the metrics
-- of one value come out of the index in the order stored (by id), which is the order listings
-- follow, so a page is read without sorting the whole selection.
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

-- Row counts, so that counting a large table never scans it. Like the two tables below, kept
-- by the writer as it stores metrics (db::insert_metrics, which adds up the changes of a whole
-- group of writes and applies them once) and by db::MetricEraser as they are deleted (in the
-- same way, one update per distinct value deleted), never by a trigger: a metric deleted by any
-- other means stays counted.
CREATE TABLE IF NOT EXISTS counters (
    name TEXT    PRIMARY KEY,
    n    INTEGER NOT NULL
) WITHOUT ROWID;

-- The distinct values of the columns routes select by, with how many metrics carry each: listing
-- components or matching item names by substring reads this small table instead of scanning
-- every metric, and counting the metrics of a kind, a machine, a session or
-- a set of sessions (a pipeline, a build, an SCM reference) adds up a few of its rows.
CREATE TABLE IF NOT EXISTS metric_facets (
    field TEXT    NOT NULL, -- 'component', 'item', 'item_variant', 'kind', 'context_h', 'session_h'
    value TEXT    NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (field, value)
) WITHOUT ROWID;

-- Which sessions reported metrics of which component, so that a component's pipelines and
-- builds are found without reading its metrics.
CREATE TABLE IF NOT EXISTS component_sessions (
    component TEXT NOT NULL,
    session_h TEXT NOT NULL,
    PRIMARY KEY (component, session_h)
) WITHOUT ROWID;

-- The ids of deleted metrics, as maximal runs of consecutive ids, so that the metric at any
-- position of the order stored is found with one lookup even after deletes (ids are dense until
-- the first delete; SQLite gives a new metric the largest id plus one, so deleted ids are never
-- reused unless no stored metric follows them, and such ids are not listed here). Written in the
-- transaction of every delete (src/db.rs, `record_deleted_metrics`), never by a trigger.
-- `live_before`: how many stored metrics have a smaller id than `first_id`; `deleted_through`:
-- how many ids up to `last_id` are deleted, this run's and those of every run before it.
CREATE TABLE IF NOT EXISTS metric_holes (
    first_id        INTEGER PRIMARY KEY,
    last_id         INTEGER NOT NULL,
    live_before     INTEGER NOT NULL,
    deleted_through INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS metric_holes_by_position ON metric_holes (live_before);

-- Development builds of version 3 still counted deletes with this trigger; MetricEraser (src/db.rs)
-- counts them now, and both counting would count each delete twice.
DROP TRIGGER IF EXISTS metrics_uncounted;
