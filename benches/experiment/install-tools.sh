#!/usr/bin/env bash
# Installs the tools the experiment runs when they are missing: `ab` (Debian
# package apache2-utils) and `taskset` (util-linux). Needs apt-get and root.
set -euo pipefail

missing=()
command -v ab > /dev/null || missing+=(apache2-utils)
command -v taskset > /dev/null || missing+=(util-linux)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if ! command -v apt-get > /dev/null; then
    echo "install-tools: ${missing[*]} missing and apt-get not found; install them by hand" >&2
    exit 1
fi
echo "install-tools: installing ${missing[*]} with apt-get" >&2
if ! apt-get install -y -qq "${missing[@]}"; then
    # A fresh machine has no package lists yet.
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}"
fi
