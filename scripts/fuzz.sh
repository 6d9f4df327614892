#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (default 20 s each) on
# stable Rust (`-s none`: the crate has no unsafe code for ASan to check).
# Installs cargo-fuzz when missing. Fails if any target finds a crash.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_EACH=${1:-20}
if ! cargo fuzz --help >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi
for target in $(cargo fuzz list); do
    echo "fuzzing $target for ${SECONDS_EACH}s"
    mkdir -p "corpus/$target"
    log="${CARGO_TARGET_DIR:-../target}/fuzz-$target.log"
    mkdir -p "$(dirname "$log")"
    if ! cargo fuzz run -s none "$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz target $target failed (log: $log)"
        exit 1
    fi
    grep -E "^stat::number_of_executed_units" "$log" || true
done
