#!/usr/bin/env bash
# Makes the Python venv that changes_eval runs its anchor in: MongoDB's E-Divisive
# (signal-processing-algorithms, from PyPI) under target/changes-anchor-venv.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/changes-anchor-venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet 'signal-processing-algorithms==2.1.6'
echo "anchor ready: $venv/bin/python"
