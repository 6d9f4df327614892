#!/usr/bin/env bash
# Regenerates include/zgossip.h from src/ffi/ with cbindgen, pinned to one
# version (the header's exact text depends on it; tests/header.rs checks the
# committed header with the same version, used as a library). Installs that
# version with cargo when it is missing.
#
#   scripts/gen-header.sh           regenerate include/zgossip.h
#   scripts/gen-header.sh --check   exit 1 if the committed header is stale
set -euo pipefail
cd "$(dirname "$0")/.."
CBINDGEN_VERSION=0.29.0

if ! command -v cbindgen >/dev/null || [ "$(cbindgen --version)" != "cbindgen $CBINDGEN_VERSION" ]; then
    echo "installing cbindgen $CBINDGEN_VERSION" >&2
    cargo install cbindgen --version "$CBINDGEN_VERSION" --locked --quiet
fi

out=include/zgossip.h
if [ "${1:-}" = "--check" ]; then
    tmp=$(mktemp)
    trap 'rm -f "$tmp"' EXIT
    cbindgen --quiet --config cbindgen.toml --output "$tmp" src/ffi/mod.rs
    if ! diff -u "$out" "$tmp"; then
        echo "$out is stale: run scripts/gen-header.sh and commit it" >&2
        exit 1
    fi
    echo "$out is up to date"
else
    cbindgen --quiet --config cbindgen.toml --output "$out" src/ffi/mod.rs
    echo "wrote $out"
fi
