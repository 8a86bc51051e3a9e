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

cargo build --release --locked -p cifaas-serve --bin serve -p cifaas-benches --bin experiment
exec target/release/experiment --serve target/release/serve --peer-python target/peer-venv/bin/python "$@"
