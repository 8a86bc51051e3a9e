"""Compare cifaas built for x86-64-v3 (the setting in .cargo/config.toml) with
a build for baseline x86-64, in one run, at 1 and 2 threads.

    python3 benches/peer/cpu_baseline.py [--data PATH] [--runs 3]

Builds `cifaas-perf` twice (the baseline into target/baseline-x86-64), then
runs `cifaas-perf train` and `cifaas-perf infer` of both builds alternately,
pinned with taskset, and prints the median images/s of training, the median
evaluation seconds at batch 100 and the ratios v3/baseline.
"""

import argparse
import json
import os
import statistics
import subprocess
from pathlib import Path

from compare import DEFAULT_DATA, ROOT, ensure_taskset, run_json

BUILDS = {
    "x86-64-v3": (ROOT / "target", {}),
    "x86-64": (ROOT / "target" / "baseline-x86-64", {"RUSTFLAGS": "-Ctarget-cpu=x86-64"}),
}


def build(target_dir, extra_env):
    env = dict(os.environ, CARGO_TARGET_DIR=str(target_dir), **extra_env)
    command = ["cargo", "build", "--release", "--quiet", "-p", "cifaas-benches",
               "--bin", "cifaas-perf"]
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    return target_dir / "release" / "cifaas-perf"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="CIFAR-10 binary .tar.gz archive or unpacked folder")
    parser.add_argument("--unpack-dir", type=Path, default=ROOT / "target" / "cifar-cache",
                        help="folder to unpack an archive into")
    parser.add_argument("--runs", type=int, default=3, help="alternating runs per build (median)")
    parser.add_argument("--steps", type=int, default=60, help="timed training steps of batch 64")
    args = parser.parse_args()
    if args.runs < 1:
        raise SystemExit("cpu_baseline: --runs is 0; pass at least 1")

    ensure_taskset()
    binaries = {name: build(*settings) for name, settings in BUILDS.items()}
    data = ["--data", args.data, "--unpack-dir", args.unpack_dir]
    results = {}
    for run in range(args.runs):
        names = list(binaries) if run % 2 == 0 else list(reversed(binaries))
        for threads in (1, 2):
            for name in names:
                perf = binaries[name]
                train = [perf, "train", *data, "--steps", args.steps, "--threads", threads]
                infer = [perf, "infer", *data, "--latency-runs", 50, "--eval-batches", 100,
                         "--threads", threads]
                for line in run_json(train, threads) + run_json(infer, threads):
                    line["build"] = name
                    print(json.dumps(line), flush=True)
                    if line["measure"] == "train":
                        value = line["images_per_second"]
                    elif line["measure"] == "evaluate":
                        value = line["seconds"]
                    else:
                        value = line["median_ms"]
                    results.setdefault((line["measure"], threads, name), []).append(value)

    print()
    print("| measure | threads | x86-64-v3 | x86-64 | v3/x86-64 |")
    print("|---|---|---|---|---|")
    units = {"train": "images/s", "latency_batch1": "ms", "evaluate": "s"}
    for measure in ("train", "latency_batch1", "evaluate"):
        for threads in (1, 2):
            v3 = statistics.median(results[(measure, threads, "x86-64-v3")])
            baseline = statistics.median(results[(measure, threads, "x86-64")])
            unit = units[measure]
            print(f"| {measure} | {threads} | {v3:.2f} {unit} | {baseline:.2f} {unit} "
                  f"| {v3 / baseline:.2f} |")
    print(f"\nMedians over {args.runs} runs; evaluate is 10,000 test images at batch 100.")


if __name__ == "__main__":
    main()
