#!/usr/bin/env python3
"""Load runs of the real `serve` binary with ApacheBench (`ab`).

Starts `serve --mode server` on a loopback port for each configuration,
waits for `/_/ready`, runs `ab` against it several times and prints the
median requests/s and latency percentiles as a Markdown table, plus the raw
numbers as JSON. Every configuration runs in the same invocation, so their
ratios compare like with like on a shared machine.

    python3 benches/load/serve_load.py --model cifar10.ckpt \
        --data cifar-10-binary.tar.gz --runs 3

`ab` comes from Debian's apache2-utils package, which the script installs
with apt-get when it is missing.
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECORD_BYTES = 3073


def ensure_ab():
    if shutil.which("ab"):
        return
    print("ab not found: installing apache2-utils with apt-get", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-q", "apache2-utils"], check=True)


def build_serve():
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "-p", "cifaas-serve", "--bin", "serve"],
        cwd=ROOT,
        check=True,
    )
    return os.path.join(ROOT, "target", "release", "serve")


def first_test_image(data):
    """Returns the 3072 pixel bytes of the first test record."""
    if os.path.isdir(data):
        for folder in (data, os.path.join(data, "cifar-10-batches-bin")):
            path = os.path.join(folder, "test_batch.bin")
            if os.path.exists(path):
                with open(path, "rb") as handle:
                    return handle.read(RECORD_BYTES)[1:]
        sys.exit(f"no test_batch.bin under {data}")
    with tarfile.open(data) as archive:
        for member in archive:
            if member.name.endswith("test_batch.bin"):
                return archive.extractfile(member).read(RECORD_BYTES)[1:]
    sys.exit(f"no test_batch.bin in {data}")


def png_bytes(cifar, scale):
    """Encodes a CIFAR-layout image as an RGB PNG, enlarged `scale` times."""
    side = 32 * scale
    rows = []
    for y in range(side):
        row = bytearray([0])
        for x in range(side):
            index = (y // scale) * 32 + x // scale
            row += bytes((cifar[index], cifar[1024 + index], cifar[2048 + index]))
        rows.append(bytes(row))

    def chunk(kind, payload):
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 6))
        + chunk(b"IEND", b"")
    )


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    def __init__(self, serve, args, log_path):
        self.port = free_port()
        self.log = open(log_path, "w")
        command = [serve, "--mode", "server", "--bind", f"127.0.0.1:{self.port}", *args]
        env = dict(os.environ, RUST_LOG="warn")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=self.log, env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/_/ready", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None:
                sys.exit(f"serve exited with {self.process.returncode}; see {log_path}")
            time.sleep(0.2)
        self.stop()
        sys.exit(f"serve was not ready within 120 s; see {log_path}")

    def metric(self, name):
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as reply:
            text = reply.read().decode()
        match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        return float(match.group(1)) if match else None

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def run_ab(url, requests, concurrency, keep_alive, body=None, content_type=None):
    # -l: a prediction's length varies with its numbers, which ab would
    # otherwise count as failed requests.
    command = ["ab", "-q", "-l", "-n", str(requests), "-c", str(concurrency), "-s", "120"]
    if keep_alive:
        command.append("-k")
    if body:
        command += ["-p", body, "-T", content_type]
    output = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout

    def number(pattern):
        match = re.search(pattern, output)
        return float(match.group(1)) if match else 0.0

    percentiles = {
        int(match.group(1)): float(match.group(2))
        for match in re.finditer(r"^\s*(\d+)%\s+(\d+)", output, re.M)
    }
    return {
        "requests_per_second": number(r"Requests per second:\s+([\d.]+)"),
        "failed": int(number(r"Failed requests:\s+(\d+)")),
        "non_2xx": int(number(r"Non-2xx responses:\s+(\d+)")),
        "complete": int(number(r"Complete requests:\s+(\d+)")),
        "p50_ms": percentiles.get(50, 0.0),
        "p90_ms": percentiles.get(90, 0.0),
        "p99_ms": percentiles.get(99, 0.0),
        "max_ms": percentiles.get(100, 0.0),
    }


def median_of(samples):
    keys = ["requests_per_second", "p50_ms", "p90_ms", "p99_ms", "max_ms"]
    summary = {key: statistics.median(sample[key] for sample in samples) for key in keys}
    summary["failed"] = sum(sample["failed"] + sample["non_2xx"] for sample in samples)
    summary["complete"] = sum(sample["complete"] for sample in samples)
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint to serve")
    parser.add_argument("--data", required=True, help="CIFAR-10 folder or .tar.gz")
    parser.add_argument("--threads", type=int, default=2, help="serve --threads")
    parser.add_argument("--runs", type=int, default=3, help="ab runs per scenario")
    parser.add_argument("--requests", type=int, default=5000, help="requests per prediction run")
    parser.add_argument("--out", help="write the raw results as JSON to this file")
    options = parser.parse_args()

    ensure_ab()
    serve = build_serve()
    work = tempfile.mkdtemp(prefix="cifaas-load-")
    cifar = first_test_image(options.data)
    bodies = {}
    for name, payload, kind in [
        ("png32", png_bytes(cifar, 1), "image/png"),
        ("png224", png_bytes(cifar, 7), "image/png"),
        ("raw", cifar, "application/octet-stream"),
    ]:
        path = os.path.join(work, name)
        with open(path, "wb") as handle:
            handle.write(payload)
        bodies[name] = (path, kind)

    # An evaluation of the test set takes seconds, two at once on a busy
    # machine longer than the 30 s default exec_timeout.
    base = [
        "--threads", str(options.threads), "--model", options.model, "--data", options.data,
        "--exec-timeout", "300s",
    ]
    scenarios = [
        # (label, extra serve args, body, requests, concurrency, keep-alive, path)
        ("PNG 32x32, batching on", [], "png32", options.requests, 16, False, "/predict"),
        ("PNG 32x32, batching off", ["--max-batch", "1"], "png32", options.requests, 16, False, "/predict"),
        ("PNG 32x32, batching on, keep-alive", [], "png32", options.requests, 16, True, "/predict"),
        ("PNG 224x224, batching on", [], "png224", options.requests, 16, False, "/predict"),
        ("raw, one client", [], "raw", options.requests // 5, 1, True, "/predict"),
        ("GET / (10,000 test images)", [], None, 10, 2, False, "/"),
        ("GET / (10,000 test images), keep-alive", [], None, 10, 2, True, "/"),
    ]
    results = []
    for label, extra, body, requests, concurrency, keep_alive, path in scenarios:
        server = Server(serve, base + extra, os.path.join(work, f"serve-{len(results)}.log"))
        try:
            body_path, kind = bodies[body] if body else (None, None)
            samples = []
            for _ in range(options.runs):
                samples.append(
                    run_ab(server.url + path, requests, concurrency, keep_alive, body_path, kind)
                )
            batches = server.metric("cifaas_prediction_batch_size_count")
            images = server.metric("cifaas_prediction_batch_size_sum")
        finally:
            server.stop()
        summary = median_of(samples)
        summary.update(
            label=label,
            command=f"ab -n {requests} -c {concurrency}{' -k' if keep_alive else ''}",
            runs=len(samples),
            mean_batch=(images / batches) if batches else None,
            samples=samples,
        )
        results.append(summary)
        print(f"{label}: {summary['requests_per_second']:.1f} requests/s", file=sys.stderr)

    print(f"serve --mode server --threads {options.threads}, medians of {options.runs} ab runs")
    print()
    print("| scenario | ab | requests/s | p50 ms | p90 ms | p99 ms | max ms | failed | mean batch |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in results:
        batch = f"{row['mean_batch']:.1f}" if row["mean_batch"] else "-"
        print(
            f"| {row['label']} | `{row['command']}` | {row['requests_per_second']:.1f} | "
            f"{row['p50_ms']:.0f} | {row['p90_ms']:.0f} | {row['p99_ms']:.0f} | "
            f"{row['max_ms']:.0f} | {row['failed']} | {batch} |"
        )
    if options.out:
        with open(options.out, "w") as handle:
            json.dump(results, handle, indent=2)
    shutil.rmtree(work, ignore_errors=True)
    if any(row["failed"] for row in results):
        sys.exit("some requests failed: see the table")


if __name__ == "__main__":
    main()
