"""Compare cifaas with PyTorch (CPU) on the same network, initialisation,
hyperparameters and CIFAR-10 files, at 1 and 2 threads.

    python3 benches/peer/compare.py [--data PATH] [--runs 3]

Installs torch and numpy into target/peer-venv when they are missing and
builds `cifaas-perf` in release mode. Then it runs the two sides alternately,
each pinned with taskset to its first T CPUs. It prints medians over the runs
of training images/s, batch-1 latency, 10,000-image evaluation time (at each
batch size and the best), peak RSS (VmHWM), and the ratios cifaas/PyTorch.
The raw JSON lines and the table are written to target/peer/.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / "target" / "peer-venv"
OUT_DIR = ROOT / "target" / "peer"
TORCH_VERSION = "2.15.0"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar-10-binary.tar.gz"


def venv_python(venv):
    """Returns the virtual environment's python, installing torch and numpy when missing."""
    python = venv / "bin" / "python"
    check = f"import numpy, torch; assert torch.__version__.split('+')[0] == '{TORCH_VERSION}'"
    if python.exists() and subprocess.run([python, "-c", check], capture_output=True).returncode == 0:
        return python
    print(f"compare: installing torch=={TORCH_VERSION} and numpy into {venv}", file=sys.stderr)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    pip = [python, "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, f"torch=={TORCH_VERSION}", "numpy"], check=True)
    return python


def ensure_taskset():
    """Installs util-linux for taskset when it is missing and apt-get exists."""
    if shutil.which("taskset"):
        return
    if shutil.which("apt-get") is None:
        raise SystemExit("compare: taskset not found; install util-linux")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "util-linux"], check=True)


def run_json(command, threads):
    """Runs `command` pinned to the first `threads` CPUs and returns its JSON lines."""
    cpus = sorted(os.sched_getaffinity(0))[:threads]
    if len(cpus) < threads:
        raise SystemExit(f"compare: {threads} threads requested, this process may use {len(cpus)} CPUs")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    pinned = ["taskset", "-c", ",".join(map(str, cpus)), *map(str, command)]
    result = subprocess.run(pinned, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"compare: {' '.join(pinned)} failed with exit code {result.returncode}")
    output = result.stdout
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def median_of(lines, side, measure, threads, field, batch=None):
    values = [
        line[field]
        for line in lines
        if line["side"] == side
        and line["measure"] == measure
        and line["threads"] == threads
        and (batch is None or line.get("batch") == batch)
    ]
    return statistics.median(values) if values else None


def median_peak(lines, side, measure, threads):
    """Returns the median over runs of each run's largest peak RSS, in KiB.

    A process prints VmHWM after each measurement, so its last line holds
    the peak of the whole process."""
    peaks = {}
    for line in lines:
        if line["side"] == side and line["measure"] == measure and line["threads"] == threads:
            peaks[line["run"]] = max(peaks.get(line["run"], 0), line["peak_rss_kib"])
    return statistics.median(peaks.values())


