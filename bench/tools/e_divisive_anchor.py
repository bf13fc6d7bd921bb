"""The anchor for the change detection's evaluation: MongoDB's E-Divisive with means
(signal-processing-algorithms) on the series that `changes_eval` wrote, as shipped and with the
same minimum magnitude as ours.

    python e_divisive_anchor.py SERIES.json OUT.json --min-percent 5 --min-absolute 0.1 --min-sigma 2

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


MAD_TO_SD = 1.4826


def big_enough(left, right, minimum):
    """The minimum magnitude as monitor-server judges it: beyond the percentage, the floor and
    a number of robust noise standard deviations around the two medians."""
    min_percent, min_absolute, min_sigma = minimum
    before, after = statistics.median(left), statistics.median(right)
    size = abs(after - before)
    deviations = [abs(v - before) for v in left] + [abs(v - after) for v in right]
    noise_sd = MAD_TO_SD * statistics.median(deviations)
    return (
        size > min_percent / 100.0 * abs(before)
        and size >= min_absolute
        and size > min_sigma * noise_sd
    ), size


def filtered(values, indexes, minimum):
    """Drops, the smallest first, the changes whose stretch medians move less than the minimum."""
    kept = sorted(indexes)
    while True:
        bounds = [0] + kept + [len(values)]
        weakest = None
        for i in range(len(kept)):
            left = values[bounds[i] : bounds[i + 1]]
            right = values[bounds[i + 1] : bounds[i + 2]]
            enough, size = big_enough(left, right, minimum)
            if not enough:
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
    parser.add_argument("--min-sigma", type=float, required=True)
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
        filtered(values, found, (args.min_percent, args.min_absolute, args.min_sigma))
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
