#!/usr/bin/env bash
# Builds the Python package into the project-local virtualenv (.venv at the
# repository root) and runs its checks: rustfmt and clippy on the binding
# crate, mypy.stubtest on the hand-written stub, and the pytest suite
# (including the pyzmq and CZMQ interop tests), then builds the binary
# wheel and tests it in a virtualenv without Rust (wheel.sh). Exits non-zero
# on any failure, and when pytest collects no test.
#
#   bindings/python/test.sh            everything
#   bindings/python/test.sh -k czmq    extra arguments go to pytest
#   ZGOSSIP_WHEEL=0 bindings/python/test.sh   skip the wheel step (wheel.sh)
#
# Needs python3 (>= 3.9, with venv), a Rust toolchain and network access to
# PyPI the first time. The CZMQ tests need libczmq (Debian libczmq-dev);
# without it they are skipped, unless CI is set, when they fail.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
# The binding crate is its own cargo workspace; keep its build under the
# repository's ignored target/ unless the caller chose a directory.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/python}

step() { printf '\n==> %s\n' "$*"; }

if [ ! -x "$PY" ]; then
    step "creating $VENV"
    python3 -m venv "$VENV"
fi
step "installing test tools into $VENV"
"$PY" -m pip install --quiet --upgrade pip
"$PY" -m pip install --quiet "maturin>=1.9,<2" pytest pytest-timeout pyzmq mypy \
    prometheus_client

step "cargo fmt --check and clippy (binding crate)"
(cd "$HERE" && cargo fmt -- --check && cargo clippy --release --quiet -- -D warnings)

step "building and installing the package (pip install ./bindings/python)"
# A library left by `maturin develop` must not shadow the fresh build.
rm -f "$HERE"/python/zgossip/*.so
"$PY" -m pip install --quiet --force-reinstall --no-deps "$HERE"

# Run from outside the source tree so `import zgossip` is the installed one.
cd "$VENV"
export MYPY_CACHE_DIR="$VENV/.mypy_cache"

step "mypy.stubtest zgossip"
"$PY" -m mypy.stubtest zgossip

step "mypy on the tests (the stub is usable)"
"$PY" -m mypy "$HERE/tests"

step "pytest"
status=0
"$PY" -m pytest -p no:cacheprovider --rootdir "$HERE" -c "$HERE/pyproject.toml" "$HERE/tests" "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure" >&2
    exit 1
fi
[ "$status" -eq 0 ] || exit "$status"

if [ "${ZGOSSIP_WHEEL:-1}" != "0" ]; then
    step "the binary wheel: abi3 manylinux, installed where no Rust is (wheel.sh)"
    "$HERE/wheel.sh"
fi
