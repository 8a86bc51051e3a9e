#!/usr/bin/env bash
# Prints the path of a promtool binary: the one on PATH, else one taken
# from Debian's `prometheus` package without installing the package (which
# would also set up the Prometheus service). The package is downloaded
# with `apt-get download` into target/promtool/ ($CARGO_TARGET_DIR/promtool/
# when that is set), and only usr/bin/promtool is extracted from it, once.
# Exits 1 with a message on stderr when neither works.
set -euo pipefail

if command -v promtool >/dev/null; then
    command -v promtool
    exit 0
fi

repository="$(cd "$(dirname "$0")/../.." && pwd)"
folder="${CARGO_TARGET_DIR:-$repository/target}/promtool"
binary="$folder/usr/bin/promtool"
if [ -x "$binary" ]; then
    echo "$binary"
    exit 0
fi

fail() {
    echo "promtool.sh: $1" >&2
    exit 1
}

command -v apt-get >/dev/null ||
    fail "promtool is not on PATH and apt-get is missing: install promtool (Debian package prometheus) and retry"
command -v dpkg-deb >/dev/null ||
    fail "promtool is not on PATH and dpkg-deb is missing: install promtool (Debian package prometheus) and retry"

mkdir -p "$folder"
work="$(mktemp -d "$folder/download.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# apt-get download needs the package lists, which a fresh machine may lack.
if ! (cd "$work" && apt-get download prometheus >&2); then
    echo "promtool.sh: apt-get download prometheus failed; updating the package lists and retrying" >&2
    apt-get update -qq >&2 ||
        fail "apt-get update failed: run it as root, or put promtool on PATH"
    (cd "$work" && apt-get download prometheus >&2) ||
        fail "apt-get download prometheus failed: put promtool on PATH"
fi

package="$(find "$work" -maxdepth 1 -name 'prometheus_*.deb' | head -n 1)"
[ -n "$package" ] || fail "apt-get download left no prometheus_*.deb in $work"
dpkg-deb --fsys-tarfile "$package" | tar -x -C "$work" ./usr/bin/promtool ||
    fail "failed to extract usr/bin/promtool from $package"

# Renaming into place keeps a concurrent run from seeing a partial binary.
mkdir -p "$folder/usr/bin"
mv "$work/usr/bin/promtool" "$binary"
echo "$binary"
