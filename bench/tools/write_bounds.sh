#!/usr/bin/env bash
# How fast writes could get if storing a metric cost less, measured end to end with `bench`.
#
#     bash bench/tools/write_bounds.sh [ROUNDS]
#
# Builds three servers from the committed tree (HEAD) in a temporary folder and runs the same
# `bench` on each, in turn, ROUNDS times (default 2), since the machine may be shared:
# - current:             HEAD as it is;
# - no-resource-indexes: schema.sql without the five metric_rows_by_<resource> indexes (head/tail
#                        and sort= listings would then read the whole store);
# - stores-nothing:      insert_metrics returns at once: each request is parsed, checked, handed
#                        to the writer, committed (an empty transaction) and answered 201, but no
#                        row is written. What HTTP, JSON and the hand-off to the writer thread
#                        cost alone: no store can be faster than this.
# For each: `bench --batches 10 --batch-size 50000` (POST with keep-alive against the parse-only
# ceiling, batch metrics/s, RSS, bytes per metric) and `bench --no-keep-alive --batches 0`.
# Takes some 30 minutes on two cores.
set -euo pipefail
rounds="${1:-2}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tree" "$work/bin"
git -C "$root" archive HEAD | tar -x -C "$work/tree"
cd "$work/tree"
cp schema.sql "$work/schema.sql.orig"
cp src/db/insert.rs "$work/insert.rs.orig"

build() { # NAME: builds the tree as it is now into $work/bin/NAME
  cargo build --release --quiet --target-dir "$work/target" -p monitor-server
  cp "$work/target/release/monitor-server" "$work/bin/$1"
}

# Built first, from the tree untouched (it links the library for its store builder).
cargo build --release --quiet --target-dir "$work/target" -p monitor-server-bench
bench="$work/target/release/bench"

build current

indexes() { grep -c '^CREATE INDEX IF NOT EXISTS metric_rows_by_' schema.sql; }
before="$(indexes)"
sed -i '/CREATE INDEX IF NOT EXISTS metric_rows_by_\(total_time\|user_time\|kernel_time\|cpu_usage\|mem_usage\) /d' schema.sql
if [ "$(indexes)" != "$((before - 5))" ]; then
  echo "schema.sql: the patch no longer applies" >&2
  exit 1
fi
build no-resource-indexes
cp "$work/schema.sql.orig" schema.sql

perl -0pi -e 's/(pub fn insert_metrics\([^{]*\{\n)/$1    if true {\n        return Ok(());\n    }\n/' src/db/insert.rs
if cmp -s src/db/insert.rs "$work/insert.rs.orig"; then
  echo "insert.rs: the patch no longer applies" >&2
  exit 1
fi
build stores-nothing
cp "$work/insert.rs.orig" src/db/insert.rs

for round in $(seq "$rounds"); do
  for variant in current no-resource-indexes stores-nothing; do
    echo "=== round $round: $variant"
    "$bench" --binary "$work/bin/$variant" --no-build --batches 10 --batch-size 50000 2>&1 |
      grep -E '^ours/ceiling|^  store:|RSS .* after them' || true
    "$bench" --binary "$work/bin/$variant" --no-build --batches 0 --no-keep-alive 2>&1 |
      grep -E '^ours/ceiling' | sed 's/^/a connection each: /' || true
  done
done
