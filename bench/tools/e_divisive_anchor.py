"""The anchor for the change detection's evaluation: MongoDB's E-Divisive with means
(signal-processing-algorithms) on the series that `changes_eval` wrote, as shipped and with the
same minimum magnitude as ours.

    python e_divisive_anchor.py SERIES.json OUT.json --min-percent 5 --min-absolute 0.1

SERIES.json is {"series": [[value, ...], ...]}; OUT.json gets, per variant, the change indexes
found in each series (where the new level starts) and the seconds spent in the algorithm alone.
Run it with the venv that bench/tools/changes_anchor_setup.sh makes.
"""

import argparse
import json
import statistics
import time
from importlib.metadata import version

from signal_processing_algorithms.determinism import deterministic_numpy_random
from signal_processing_algorithms.energy_statistics.energy_statistics import e_divisive

# The package's defaults, which MongoDB's performance CI ran with.
PVALUE = 0.05
PERMUTATIONS = 100
SEED = 1234


def big_enough(before, after, min_percent, min_absolute):
    """The minimum magnitude as monitor-server judges it: beyond the percentage and the floor."""
    size = abs(after - before)
    return size > min_percent / 100.0 * abs(before) and size >= min_absolute


def filtered(values, indexes, min_percent, min_absolute):
    """Drops, the smallest first, the changes whose stretch medians move less than the minimum."""
    kept = sorted(indexes)
    while True:
        bounds = [0] + kept + [len(values)]
        weakest = None
        for i in range(len(kept)):
            before = statistics.median(values[bounds[i] : bounds[i + 1]])
            after = statistics.median(values[bounds[i + 1] : bounds[i + 2]])
            if not big_enough(before, after, min_percent, min_absolute):
                size = abs(after - before)
                if weakest is None or size < weakest[1]:
                    weakest = (i, size)
        if weakest is None:
            return kept
        del kept[weakest[0]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("series")
    parser.add_argument("out")
    parser.add_argument("--min-percent", type=float, required=True)
    parser.add_argument("--min-absolute", type=float, required=True)
    args = parser.parse_args()
    with open(args.series) as f:
        series = json.load(f)["series"]

    raw = []
    spent = 0.0
    for values in series:
        started = time.perf_counter()
        with deterministic_numpy_random(SEED):
            found = e_divisive(values, pvalue=PVALUE, permutations=PERMUTATIONS)
        spent += time.perf_counter() - started
        raw.append(sorted(int(i) for i in found))

    started = time.perf_counter()
    magnitude = [
        filtered(values, found, args.min_percent, args.min_absolute)
        for values, found in zip(series, raw)
    ]
    filter_seconds = time.perf_counter() - started

    name = f"E-Divisive (signal-processing-algorithms {version('signal-processing-algorithms')}, p {PVALUE}, {PERMUTATIONS} permutations)"
    with open(args.out, "w") as f:
        json.dump(
            {
                "variants": [
                    {"method": name, "seconds": spent, "changes": raw},
                    {
                        "method": name + " + our minimum magnitude",
                        "seconds": spent + filter_seconds,
                        "changes": magnitude,
                    },
                ]
            },
            f,
        )


if __name__ == "__main__":
    main()
