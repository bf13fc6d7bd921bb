#!/usr/bin/env python3
"""Bytes per stored metric of schema 3 and of the schema-4 layouts considered, read with dbstat.

    python3 bench/tools/store_layout.py [N]

Stores the same N (200,000) synthetic metrics — 2,800 tests (the bench suite's shape), 40-hex
session and context hashes, 20 machines — once in the tables of `schema.sql` and once in a
candidate schema 4: the six strings naming a test stored once in `tests`, and integer ids of
the session, the context and the test in each metric row, with an index on each id, on
`start_us` and on the five resources. It prints the bytes per metric of every table and index,
then again without the five resource indexes. The candidate leaves `item_start_time` NULL
where it is the canonical spelling of `start_us` (as here, always); `--keep-time-text` stores
it in every row instead, as when clients spell their times otherwise."""
import hashlib, os, random, shutil, sqlite3, sys, tempfile, time
args = [a for a in sys.argv[1:] if not a.startswith("--")]
N = int(args[0]) if args else 200_000
KEEP_TEXT = "--keep-time-text" in sys.argv
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

d = tempfile.mkdtemp()
v3 = os.path.join(d, "v3.db"); v4 = os.path.join(d, "v4.db")
for p in (v3, v4):
    if os.path.exists(p): os.remove(p)
c = sqlite3.connect(v3)
c.executescript(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "schema.sql")).read())
c.executemany("INSERT INTO metrics (session_h, context_h, item_start_time, start_us, item_path, item, item_variant, item_fs_loc, kind, component, total_time, user_time, kernel_time, cpu_usage, mem_usage) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
  [(r[0], r[1], r[2], r[3], *r[4], *r[5:]) for r in rows])
c.commit(); c.close()
report(v3, "schema 3")

c = sqlite3.connect(v4)
c.executescript("""
CREATE TABLE tests (id INTEGER PRIMARY KEY, item_path TEXT NOT NULL, item TEXT NOT NULL, item_variant TEXT NOT NULL,
  item_fs_loc TEXT NOT NULL, kind TEXT NOT NULL, component TEXT NOT NULL,
  UNIQUE (item_path, item, item_variant, item_fs_loc, kind, component));
CREATE INDEX tests_by_item ON tests (item); CREATE INDEX tests_by_variant ON tests (item_variant);
CREATE INDEX tests_by_component ON tests (component); CREATE INDEX tests_by_kind ON tests (kind);
CREATE TABLE sess (id INTEGER PRIMARY KEY, h TEXT UNIQUE); CREATE TABLE ctx (id INTEGER PRIMARY KEY, h TEXT UNIQUE);
CREATE TABLE metrics (id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL, context_id INTEGER NOT NULL, test_id INTEGER NOT NULL,
  start_us INTEGER NOT NULL, item_start_time TEXT, total_time REAL NOT NULL, user_time REAL NOT NULL, kernel_time REAL NOT NULL,
  cpu_usage REAL NOT NULL, mem_usage REAL NOT NULL);
CREATE INDEX m_by_session ON metrics (session_id); CREATE INDEX m_by_context ON metrics (context_id);
CREATE INDEX m_by_test ON metrics (test_id); CREATE INDEX m_by_start ON metrics (start_us);
CREATE INDEX m_by_total ON metrics (total_time); CREATE INDEX m_by_user ON metrics (user_time);
CREATE INDEX m_by_kernel ON metrics (kernel_time); CREATE INDEX m_by_cpu ON metrics (cpu_usage);
CREATE INDEX m_by_mem ON metrics (mem_usage);
""")
tid = {t: i+1 for i, t in enumerate(tests)}
c.executemany("INSERT INTO tests VALUES (?,?,?,?,?,?,?)", [(i, *t) for t, i in tid.items()])
sid = {}; cid = {}
for r in rows:
    sid.setdefault(r[0], len(sid)+1); cid.setdefault(r[1], len(cid)+1)
c.executemany("INSERT INTO sess VALUES (?,?)", [(i, k) for k, i in sid.items()])
c.executemany("INSERT INTO ctx VALUES (?,?)", [(i, k) for k, i in cid.items()])
# item_start_time NULL when it is the canonical spelling of start_us (here: always).
c.executemany("INSERT INTO metrics VALUES (NULL,?,?,?,?,?,?,?,?,?,?)",
  [(sid[r[0]], cid[r[1]], tid[r[4]], r[3], r[2] if KEEP_TEXT else None, *r[5:]) for r in rows])
c.commit(); c.close()
report(v4, "schema 4 candidate, every index" + (" (time text kept)" if KEEP_TEXT else ""))
c = sqlite3.connect(v4)
for i in ["m_by_total","m_by_user","m_by_kernel","m_by_cpu","m_by_mem"]: c.execute(f"DROP INDEX {i}")
c.execute("VACUUM"); c.commit(); c.close()
report(v4, "schema 4 candidate without the five resource indexes")
shutil.rmtree(d)
