#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what is
# missing (Debian packages; Python packages go into ./.venv), then runs the
# Rust checks and tests, the C tests (ctest, valgrind), the Python tests
# (pytest), the README examples and bounded fuzz runs. Exits non-zero on
# the first failure.
#
#   scripts/test.sh            everything
#   FUZZ_SECONDS=0 scripts/test.sh   skip the fuzz runs
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FUZZ_SECONDS=${FUZZ_SECONDS:-20}

step() { printf '\n==> %s\n' "$*"; }

# ---------------------------------------------------------------- packages
DEB_PACKAGES=(pkg-config cmake g++ valgrind libzmq3-dev libczmq-dev iproute2 iptables dnsmasq-base
    python3-venv chromium)
missing=()
for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    step "installing Debian packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The mDNS test (cli/tests/mdns.rs) runs python-zeroconf, an mDNS
# implementation no one here wrote, from the project's .venv.
if [ ! -x .venv/bin/python ]; then
    step "creating .venv"
    python3 -m venv .venv
fi
if ! .venv/bin/python -c "import zeroconf" 2>/dev/null; then
    step "installing python-zeroconf into .venv (cli/tests/mdns.rs)"
    .venv/bin/python -m pip install --quiet zeroconf
fi

# ---------------------------------------------------------------- rust
step "cargo fmt --check"
cargo fmt --all -- --check

# --workspace: the library and the zgossip command (cli/).
step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test"
cargo test --workspace --all-targets --quiet
cargo test --workspace --doc --quiet

# ---------------------------------------------------------------- C
step "C tests (ffi-tests against a staged install, valgrind included)"
scripts/ctest.sh

step "python package (bindings/python/test.sh)"
bindings/python/test.sh

step "README examples (C with pkg-config, CMake, Python)"
PY=""
[ -x .venv/bin/python ] && .venv/bin/python -c "import zgossip" 2>/dev/null && PY=.venv/bin/python
python3 scripts/readme_snippets.py build/stage $PY

# ---------------------------------------------------------------- fuzz
if [ "$FUZZ_SECONDS" != "0" ] && [ -d fuzz ]; then
    step "fuzzing each decoder for ${FUZZ_SECONDS}s"
    scripts/fuzz.sh "$FUZZ_SECONDS"
fi

step "all tests passed"
