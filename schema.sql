-- monitor-server's storage, schema version 4 (kept in PRAGMA user_version; older files are
-- migrated by src/db/migrate.rs before this is applied).
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
    description TEXT NOT NULL,
    -- The id of `session_h` in `session_hashes`, which the session's metrics hold: a set of
    -- sessions (a pipeline, a build) turns into the ids of their metrics' rows without looking
    -- each hash up. NULL only in a row written by other means than db::insert_session (readers
    -- then look the hash up, see db::query::SESSION_HASH_ID).
    hash_id     INTEGER
);

-- The session's tags flattened, so that tag, pipeline and build queries can use an index.
CREATE TABLE IF NOT EXISTS session_tags (
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    PRIMARY KEY (session_id, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS session_tags_by_name ON session_tags (name, value);

-- The hashes metrics name: a metric may name a session or a machine the server has never seen
-- (the seed's own example does), so these are not `sessions` and `contexts` but every hash any
-- metric named, each stored once. Rows are never deleted, so an id, once given, stays valid.
CREATE TABLE IF NOT EXISTS session_hashes (
    id INTEGER PRIMARY KEY,
    h  TEXT    NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS context_hashes (
    id INTEGER PRIMARY KEY,
    h  TEXT    NOT NULL UNIQUE
);

-- The components and kinds of item metrics name, each stored once.
CREATE TABLE IF NOT EXISTS components (
    id   INTEGER PRIMARY KEY,
    name TEXT    NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS kinds (
    id   INTEGER PRIMARY KEY,
    name TEXT    NOT NULL UNIQUE
);

-- The tests metrics measure: the strings that name a test are the same in every run, so each
-- combination is stored once. Never deleted, like the hashes.
CREATE TABLE IF NOT EXISTS tests (
    id           INTEGER PRIMARY KEY,
    item_path    TEXT    NOT NULL,
    item         TEXT    NOT NULL,
    item_variant TEXT    NOT NULL,
    item_fs_loc  TEXT    NOT NULL,
    kind_id      INTEGER NOT NULL REFERENCES kinds (id),
    component_id INTEGER NOT NULL REFERENCES components (id),
    UNIQUE (item_path, item, item_variant, item_fs_loc, kind_id, component_id)
);
CREATE INDEX IF NOT EXISTS tests_by_item ON tests (item);
CREATE INDEX IF NOT EXISTS tests_by_variant ON tests (item_variant);
CREATE INDEX IF NOT EXISTS tests_by_component ON tests (component_id);

-- One row per measured test item. `id` is the order of storage, which listings follow.
-- The test's component and kind are repeated from `tests` so that their indexes list a
-- component's or a kind's metrics in the order stored, as a listing reads them.
-- `item_start_time` is NULL when it is the spelling the `metrics` view writes from `start_us`
-- (Python's isoformat of a UTC time with microseconds, as pytest-monitor sends it); any other
-- spelling a client used is kept as sent.
CREATE TABLE IF NOT EXISTS metric_rows (
    id              INTEGER PRIMARY KEY,
    session_id      INTEGER NOT NULL,
    context_id      INTEGER NOT NULL,
    test_id         INTEGER NOT NULL,
    component_id    INTEGER NOT NULL,
    kind_id         INTEGER NOT NULL,
    -- item_start_time in microseconds since 1970 UTC (a time without offset counts as UTC), so
    -- that time ranges and sorting work whatever spelling each client used.
    start_us        INTEGER NOT NULL,
    item_start_time TEXT,
    total_time      REAL    NOT NULL,
    user_time       REAL    NOT NULL,
    kernel_time     REAL    NOT NULL,
    cpu_usage       REAL    NOT NULL,
    mem_usage       REAL    NOT NULL
);
-- One index per column a route or filter matches exactly. Single columns on purpose: the metrics
-- of one value come out of the index in the order stored (by id), which is the order listings
-- follow, so a page is read without sorting the whole selection. A test item or variant name
-- is matched through `tests` and the few tests carrying it (`metric_rows_by_test`).
CREATE INDEX IF NOT EXISTS metric_rows_by_session ON metric_rows (session_id);
CREATE INDEX IF NOT EXISTS metric_rows_by_context ON metric_rows (context_id);
CREATE INDEX IF NOT EXISTS metric_rows_by_test ON metric_rows (test_id);
CREATE INDEX IF NOT EXISTS metric_rows_by_component ON metric_rows (component_id);
CREATE INDEX IF NOT EXISTS metric_rows_by_kind ON metric_rows (kind_id);
CREATE INDEX IF NOT EXISTS metric_rows_by_start ON metric_rows (start_us);
-- head/tail of each resource, and sorted listings.
CREATE INDEX IF NOT EXISTS metric_rows_by_total_time ON metric_rows (total_time);
CREATE INDEX IF NOT EXISTS metric_rows_by_user_time ON metric_rows (user_time);
CREATE INDEX IF NOT EXISTS metric_rows_by_kernel_time ON metric_rows (kernel_time);
CREATE INDEX IF NOT EXISTS metric_rows_by_cpu_usage ON metric_rows (cpu_usage);
CREATE INDEX IF NOT EXISTS metric_rows_by_mem_usage ON metric_rows (mem_usage);

-- The metrics as the API shows them, every string in place. LEFT JOINs on primary keys, so that
-- a query reading none of a table's columns does not read the table at all (SQLite leaves such a
-- join out), and a condition on one of them turns it into an inner join SQLite may start from.
-- Writes go to `metric_rows` (db::insert_metrics, db::MetricEraser).
CREATE VIEW IF NOT EXISTS metrics AS
SELECT m.id AS id,
       m.session_id AS session_id,
       m.context_id AS context_id,
       m.test_id AS test_id,
       m.component_id AS component_id,
       m.kind_id AS kind_id,
       s.h AS session_h,
       x.h AS context_h,
       coalesce(m.item_start_time,
                strftime('%Y-%m-%dT%H:%M:%S', m.start_us / 1000000, 'unixepoch')
                || printf('.%06d', m.start_us % 1000000)) AS item_start_time,
       m.start_us AS start_us,
       t.item_path AS item_path,
       t.item AS item,
       t.item_variant AS item_variant,
       t.item_fs_loc AS item_fs_loc,
       k.name AS kind,
       c.name AS component,
       m.total_time AS total_time,
       m.user_time AS user_time,
       m.kernel_time AS kernel_time,
       m.cpu_usage AS cpu_usage,
       m.mem_usage AS mem_usage
FROM metric_rows m
LEFT JOIN session_hashes s ON s.id = m.session_id
LEFT JOIN context_hashes x ON x.id = m.context_id
LEFT JOIN tests t ON t.id = m.test_id
LEFT JOIN kinds k ON k.id = m.kind_id
LEFT JOIN components c ON c.id = m.component_id;

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
-- transaction of every delete (src/db/erase.rs, `record_deleted_metrics`), never by a trigger.
-- `live_before`: how many stored metrics have a smaller id than `first_id`; `deleted_through`:
-- how many ids up to `last_id` are deleted, this run's and those of every run before it.
CREATE TABLE IF NOT EXISTS metric_holes (
    first_id        INTEGER PRIMARY KEY,
    last_id         INTEGER NOT NULL,
    live_before     INTEGER NOT NULL,
    deleted_through INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS metric_holes_by_position ON metric_holes (live_before);

-- Development builds of version 3 still counted deletes with this trigger; MetricEraser (src/db/erase.rs)
-- counts them now, and both counting would count each delete twice.
DROP TRIGGER IF EXISTS metrics_uncounted;
