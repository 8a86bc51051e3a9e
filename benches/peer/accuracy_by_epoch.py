"""Summarises the test accuracy of cifaas and PyTorch training runs per
epoch.

Each file is one run: a metrics file that `train --test-each-epoch` writes
(OUT.metrics.jsonl) or the output of torch_accuracy.py: one JSON object
per epoch, each with `epoch` and `test_accuracy` (a fraction). For
each epoch the script prints one JSON object: each side's run count, mean,
sample standard deviation, lowest and highest value in percent, and the
difference of the means (cifaas minus PyTorch). Where both sides have at
least two runs and some spread, it adds Welch's t and degrees of freedom.

    python3 benches/peer/accuracy_by_epoch.py \\
        --cifaas run-a.metrics.jsonl run-b.metrics.jsonl \\
        --pytorch torch-a.jsonl torch-b.jsonl
"""

import argparse
import json
import statistics

from welch_t import welch


def read_run(path):
    """Return {epoch: test accuracy in percent} of one run's file."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except OSError as error:
        raise SystemExit(f"{path}: cannot be read ({error.strerror}); pass the path of a metrics file")
    except UnicodeDecodeError:
        raise SystemExit(f"{path}: invalid UTF-8; pass a metrics file of JSON lines")
    accuracy, seen = {}, set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            epoch, value = record["epoch"], record["test_accuracy"]
            if value is not None:
                value = float(value)
        except (ValueError, KeyError, TypeError) as error:
            raise SystemExit(
                f"{path}:{number}: invalid epoch record, expected `epoch` and `test_accuracy` ({error})"
            )
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
            raise SystemExit(f"{path}:{number}: epoch is {epoch!r}; expected a whole number from 1")
        if epoch in seen:
            raise SystemExit(f"{path}:{number}: epoch {epoch} appears twice; pass one run per file")
        seen.add(epoch)
        if value is None:
            continue
        if not 0.0 <= value <= 1.0:
            raise SystemExit(
                f"{path}:{number}: test_accuracy is {value}; expected a fraction from 0 to 1"
            )
        accuracy[epoch] = 100.0 * value
    if not accuracy:
        raise SystemExit(f"{path}: no epoch with a test accuracy; was the run made with --test-each-epoch?")
    return accuracy


def describe(values):
    """Return the count, mean, standard deviation and range of `values`."""
    summary = {"runs": len(values), "mean": round(statistics.mean(values), 2)}
    if len(values) > 1:
        summary["sd"] = round(statistics.stdev(values), 2)
    summary["min"] = round(min(values), 2)
    summary["max"] = round(max(values), 2)
    return summary


def compare(epoch, cifaas, pytorch):
    """Return the summary of one epoch over both sides' runs."""
    row = {"epoch": epoch}
    if cifaas:
        row["cifaas"] = describe(cifaas)
    if pytorch:
        row["pytorch"] = describe(pytorch)
    if cifaas and pytorch:
        row["difference"] = round(statistics.mean(cifaas) - statistics.mean(pytorch), 2)
    enough_runs = len(cifaas) > 1 and len(pytorch) > 1
    if enough_runs and (statistics.variance(cifaas) > 0 or statistics.variance(pytorch) > 0):
        t, freedom = welch(pytorch, cifaas)
        row["t"] = round(t, 2)
        row["degrees_of_freedom"] = round(freedom, 1)
    return row


def main():
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--cifaas", nargs="+", default=[], help="metrics files of cifaas runs")
    parser.add_argument("--pytorch", nargs="+", default=[], help="output files of torch_accuracy.py")
    args = parser.parse_args()
    if not args.cifaas and not args.pytorch:
        raise SystemExit("no runs given; pass files with --cifaas, --pytorch or both")

    paths = args.cifaas + args.pytorch
    repeated = [path for path in paths if paths.count(path) > 1]
    if repeated:
        raise SystemExit(f"{repeated[0]} is given more than once; pass each run once")
    cifaas_runs = [read_run(path) for path in args.cifaas]
    pytorch_runs = [read_run(path) for path in args.pytorch]
    epochs = sorted({epoch for run in cifaas_runs + pytorch_runs for epoch in run})
    for epoch in epochs:
        cifaas = [run[epoch] for run in cifaas_runs if epoch in run]
        pytorch = [run[epoch] for run in pytorch_runs if epoch in run]
        print(json.dumps(compare(epoch, cifaas, pytorch)))


if __name__ == "__main__":
    main()
