#!/usr/bin/env bash
# Runs one fuzz target for a number of seconds: fuzz/run.sh TARGET SECONDS.
#
# cargo-fuzz drives libFuzzer. Its AddressSanitizer build needs the nightly
# rustc flag -Zsanitizer. The project uses the stable toolchain, which
# accepts nightly flags when RUSTC_BOOTSTRAP=1 is set, so this script sets
# it and no nightly toolchain is needed. cargo-fuzz is
# installed from crates.io when missing, and the seed corpus is generated
# by fuzz/make_corpus.sh when fuzz/corpus/TARGET does not exist yet.
#
# Environment:
#   FUZZ_SANITIZER  address (default) or none; none builds and runs faster
#                   but cannot enforce -malloc_limit_mb.
#   FUZZ_DEV        1 builds without optimisations, which compiles faster
#                   and runs slower; default 0.
# Extra arguments after SECONDS go to libFuzzer.
set -euo pipefail
fuzz_dir="$(cd "$(dirname "$0")" && pwd)"
if [ $# -lt 2 ]; then
    echo "usage: fuzz/run.sh TARGET SECONDS [LIBFUZZER_ARGS...]" >&2
    echo "targets: $(sed -n 's/^name = "\(.*\)"$/\1/p' "$fuzz_dir/Cargo.toml" | grep -v cifaas-fuzz | tr '\n' ' ')" >&2
    exit 2
fi
target="$1"
seconds="$2"
shift 2

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

# shellcheck source=SCRIPTDIR/common.sh
. "$fuzz_dir/common.sh"
fuzz_collect_corpora "$target" "$fuzz_dir"

profile=(--release --debug-assertions)
if [ "${FUZZ_DEV:-0}" = 1 ]; then
    profile=(--dev)
fi

cd "$fuzz_dir"
exec cargo fuzz run "${profile[@]}" \
    --sanitizer "${FUZZ_SANITIZER:-address}" \
    "$target" "${fuzz_corpora[@]}" -- \
    -max_total_time="$seconds" \
    -timeout=10 \
    -rss_limit_mb=2048 \
    -malloc_limit_mb=2048 \
    -max_len="$(fuzz_max_len "$target")" \
    -print_final_stats=1 \
    "$@"
