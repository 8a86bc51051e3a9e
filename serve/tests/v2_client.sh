#!/usr/bin/env bash
# Runs v2_client.py, which checks serve's KServe V2 API with the stock
# Triton HTTP client (tritonclient[http]), against a running serve.
#
# Usage: v2_client.sh VENV_DIR HOST:PORT MODEL_NAME
#
# Creates the virtual environment VENV_DIR and pip-installs the pinned
# tritonclient into it when it is missing. PYTHON picks the interpreter
# [default: python3.11, else python3]. Exits 3 when Python, venv or pip
# fails, and with v2_client.py's status otherwise.
set -euo pipefail

TRITONCLIENT_VERSION=2.73.0

if [ $# -ne 3 ]; then
    echo "usage: $0 VENV_DIR HOST:PORT MODEL_NAME" >&2
    exit 2
fi
venv=$1
shift

fail() {
    echo "v2_client.sh: $*" >&2
    exit 3
}

python=${PYTHON:-}
if [ -z "$python" ]; then
    if command -v python3.11 >/dev/null 2>&1; then
        python=python3.11
    else
        python=python3
    fi
fi
command -v "$python" >/dev/null 2>&1 ||
    fail "$python not found: install Python 3 with its venv module and pip, or set PYTHON"

marker="$venv/.tritonclient-$TRITONCLIENT_VERSION"
if [ ! -f "$marker" ]; then
    if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ]; then
        fail "$venv exists but is not a virtual environment: remove it or pass another VENV_DIR"
    fi
    rm -rf "$venv"
    "$python" -m venv "$venv" ||
        fail "'$python -m venv $venv' failed: install Python's venv module (Debian: python3-venv)"
    # Wheels only, so that pip fails with a clear message where it would
    # otherwise try to compile geventhttpclient and gevent from source.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --only-binary=:all: "tritonclient[http]==$TRITONCLIENT_VERSION" ||
        fail "pip failed to install tritonclient[http]==$TRITONCLIENT_VERSION into $venv: pip needs to reach PyPI and find wheels for this platform"
    touch "$marker"
fi

exec "$venv/bin/python" "$(dirname "$0")/v2_client.py" "$@"
