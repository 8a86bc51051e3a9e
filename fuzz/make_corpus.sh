#!/usr/bin/env bash
# Writes the seed corpora of the fuzz targets into fuzz/corpus/TARGET/ (or
# the folder given as the first argument): small valid inputs built by the
# example serve/examples/fuzz_corpus.rs with the project's own encoders.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
. "$root/fuzz/common.sh"
out="${1:-$root/fuzz/corpus}"
# A relative folder is resolved against the caller's current directory.
case "$out" in
    /*) ;;
    *) out="$PWD/$out" ;;
esac
cd "$root"
# Built with --workspace in the test profile, the example resolves the same
# dependency features as `cargo test --workspace`, so the two share every
# compiled dependency. With `-p cifaas-serve` instead, cargo builds a
# second copy of many of them. Compiler errors go to stderr as text.
example=$(cargo build --locked --quiet --workspace --profile test --example fuzz_corpus \
    --message-format json-render-diagnostics | cargo_executables)
if [ -z "$example" ]; then
    echo "make_corpus: cargo reported no fuzz_corpus executable; run cargo build --workspace --profile test --example fuzz_corpus to see why" >&2
    exit 1
fi
"$example" "$out"