def summarise(lines, thread_counts, eval_batches, runs, steps):
    """Returns the Markdown table of medians and ratios."""
    rows = [
        "| measure | threads | cifaas | PyTorch | cifaas/PyTorch |",
        "|---|---|---|---|---|",
    ]

    def row(name, threads, cifaas, torch, unit, digits):
        ratio = f"{cifaas / torch:.2f}" if cifaas and torch else "n/a"
        rows.append(
            f"| {name} | {threads} | {cifaas:.{digits}f} {unit} | {torch:.{digits}f} {unit} | {ratio} |"
        )

    for threads in thread_counts:
        medians = {}
        for side in ("cifaas", "pytorch"):
            evaluations = {
                batch: median_of(lines, side, "evaluate", threads, "seconds", batch)
                for batch in eval_batches
            }
            best_batch = min(evaluations, key=evaluations.get)
            medians[side] = {
                "train": median_of(lines, side, "train", threads, "images_per_second"),
                "latency": median_of(lines, side, "latency_batch1", threads, "median_ms"),
                "evaluations": evaluations,
                "best_batch": best_batch,
                "train_rss": median_peak(lines, side, "train", threads) / 1024,
                "infer_rss": median_peak(lines, side, "evaluate", threads) / 1024,
            }
        ours, theirs = medians["cifaas"], medians["pytorch"]
        row(f"training, {steps} steps of batch 64", threads, ours["train"], theirs["train"], "images/s", 0)
        row("batch-1 latency (median)", threads, ours["latency"], theirs["latency"], "ms", 2)
        for batch in eval_batches:
            row(f"evaluate 10,000 images, batch {batch}", threads,
                ours["evaluations"][batch], theirs["evaluations"][batch], "s", 2)
        row(
            f"evaluate, best batch (cifaas {ours['best_batch']}, PyTorch {theirs['best_batch']})",
            threads,
            ours["evaluations"][ours["best_batch"]],
            theirs["evaluations"][theirs["best_batch"]],
            "s",
            2,
        )
        row("peak RSS, training process", threads, ours["train_rss"], theirs["train_rss"], "MiB", 0)
        row("peak RSS, inference process", threads, ours["infer_rss"], theirs["infer_rss"], "MiB", 0)
    rows.append("")
    rows.append(f"Medians over {runs} runs. Ratios above 1 mean cifaas is larger: better for")
    rows.append("images/s, worse for latency, seconds and RSS.")
    return "\n".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="CIFAR-10 binary .tar.gz archive or unpacked folder")
    parser.add_argument("--unpack-dir", type=Path, default=ROOT / "target" / "cifar-cache",
                        help="folder to unpack an archive into")
    parser.add_argument("--venv", type=Path, default=VENV,
                        help="virtual environment for torch and numpy, created when missing")
    parser.add_argument("--runs", type=int, default=3, help="alternating runs per side (median)")
    parser.add_argument("--steps", type=int, default=100, help="timed training steps of batch 64")
    parser.add_argument("--warmup", type=int, default=10, help="untimed training steps first")
    parser.add_argument("--latency-runs", type=int, default=200, help="batch-1 predictions per run")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--summarise", type=Path, metavar="RESULTS",
                        help="print the table of a results-*.jsonl file written before, and exit")
    args = parser.parse_args()
    if args.runs < 1:
        raise SystemExit("compare: --runs is 0; pass at least 1")
    thread_counts = [int(count) for count in args.threads.split(",")]
    eval_batches = [100, 1000]
    if args.summarise:
        lines = [json.loads(line) for line in args.summarise.read_text().splitlines()]
        runs = len({line["run"] for line in lines})
        steps = next(line["steps"] for line in lines if line["measure"] == "train")
        print(summarise(lines, thread_counts, eval_batches, runs, steps))
        return

    ensure_taskset()
    python = venv_python(args.venv)
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "cifaas-benches",
                    "--bin", "cifaas-perf"], cwd=ROOT, check=True)
    perf = ROOT / "target" / "release" / "cifaas-perf"
    data = ["--data", args.data, "--unpack-dir", args.unpack_dir]
    folder = run_json([perf, "locate", *data], 1)[0]["folder"]
    batches = ",".join(map(str, eval_batches))
    torch_side = Path(__file__).with_name("torch_side.py")
    commands = {
        "cifaas": {
            "train": [perf, "train", *data, "--steps", args.steps, "--warmup", args.warmup],
            "infer": [perf, "infer", *data, "--latency-runs", args.latency_runs,
                      "--eval-batches", batches],
        },
        "pytorch": {
            "train": [python, torch_side, "train", "--folder", folder, "--steps", args.steps,
                      "--warmup", args.warmup],
            "infer": [python, torch_side, "infer", "--folder", folder, "--latency-runs",
                      args.latency_runs, "--eval-batches", batches],
        },
    }

    lines = []
    for run in range(args.runs):
        # Alternate which side goes first, so neither always gets the cooler machine.
        sides = ["cifaas", "pytorch"] if run % 2 == 0 else ["pytorch", "cifaas"]
        for threads in thread_counts:
            for side in sides:
                for measure in ("train", "infer"):
                    command = [*commands[side][measure], "--threads", threads]
                    for line in run_json(command, threads):
                        line["run"] = run + 1
                        lines.append(line)
                        print(json.dumps(line), flush=True)

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (OUT_DIR / f"results-{stamp}.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))
    table = summarise(lines, thread_counts, eval_batches, args.runs, args.steps)
    (OUT_DIR / f"summary-{stamp}.md").write_text(table + "\n")
    print()
    print(f"torch {TORCH_VERSION}, data {folder}, written to {OUT_DIR}/*-{stamp}.*")
    print(table)


if __name__ == "__main__":
    main()
