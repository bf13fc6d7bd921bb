#!/usr/bin/env python3
"""What each group of `metric_rows` indexes costs a write, measured on SQLite alone.

    python3 bench/tools/index_cost.py [ROWS] [BATCHES]

Creates the schema (`schema.sql`) in a fresh file, drops some of the metric rows' indexes, and
inserts BATCHES transactions of ROWS rows (default 4 x 50,000) whose names are already ids, the
way the writer's one INSERT does, through Python's `executemany` (one prepared statement, a step
per row): the rows a second SQLite itself can store, with no HTTP, JSON or name lookups. Figures
are random, as measurements are, so each resource index takes its rows at random places; the
ids and start times grow, as they do in a store. Each variant is run twice, alternating, and
the better rate printed, since the machine may be shared. The same for the writer connection's
page cache (`cache_size`) with every index kept.
"""
import os
import random
import re
import sqlite3
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA = open(os.path.join(ROOT, "schema.sql")).read()
INDEXES = re.findall(r"CREATE INDEX IF NOT EXISTS (metric_rows_by_\w+)", SCHEMA)
RESOURCES = ("total_time", "user_time", "kernel_time", "cpu_usage", "mem_usage")
COLUMNS = ("session_id, context_id, test_id, component_id, kind_id, start_us, item_start_time, "
           "total_time, user_time, kernel_time, cpu_usage, mem_usage")


def batch(first, rows):
    return [(1 + (first + i) // 1000, 1, random.randint(1, 1000), 1, 1,
             1_700_000_000_000_000 + (first + i) * 1000, None, random.random(), random.random(),
             random.random(), random.random(), random.random())
            for i in range(rows)]


def rate(drop, cache_kib, rows, batches):
    """Rows a second over `batches` transactions, with the indexes `drop` dropped."""
    with tempfile.TemporaryDirectory() as d:
        conn = sqlite3.connect(os.path.join(d, "m.db"), isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA cache_size = -{cache_kib}")
        conn.executescript(SCHEMA)
        for index in drop:
            conn.execute(f"DROP INDEX {index}")
        insert = f"INSERT INTO metric_rows ({COLUMNS}) VALUES ({', '.join('?' * 12)})"
        spent = 0.0
        for b in range(batches):
            data = batch(b * rows, rows)
            started = time.perf_counter()
            conn.execute("BEGIN")
            conn.executemany(insert, data)
            conn.execute("COMMIT")
            spent += time.perf_counter() - started
        conn.close()
        return rows * batches / spent


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    batches = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    resource = [i for i in INDEXES if i.split("_by_")[1] in RESOURCES]
    variants = [
        (f"all {len(INDEXES)} indexes, 2 MiB cache (SQLite's default, the writer's)", [], 2048),
        (f"without the {len(resource)} resource indexes", resource, 2048),
        ("without any index", INDEXES, 2048),
        (f"all {len(INDEXES)} indexes, 8 MiB cache", [], 8192),
        (f"all {len(INDEXES)} indexes, 32 MiB cache", [], 32768),
    ]
    best = {name: 0.0 for name, _, _ in variants}
    for _ in range(2):
        for name, drop, cache in variants:
            best[name] = max(best[name], rate(drop, cache, rows, batches))
    print(f"{batches} transactions of {rows:,} rows into metric_rows, SQLite {sqlite3.sqlite_version}")
    base = best[variants[0][0]]
    for name, _, _ in variants:
        print(f"  {name:<62} {best[name]:>9,.0f} rows/s  {best[name] / base:4.2f}x")


if __name__ == "__main__":
    main()
