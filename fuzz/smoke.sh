#!/usr/bin/env bash
# Runs every fuzz target for a few seconds (default 10), as CI does:
# fuzz/smoke.sh [SECONDS].
#
# It builds the targets with plain cargo and libFuzzer's coverage flags, the
# ones cargo-fuzz passes, so a new machine does not first compile
# cargo-fuzz. The build is unoptimised and without AddressSanitizer, which
# compiles faster; fuzz/run.sh keeps both for the long runs. These flags are
# stable rustc flags, so no RUSTC_BOOTSTRAP is needed here.
set -euo pipefail
fuzz_dir="$(cd "$(dirname "$0")" && pwd)"
seconds="${1:-10}"
# shellcheck source=fuzz/common.sh
. "$fuzz_dir/common.sh"
targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$fuzz_dir/Cargo.toml" | grep -v cifaas-fuzz)

# An explicit --target keeps the instrumentation off build scripts and
# procedural macros, which run on the build machine and never link
# libFuzzer.
host=$(rustc -vV | sed -n 's/^host: //p')
coverage_flags="--cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares"
echo "fuzz smoke: building the targets for $host"
RUSTFLAGS="$coverage_flags" cargo build --quiet --locked --manifest-path "$fuzz_dir/Cargo.toml" --target "$host" --bins

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in $targets; do
    echo "fuzz smoke: $target for $seconds s"
    fuzz_collect_corpora "$target" "$fuzz_dir"
    artifacts="$fuzz_dir/artifacts/$target"
    mkdir -p "$artifacts"
    status=0
    "$fuzz_dir/target/$host/debug/$target" \
        -artifact_prefix="$artifacts/" \
        -max_total_time="$seconds" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -max_len="$(fuzz_max_len "$target")" \
        -print_final_stats=1 \
        "${fuzz_corpora[@]}" >"$log" 2>&1 || status=$?
    grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|#[0-9]+[[:space:]]+DONE)|panicked|ERROR|SUMMARY' "$log" || true
    if [ "$status" != 0 ]; then
        tail -n 40 "$log" >&2
        echo "fuzz smoke: $target failed with status $status; libFuzzer writes a failing input to $artifacts/, and fuzz/run.sh $target $seconds reruns the target with AddressSanitizer" >&2
        exit "$status"
    fi
done
