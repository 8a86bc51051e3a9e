#!/usr/bin/env python3
"""Per-request latency of two `serve` builds, side by side.

Measures the time of `GET /_/health` and of a one-image `POST /predict`
(3072 raw bytes) on one keep-alive connection, one request at a time, for
each binary in turn, and prints the median and 90th percentile per build
and their ratio. Used to measure what the connection front end (a second
hop over a Unix socket per request) adds over tiny_http serving the TCP
socket directly:

    python3 benches/load/hop_latency.py --model cifar10.ckpt \\
        --baseline target/serve-baseline --candidate target/release/serve
"""

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_load import Server  # noqa: E402


def timings(port, method, path, body, count):
    """Returns the seconds of `count` requests on one connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/octet-stream"} if body else {}
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        connection.request(method, path, body=body, headers=headers)
        reply = connection.getresponse()
        reply.read()
        samples.append(time.perf_counter() - started)
        if reply.status != 200:
            sys.exit(f"{method} {path} returned {reply.status}")
    connection.close()
    return samples


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint to serve")
    parser.add_argument("--baseline", required=True, help="serve binary to compare against")
    parser.add_argument("--candidate", required=True, help="serve binary being measured")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per binary")
    parser.add_argument("--requests", type=int, default=2000, help="requests per scenario")
    options = parser.parse_args()

    image = bytes((index * 7) % 256 for index in range(3072))
    scenarios = [
        ("GET /_/health", "GET", "/_/health", None, options.requests),
        ("POST /predict, one image", "POST", "/predict", image, options.requests // 4),
    ]
    builds = {"baseline": options.baseline, "candidate": options.candidate}
    medians = {(build, label): [] for build in builds for label, *_ in scenarios}
    p90s = {(build, label): [] for build in builds for label, *_ in scenarios}
    work = tempfile.mkdtemp(prefix="cifaas-hop-")
    args = ["--threads", "2", "--max-batch", "1", "--model", options.model]
    for round_index in range(options.rounds):
        for build, binary in builds.items():
            log = os.path.join(work, f"{build}-{round_index}.log")
            server = Server(binary, args, log)
            try:
                for label, method, path, body, count in scenarios:
                    timings(server.port, method, path, body, count // 10)  # warm-up
                    samples = timings(server.port, method, path, body, count)
                    medians[(build, label)].append(statistics.median(samples))
                    p90s[(build, label)].append(percentile(samples, 0.9))
            finally:
                server.stop()

    print(f"median over {options.rounds} rounds of the per-round median and p90, in microseconds")
    print()
    print("| request | baseline p50 | candidate p50 | ratio | baseline p90 | candidate p90 |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, *_ in scenarios:
        base = statistics.median(medians[("baseline", label)]) * 1e6
        cand = statistics.median(medians[("candidate", label)]) * 1e6
        base90 = statistics.median(p90s[("baseline", label)]) * 1e6
        cand90 = statistics.median(p90s[("candidate", label)]) * 1e6
        print(
            f"| {label} | {base:.0f} | {cand:.0f} | {cand / base:.2f} | {base90:.0f} | "
            f"{cand90:.0f} |"
        )


if __name__ == "__main__":
    main()
