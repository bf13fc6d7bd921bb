-- monitor-server's storage, schema version 1 (kept in PRAGMA user_version).
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
CREATE INDEX IF NOT EXISTS metrics_by_session ON metrics (session_h);
CREATE INDEX IF NOT EXISTS metrics_by_context ON metrics (context_h);
