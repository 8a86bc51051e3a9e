#!/usr/bin/env bash
# Runs one fuzz target for a number of seconds: fuzz/run.sh TARGET SECONDS.
#
# cargo-fuzz drives libFuzzer, whose instrumentation needs nightly rustc
# flags (-Zsanitizer, -Cpasses=sancov-module). The project uses the stable
# toolchain, which accepts those flags when RUSTC_BOOTSTRAP=1 is set, so
# this script sets it; no nightly toolchain is needed. cargo-fuzz is
# installed from crates.io when missing, and the seed corpus is generated
# by fuzz/make_corpus.sh when fuzz/corpus/TARGET does not exist yet.
#
# Environment:
#   FUZZ_SANITIZER  address (default) or none; none builds and runs faster
#                   but cannot enforce -malloc_limit_mb.
#   FUZZ_DEV        1 builds without optimisations, which compiles faster
#                   and runs slower (fuzz/smoke.sh uses it); default 0.
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

corpus="$fuzz_dir/corpus/$target"
if [ ! -d "$corpus" ]; then
    "$fuzz_dir/make_corpus.sh" "$fuzz_dir/corpus"
    mkdir -p "$corpus"
fi
# Inputs that once found a bug are run first and kept as a second corpus;
# libFuzzer writes new inputs only into the first one.
regressions="$fuzz_dir/regressions/$target"
corpora=("$corpus")
if [ -d "$regressions" ]; then
    corpora+=("$regressions")
fi

# A checkpoint or training state file is about 0.4 or 0.9 MB; the other
# targets' inputs stay small.
case "$target" in
    checkpoint) max_len=1048576 ;;
    predict_body | v2_infer) max_len=65536 ;;
    *) max_len=16384 ;;
esac


profile=(--release --debug-assertions)
if [ "${FUZZ_DEV:-0}" = 1 ]; then
    profile=(--dev)
fi

cd "$fuzz_dir"
exec cargo fuzz run "${profile[@]}" \
    --sanitizer "${FUZZ_SANITIZER:-address}" \
    "$target" "${corpora[@]}" -- \
    -max_total_time="$seconds" \
    -timeout=10 \
    -rss_limit_mb=2048 \
    -malloc_limit_mb=2048 \
    -max_len="$max_len" \
    -print_final_stats=1 \
    "$@"
