"""Compares two groups of measurements, such as test accuracies of runs
that differ in one setting, with Welch's t statistic. Prints one JSON
object with each group's mean and sample standard deviation, t and the
Welch-Satterthwaite degrees of freedom.

    python3 benches/peer/welch_t.py --a 59.32 61.93 60.27 --b 65.58 66.11 65.82
"""

import argparse
import json
import math
import statistics


def welch(a, b):
    """Return (t, degrees of freedom) of Welch's test of mean(b) - mean(a)."""
    share_a = statistics.variance(a) / len(a)
    share_b = statistics.variance(b) / len(b)
    error = math.sqrt(share_a + share_b)
    t = (statistics.mean(b) - statistics.mean(a)) / error
    freedom = error**4 / (share_a**2 / (len(a) - 1) + share_b**2 / (len(b) - 1))
    return t, freedom


def main():
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--a", type=float, nargs="+", required=True, help="first group")
    parser.add_argument("--b", type=float, nargs="+", required=True, help="second group")
    args = parser.parse_args()
    for name, values in (("--a", args.a), ("--b", args.b)):
        if len(values) < 2:
            raise SystemExit(f"{name} has {len(values)} value; pass at least 2")
    if statistics.variance(args.a) == 0 and statistics.variance(args.b) == 0:
        raise SystemExit("both groups have no spread, so t is undefined; check the values")

    t, freedom = welch(args.a, args.b)
    groups = {
        name: {"mean": round(statistics.mean(values), 2), "sd": round(statistics.stdev(values), 2)}
        for name, values in (("a", args.a), ("b", args.b))
    }
    print(json.dumps({**groups, "t": round(t, 2), "degrees_of_freedom": round(freedom, 1)}))


if __name__ == "__main__":
    main()
