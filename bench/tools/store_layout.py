#!/usr/bin/env python3
"""Bytes per stored metric of schema 3 and schema 4, and of each table and index, read with dbstat.

    python3 bench/tools/store_layout.py [N] [--iso-only]

Stores the same N (200,000) synthetic metrics — 2,800 tests (the bench suite's shape), 40-hex
session and context hashes, 20 machines — row by row with every index in place, as the server
writes them: once in the tables of schema 3 (`tests/common/fixtures/schema_v3.sql`) and once in
those of `schema.sql` (schema 4), resolving names to ids as `db::insert_metrics` does and
keeping `item_start_time` only where it is not the view's own spelling. Half the times are sent
with an offset (kept as text) unless `--iso-only`, where every time is pytest-monitor's
isoformat. Then it prints the bytes per metric of the whole file and of every table and index,
and schema 4 again without the five resource indexes, to weigh them."""
import hashlib, os, random, shutil, sqlite3, sys, tempfile, time
args = [a for a in sys.argv[1:] if not a.startswith("--")]
N = int(args[0]) if args else 200_000
ISO_ONLY = "--iso-only" in sys.argv
random.seed(1)
WORDS = ["read","write","parse","render","load","save","merge","split","sort","filter"]*4
AREAS = ["core","io","net","ui","db","auth","api","cli","sched","report"]
tests = []
for j in range(2000):
    block = j*50//2000; area = AREAS[block//5 % 10]
    comp = "" if block % 10 == 9 else f"{area}.{WORDS[block%40]}{block}"
    module = f"test_{WORDS[(j//10)%40]}_{j//10}"
    kind = {99:"package",49:"module",98:"module",48:"class",97:"class"}.get(j%100,"function")
    item = f"test_{WORDS[j%40]}_{j}"
    variants = [f"{item}[{p}]" for p in ("small","medium","large")] if j%5==0 else [item]
    for v in variants:
        tests.append((f"tests.{area}.{module}", item, v, f"tests/{area}/{module}.py", kind, comp))
def h(): return hashlib.sha1(os.urandom(8)).hexdigest()
contexts = [h() for _ in range(20)]
rows = []
s = 0
while len(rows) < N:
    sess = h(); ctx = contexts[s % 20]; s += 1
    us = 1_700_000_000_000_000 + s*3600_000_000
    for t in tests:
        if len(rows) >= N: break
        us += random.randint(1000, 200000)
        sec, frac = divmod(us, 1_000_000)
        iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:06d}"
        if not ISO_ONLY and len(rows) % 2:
            iso += "+00:00"
        rows.append((sess, ctx, iso, us, t, random.lognormvariate(-3,1.2), random.random(), random.random()*0.1, random.random()*100, random.lognormvariate(0.5,1)))
print(f"{len(rows)} metrics, {s} sessions, {len(tests)} tests")

def report(path, label):
    c = sqlite3.connect(path)
    total = 0; parts = []
    for name, size in c.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"):
        total += size; parts.append((name, size))
    print(f"== {label}: {total/len(rows):.0f} B/metric")
    for name, size in parts:
        if size/len(rows) >= 1: print(f"   {name:32s} {size/len(rows):6.1f}")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
d = tempfile.mkdtemp()
v3 = os.path.join(d, "v3.db"); v4 = os.path.join(d, "v4.db")
c = sqlite3.connect(v3)
c.executescript(open(os.path.join(ROOT, "tests", "common", "fixtures", "schema_v3.sql")).read())
c.executemany("INSERT INTO metrics (session_h, context_h, item_start_time, start_us, item_path, item, item_variant, item_fs_loc, kind, component, total_time, user_time, kernel_time, cpu_usage, mem_usage) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
  [(r[0], r[1], r[2], r[3], *r[4], *r[5:]) for r in rows])
c.commit(); c.close()
report(v3, "schema 3")

c = sqlite3.connect(v4)
c.executescript(open(os.path.join(ROOT, "schema.sql")).read())
ids = {}
def get_id(table, column, value):
    key = (table, value)
    if key not in ids:
        row = c.execute(f"SELECT id FROM {table} WHERE {column} = ?", (value,)).fetchone()
        if row is None:
            c.execute(f"INSERT INTO {table} ({column}) VALUES (?)", (value,))
            row = (c.execute("SELECT last_insert_rowid()").fetchone()[0],)
        ids[key] = row[0]
    return ids[key]
def test_id(t, kind, comp):
    key = ("tests", t)
    if key not in ids:
        c.execute("INSERT INTO tests (item_path, item, item_variant, item_fs_loc, kind_id, component_id) VALUES (?,?,?,?,?,?)", (*t[:4], kind, comp))
        ids[key] = c.execute("SELECT last_insert_rowid()").fetchone()[0]
    return ids[key]
for r in rows:
    t = r[4]
    comp = get_id("components", "name", t[5]); kind = get_id("kinds", "name", t[4])
    canonical = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(r[3] // 1_000_000)) + f".{r[3] % 1_000_000:06d}"
    c.execute("INSERT INTO metric_rows (session_id, context_id, test_id, component_id, kind_id, start_us, item_start_time, total_time, user_time, kernel_time, cpu_usage, mem_usage) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (get_id("session_hashes", "h", r[0]), get_id("context_hashes", "h", r[1]), test_id(t, kind, comp), comp, kind, r[3], None if r[2] == canonical else r[2], *r[5:]))
c.commit(); c.close()
report(v4, "schema 4" + (" (every time pytest-monitor's isoformat)" if ISO_ONLY else " (half the times sent with an offset, kept as text)"))
c = sqlite3.connect(v4)
for column in ["total_time", "user_time", "kernel_time", "cpu_usage", "mem_usage"]:
    c.execute(f"DROP INDEX metric_rows_by_{column}")
c.execute("VACUUM"); c.commit(); c.close()
report(v4, "schema 4 without the five resource indexes (compacted)")
shutil.rmtree(d)
