#!/usr/bin/env python3
"""Instructions per stored metric of a monitor-server binary, counted by callgrind.

    python3 bench/tools/callgrind_post.py BINARY N CONNECTIONS [batch] [--tests K]

Starts BINARY under `valgrind --tool=callgrind --separate-threads=yes` on a fresh database,
stores N metrics (over CONNECTIONS keep-alive connections, each sending its POSTs one after the
other; or, with `batch`, as one `POST /metrics/batch` body), stops it with SIGTERM and prints the
instructions executed by every thread. Run it with N = 0 too: the difference, divided by N, is
the cost of one metric, whatever else the machine is doing (instruction counts do not depend on
load, unlike requests per second). Each metric names its own test item, as the first run of a
suite does; with `--tests K` the metrics go round K test items, as every later run of a suite of
K tests does (the server has seen them before).
The profiles stay in the directory printed (`callgrind_annotate` reads them; build with symbols
for function names)."""
import glob, http.client, json, os, re, signal, subprocess, sys, tempfile, threading

args = sys.argv[1:]
tests = None
if "--tests" in args:
    at = args.index("--tests")
    tests = int(args[at + 1])
    del args[at:at + 2]
binary, n, conns = args[0], int(args[1]), int(args[2])
batch = len(args) > 3 and args[3] == "batch"
d = tempfile.mkdtemp()
proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                         f"--callgrind-out-file={d}/cg.out", binary, "--db", f"{d}/m.db",
                         "--bind", "127.0.0.1:0", "--keep-alive", "30"],
                        stderr=subprocess.PIPE, text=True, env={**os.environ, "RUST_LOG": "info"})
port = None
for line in proc.stderr:
    m = re.search(r"listening on http://127.0.0.1:(\d+)", line)
    if m:
        port = int(m.group(1))
        break
if port is None:
    sys.exit("the server did not start")
threading.Thread(target=lambda: proc.stderr.read(), daemon=True).start()


def body(i):
    if tests:
        i %= tests
    return {"session_h": "s" * 40, "context_h": "c" * 40,
            "item_start_time": "2020-12-04T23:18:15.661016", "item_path": "tests.test_file",
            "item": f"test_{i}", "item_variant": f"test_{i}[]", "item_fs_loc": "tests/test_file.py",
            "kind": "function", "component": "comp", "total_time": 0.5, "user_time": 0.25,
            "kernel_time": 0.125, "cpu_usage": 0.75, "mem_usage": 1.5}


def worker(k):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    for i in range(k, n, conns):
        c.request("POST", "/api/v1/metrics/", json.dumps(body(i)),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        assert r.status == 201, r.status


if n:
    if batch:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        data = "\n".join(json.dumps(body(i)) for i in range(n))
        c.request("POST", "/api/v1/metrics/batch", data, {"Content-Type": "application/x-ndjson"})
        r = c.getresponse()
        print(r.status, r.read()[:200])
    else:
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(conns)]
        [t.start() for t in ts]
        [t.join() for t in ts]
print("profiles in", d)
proc.send_signal(signal.SIGTERM)
proc.wait()
total = 0
per = []
for f in glob.glob(f"{d}/cg.out*"):
    text = open(f).read()
    if not text:
        continue
    m = re.search(r"^summary: (\d+)", text, re.M) or re.search(r"^totals: (\d+)", text, re.M)
    total += int(m.group(1))
    per.append((int(re.search(r"^thread: (\d+)", text, re.M).group(1)), int(m.group(1))))
per.sort()
print(f"N={n} connections={conns} batch={batch} instructions: total {total:,}")
for thread, ir in per:
    print(f"  thread {thread}: {ir:,}")
