#!/usr/bin/env bash
# The realistic run of the fast-path review (issue 23): chain, star and
# join with one node per process on loopback (bench/gossip_bench.c's
# pchain, pstar and pjoin), for CZMQ and zgossip alternately, RUNS times;
# prints each run's JSON line (cpu_s: CPU seconds of the node processes)
# and the medians.
#
#   bench/processes.sh             # RUNS=5
#   RUNS=3 IMPLS=zgossip bench/processes.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
IMPLS=${IMPLS:-"czmq zgossip"}
OUT=${OUT:-target/bench/processes.jsonl}
mkdir -p target/bench
cargo build --release --lib --quiet
LIB=${CARGO_TARGET_DIR:-target}/release/libzgossip.a
cc -O2 -Iinclude -o target/bench/bench-zgossip bench/gossip_bench.c "$LIB" -lpthread -ldl -lm
if [[ " $IMPLS " == *" czmq "* ]]; then
    cc -O2 -DUSE_CZMQ -o target/bench/bench-czmq bench/gossip_bench.c $(pkg-config --cflags --libs libczmq)
fi
: > "$OUT"
for r in $(seq 1 "$RUNS"); do
    echo "== run $r of $RUNS"
    # chain: 32 processes, 60 rounds 20 ms apart; chain0: 200 rounds back
    # to back; star: 100,000 tuples after 50,000 of warm-up; join: a fresh
    # process joins one holding 1,000,000 (CZMQ: 100,000).
    for scenario in "pchain 60" "pchain0 200" "pstar 100000" "pjoin 1000000"; do
        set -- $scenario
        for impl in $IMPLS; do
            name=$1 n=$2 pause=20
            if [ "$name" = pchain0 ]; then name=pchain pause=0; fi
            if [ "$impl" = czmq ] && [ "$name" = pjoin ]; then n=100000; fi
            line=$(BENCH_PAUSE_MS=$pause BENCH_DEADLINE=30 timeout 120 \
                "target/bench/bench-$impl" "$name" "$n" 2>/dev/null | tail -n 1) || true
            [ -n "$line" ] || line="{\"impl\":\"$impl\",\"scenario\":\"$name\",\"ok\":false}"
            echo "{\"run\":\"$1\",${line#\{}" | tee -a "$OUT"
        done
    done
done
python3 - "$OUT" <<'PY'
import collections, json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = collections.defaultdict(list)
for r in rows:
    if r.get("ok"):
        by[(r["run"], r["impl"], r["n"])].append(r)
print("medians:")
for (run, impl, n), rs in sorted(by.items()):
    unit = "us_per_hop" if "us_per_hop" in rs[0] else "tuples_per_s"
    med = lambda k: statistics.median(x[k] for x in rs)
    print(f"  {run:8} {impl:8} n={n:<8} {unit} {med(unit):12.1f}  seconds {med('seconds'):.4f}"
          f"  cpu_s {med('cpu_s'):.3f}  ({len(rs)} runs)")
PY
