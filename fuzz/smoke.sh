#!/usr/bin/env bash
# Runs every fuzz target for a few seconds (default 10), as CI does:
# fuzz/smoke.sh [SECONDS].
#
# It builds the targets with plain cargo and most of the coverage flags
# that cargo-fuzz passes, so a new machine does not first compile
# cargo-fuzz. These are stable rustc flags, so RUSTC_BOOTSTRAP is not
# needed. The build is unoptimised and without AddressSanitizer, which
# compiles faster. fuzz/run.sh keeps both for the long runs.
set -euo pipefail
fuzz_dir="$(cd "$(dirname "$0")" && pwd)"
seconds="${1:-10}"
# shellcheck source=SCRIPTDIR/common.sh
. "$fuzz_dir/common.sh"

# An explicit --target keeps the instrumentation off build scripts and
# procedural macros, which run on the build machine and never link
# libFuzzer. Flags already in RUSTFLAGS are kept.
host=$(rustc -vV | sed -n 's/^host: //p')
coverage_flags="--cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares"
echo "fuzz smoke: building the targets for $host"
# The binaries' paths come from cargo, which honours CARGO_TARGET_DIR and
# the like. Compiler errors go to stderr as text.
binaries=$(RUSTFLAGS="${RUSTFLAGS:-} $coverage_flags" cargo build --quiet --locked \
    --manifest-path "$fuzz_dir/Cargo.toml" --target "$host" --bins \
    --message-format json-render-diagnostics | cargo_executables)
if [ -z "$binaries" ]; then
    echo "fuzz smoke: cargo reported no target binaries; check the [[bin]] entries in fuzz/Cargo.toml" >&2
    exit 1
fi

# Prints the end of a failed run, from the panic or sanitizer report on,
# and how to replay the input libFuzzer saved.
report_failure() {
    local target="$1" binary="$2" artifacts="$3" status="$4" input
    if grep -qE 'panicked at|ERROR: ' "$log"; then
        sed -n '/panicked at\|ERROR: /,$p' "$log" | head -n 40 >&2
    else
        tail -n 40 "$log" >&2
    fi
    echo "fuzz smoke: $target failed with status $status" >&2
    input=$(find "$artifacts" -type f -newer "$started" -print -quit)
    if [ -n "$input" ]; then
        echo "fuzz smoke: replay the saved input with: $binary $input" >&2
    fi
}

log=$(mktemp)
started=$(mktemp)
trap 'rm -f "$log" "$started"' EXIT
for binary in $binaries; do
    target=$(basename "$binary")
    echo "fuzz smoke: $target for $seconds s"
    fuzz_collect_corpora "$target" "$fuzz_dir"
    artifacts="$fuzz_dir/artifacts/$target"
    mkdir -p "$artifacts"
    touch "$started"
    status=0
    "$binary" \
        -artifact_prefix="$artifacts/" \
        -max_total_time="$seconds" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -max_len="$(fuzz_max_len "$target")" \
        -print_final_stats=1 \
        "${fuzz_corpora[@]}" >"$log" 2>&1 || status=$?
    grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|#[0-9]+[[:space:]]+DONE)|panicked|ERROR|SUMMARY' "$log" || true
    if [ "$status" != 0 ]; then
        report_failure "$target" "$binary" "$artifacts" "$status"
        exit "$status"
    fi
done
