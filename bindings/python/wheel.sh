#!/usr/bin/env bash
# Builds the binary wheel Python users install (abi3: one wheel for CPython
# 3.9 and later; manylinux: any Linux whose glibc is at least the tag's),
# then proves it needs no Rust: installs it into a fresh virtualenv from an
# environment whose PATH has no cargo nor rustc, and runs a smoke test there
# (two nodes on the loopback, one joined to the other, exchange a tuple;
# members() lists both).
# Exits non-zero on any failure, and when the wheel's name is not
# cp3X-abi3-manylinux_*.
#
#   bindings/python/wheel.sh              build into target/wheels (or
#                                         $CARGO_TARGET_DIR/wheels) and test
#   ZGOSSIP_MANYLINUX=manylinux_2_28 bindings/python/wheel.sh
#                                         another policy (the build host's
#                                         glibc must be at most its version)
#
# Needs the project's .venv with maturin (bindings/python/test.sh installs
# it) and a Rust toolchain to build; nothing is uploaded.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY="$ROOT/.venv/bin/python"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/python}
OUT="$CARGO_TARGET_DIR/wheels"
# The oldest glibc the wheel may claim is the build host's: maturin checks
# the symbol versions the library needs against the policy and refuses a
# tag they exceed. Built on Debian 12 (glibc 2.36) the library needs
# glibc 2.34 at most (Rust's standard library and libc calls), so
# manylinux_2_34 covers Debian 12, Ubuntu 22.04, RHEL 9 and later. Older
# systems need the wheel built on an older glibc (a manylinux container,
# see the README).
POLICY=${ZGOSSIP_MANYLINUX:-manylinux_2_34}

step() { printf '\n==> %s\n' "$*"; }

[ -x "$PY" ] || { echo "no $PY: run bindings/python/test.sh first" >&2; exit 1; }
"$PY" -m maturin --version >/dev/null || { echo "maturin missing in .venv" >&2; exit 1; }

step "maturin build --release --compatibility $POLICY"
rm -rf "$OUT"
(cd "$HERE" && "$PY" -m maturin build --release --compatibility "$POLICY" --out "$OUT")
shopt -s nullglob
wheels=("$OUT"/*.whl)
if [ ${#wheels[@]} -ne 1 ]; then
    echo "expected one wheel in $OUT, found ${#wheels[@]}" >&2
    exit 1
fi
wheel=${wheels[0]}
name=$(basename "$wheel")
echo "built $name"
# zgossip-0.1.0-cp39-abi3-manylinux_2_34_x86_64.whl: one wheel for every
# CPython from 3.9 on, for glibc Linux from the policy's version on.
if ! [[ "$name" =~ ^zgossip-[^-]+-cp3[0-9]+-abi3-manylinux_[0-9]+_[0-9]+_[a-z0-9_]+\.whl$ ]]; then
    echo "wheel $name is not cp3X-abi3-manylinux_*: not the wheel users install" >&2
    exit 1
fi

step "install into a clean virtualenv, no Rust on the PATH"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The system's Python, not the project's .venv, and a PATH with no cargo
# nor rustc (they live in ~/.cargo/bin; a system-wide one would be in
# /usr/bin, and the check below then fails loudly).
SYSPY=/usr/bin/python3
[ -x "$SYSPY" ] || SYSPY=$(command -v python3)
clean() { env -i PATH=/usr/bin:/bin HOME="$tmp" LANG=C.UTF-8 "$@"; }
if clean sh -c 'command -v cargo || command -v rustc'; then
    echo "cargo or rustc is on the clean PATH: the test proves nothing" >&2
    exit 1
fi
clean "$SYSPY" -m venv "$tmp/venv"
clean "$tmp/venv/bin/python" -m pip install --quiet --no-index --no-cache-dir "$wheel"
clean "$tmp/venv/bin/python" - <<'EOF'
import os
import shutil
import time

import zgossip

assert shutil.which("cargo") is None and shutil.which("rustc") is None, "Rust on the PATH"
native = zgossip._zgossip.__file__
assert native.endswith(".abi3.so"), native
assert native.startswith(os.environ["HOME"]), native  # the wheel, not the source tree

with zgossip.Node("wheel-hub") as hub, zgossip.Node("wheel-leaf") as leaf:
    port = hub.bind("tcp://127.0.0.1:*")
    assert port
    leaf.join(f"tcp://127.0.0.1:{port}")
    leaf.publish("wheel/key", "from the wheel")
    got = None
    for key, value in hub.deliveries(timeout=10):
        if key == "wheel/key":
            got = value
            break
    assert got == "from the wheel", got
    deadline = time.monotonic() + 10
    names = set()
    while time.monotonic() < deadline:
        names = {m.name for m in hub.members()}
        if {"wheel-hub", "wheel-leaf"} <= names:
            break
        time.sleep(0.05)
    assert {"wheel-hub", "wheel-leaf"} <= names, names
print("wheel smoke test: tuple delivered, members", sorted(names))
EOF
echo "wheel OK: $name"
