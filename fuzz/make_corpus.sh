#!/usr/bin/env bash
# Writes the seed corpora of the fuzz targets into fuzz/corpus/TARGET/ (or
# the folder given as the first argument): small valid inputs built by the
# example serve/examples/fuzz_corpus.rs with the project's own encoders.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/fuzz/corpus}"
cd "$root"
# The test profile reuses what `cargo test --workspace` already compiled.
cargo run --locked --quiet --profile test -p cifaas-serve --example fuzz_corpus -- "$out"
