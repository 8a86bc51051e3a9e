#!/usr/bin/env bash
# Runs the serverless-versus-server experiment with release binaries.
#
#   benches/experiment/run.sh --data cifar-10-binary.tar.gz [--with-peer] [experiment options]
#
# Installs `ab` and `taskset` when missing, and with --with-peer the peer's
# Python packages (torch and numpy as benches/peer/compare.py pins them, and
# Flask) into target/peer-venv. Builds `serve` and `experiment` in release
# mode, then runs `experiment` with the arguments given; `experiment --help`
# lists them. Each mode trains from scratch once per cap and saves the
# checkpoint that its cold starts then load; `--model FILE` loads FILE instead.
# With CIFAAS_MEASURE_LOCK=FILE set, the experiment runs under `flock FILE`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

bash benches/experiment/install-tools.sh

for argument in "$@"; do
    if [ "$argument" = "--with-peer" ]; then
        python3 -c 'import sys; sys.path.insert(0, "benches/peer"); import compare; compare.venv_python(compare.VENV)'
        if ! target/peer-venv/bin/python -c 'import flask' 2> /dev/null; then
            echo "run.sh: installing flask==${FLASK_VERSION:=3.1.3} into target/peer-venv" >&2
            target/peer-venv/bin/python -m pip install --quiet "flask==$FLASK_VERSION"
        fi
    fi
done

# Two builds, not one: built together, the packages would unify their
# dependencies' features and rebuild them all.
cargo build --release --locked -p cifaas-serve --bins
cargo build --release --locked -p cifaas-benches --bin experiment

experiment=(target/release/experiment --serve target/release/serve
    --peer-python target/peer-venv/bin/python "$@")
if [ -n "${CIFAAS_MEASURE_LOCK:-}" ]; then
    # On a shared machine, one measurement at a time: the build above runs
    # outside the lock, the experiment inside it.
    echo "run.sh: waiting for the lock $CIFAAS_MEASURE_LOCK" >&2
    exec flock "$CIFAAS_MEASURE_LOCK" "${experiment[@]}"
fi
exec "${experiment[@]}"
