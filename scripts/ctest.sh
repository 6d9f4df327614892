#!/usr/bin/env bash
# Runs the C tests: builds libzgossip (cargo, release) through the top-level
# CMakeLists.txt, installs it into build/stage with `cmake --install`, then
# configures ffi-tests/ against that prefix with find_package, builds the
# tests and runs them with ctest (self-test, errors, version, C++ header,
# consumer projects via find_package and pkg-config, and valgrind runs).
# Exits non-zero on any failure.
#
#   scripts/ctest.sh                 everything
#   ZGOSSIP_VALGRIND=OFF scripts/ctest.sh   skip the valgrind runs
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=$ROOT/build
STAGE=$BUILD/stage
VALGRIND=${ZGOSSIP_VALGRIND:-ON}

step() { printf '\n==> %s\n' "$*"; }

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v pkg-config >/dev/null || need+=(pkg-config)
pkg-config --exists libzmq 2>/dev/null || need+=(libzmq3-dev)
pkg-config --exists libczmq 2>/dev/null || need+=(libczmq-dev)
command -v c++ >/dev/null || need+=(g++)
if [ "$VALGRIND" = "ON" ]; then command -v valgrind >/dev/null || need+=(valgrind); fi
if [ ${#need[@]} -gt 0 ]; then
    step "installing Debian packages: ${need[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

step "cmake: cargo build --release, install into build/stage"
cmake -S "$ROOT" -B "$BUILD/lib" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD/lib"
rm -rf "$STAGE"
cmake --install "$BUILD/lib" --prefix "$STAGE" >/dev/null

step "ffi-tests: configure against build/stage (find_package), build"
rm -rf "$BUILD/ffi-tests"
cmake -S "$ROOT/ffi-tests" -B "$BUILD/ffi-tests" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$STAGE" -DZGOSSIP_VALGRIND="$VALGRIND" >/dev/null
cmake --build "$BUILD/ffi-tests"

step "ctest"
ctest --test-dir "$BUILD/ffi-tests" --output-on-failure --timeout 300
