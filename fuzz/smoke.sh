#!/usr/bin/env bash
# Runs every fuzz target for a few seconds (default 10), as CI does:
# fuzz/smoke.sh [SECONDS]. The build is unoptimised and without
# AddressSanitizer, which compiles faster; the long runs of fuzz/run.sh
# keep both.
set -euo pipefail
fuzz_dir="$(cd "$(dirname "$0")" && pwd)"
seconds="${1:-10}"
targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$fuzz_dir/Cargo.toml" | grep -v cifaas-fuzz)
for target in $targets; do
    echo "fuzz smoke: $target for $seconds s"
    FUZZ_DEV=1 FUZZ_SANITIZER=none "$fuzz_dir/run.sh" "$target" "$seconds" 2>&1 |
        grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|#[0-9]+[[:space:]]+DONE)|panicked|ERROR|SUMMARY' || true
    status=${PIPESTATUS[0]}
    if [ "$status" != 0 ]; then
        echo "fuzz smoke: $target failed with status $status; rerun fuzz/run.sh $target $seconds to see the input" >&2
        exit "$status"
    fi
done
