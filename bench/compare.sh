#!/usr/bin/env bash
# Builds bench/gossip_bench.c twice (against CZMQ's zgossip actor and
# against zgossip's C API), runs every scenario alternately RUNS times on
# loopback, then prints medians and ratios against the targets of issue 8
# (bench/report.py) and regenerates the plots in docs/img/.
#
#   bench/compare.sh            # RUNS=3, a few minutes on 2 cores
#   RUNS=1 bench/compare.sh     # quicker
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
# Rounds per chain run (a tuple along 32 nodes, 20 ms apart): each run's
# figure is their mean.
CHAIN_ROUNDS=${CHAIN_ROUNDS:-60}
OUT=${OUT:-target/bench/results.jsonl}
mkdir -p target/bench
cargo build --release --lib --quiet
cc -O2 -DUSE_CZMQ -o target/bench/bench-czmq bench/gossip_bench.c $(pkg-config --cflags --libs libczmq)
cc -O2 -Iinclude -o target/bench/bench-zgossip bench/gossip_bench.c \
    target/release/libzgossip.a -lpthread -ldl -lm
ulimit -n 65536 2>/dev/null || ulimit -n 8192 2>/dev/null || true
: > "$OUT"

run() { # impl scenario [n] -- one bounded run, one JSON line appended
    # (LABEL=name reports the run under another implementation name)
    local impl=$1; shift
    local label=${LABEL:-$impl}
    local line
    if line=$(BENCH_DEADLINE=${DEADLINE:-30} timeout 120 "target/bench/bench-$impl" "$@" 2>/dev/null | tail -n 1) && [ -n "$line" ]; then
        echo "${line/\"impl\":\"$impl\"/\"impl\":\"$label\"}" | tee -a "$OUT"
    else
        echo "{\"impl\":\"$label\",\"scenario\":\"$1\",\"n\":${2:-0},\"seconds\":-1,\"ok\":false}" | tee -a "$OUT"
    fi
}

for r in $(seq 1 "$RUNS"); do
    echo "== run $r of $RUNS"
    # Each scenario runs for both back to back, so that a pair's ratio
    # compares runs made in the same few seconds of the machine's life.
    for scenario in "star 100000" "chain $CHAIN_ROUNDS" "memory 200000" swarm; do
        for impl in czmq zgossip; do
            run "$impl" $scenario
        done
    done
    # Star with the application's thread on one CPU and the library's
    # threads on the other (the scheduler of a VM may pack them onto one).
    BENCH_PIN=1 LABEL=czmq-pinned run czmq star 100000
    BENCH_PIN=1 LABEL=zgossip-pinned run zgossip star 100000
    # Star without its warm-up stream: the first 100,000 tuples after the
    # nodes were idle.
    BENCH_WARMUP=0 LABEL=czmq-cold run czmq star 100000
    BENCH_WARMUP=0 LABEL=zgossip-cold run zgossip star 100000
    # zgossip reading its deliveries as CZMQ does, a malloc'd string each.
    BENCH_RECVX=1 LABEL=zgossip-recvx run zgossip star 100000
    # zgossip with a data directory on every node (issue 26: at least half
    # the in-memory throughput with the default fsync interval).
    PERSIST_DIR=$(mktemp -d)
    BENCH_DATA_DIR=$PERSIST_DIR LABEL=zgossip-persist run zgossip star 100000
    rm -rf "$PERSIST_DIR"
    # zgossip with a thread per node instead of the shared event loop.
    ZGOSSIP_IO_THREADS=0 LABEL=zgossip-own run zgossip star 100000
    ZGOSSIP_IO_THREADS=0 LABEL=zgossip-own run zgossip chain "$CHAIN_ROUNDS"
    # Join: CZMQ against 100,000 tuples (1,000,000 takes it many seconds
    # per run), zgossip against the 1,000,000 of the target as well.
    run czmq join 100000
    run zgossip join 100000
    run zgossip join 1000000
done
# Scenarios CZMQ fails: once each, with a 30 s deadline.
for impl in czmq zgossip; do
    DEADLINE=30 run "$impl" chain128
    DEADLINE=30 run "$impl" mesh1000
done
python3 bench/report.py "$OUT"
