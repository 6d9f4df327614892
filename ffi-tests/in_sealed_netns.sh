#!/bin/sh
# Runs a program inside a new network namespace that has only `lo`, with
# broadcast and multicast routed to it, so that the beacons of a test never
# leave the machine. Needs root and util-linux's unshare and iproute2's ip.
# Without them: skipped (exit 77) outside CI, a failure naming what is
# missing under CI=true.
if ! unshare --net true 2>/dev/null || ! command -v ip >/dev/null; then
    why="cannot create a network namespace (needs root, unshare from util-linux and ip from iproute2)"
    if [ "${CI:-}" = true ]; then
        echo "FAILED: $why; under CI=true that is a failure" >&2
        exit 1
    fi
    echo "SKIPPED: $why" >&2
    exit 77
fi
exec unshare --net sh -c '
    ip link set lo up &&
    ip route add default dev lo src 127.0.0.1 &&
    ip route add 224.0.0.0/4 dev lo src 127.0.0.1 &&
    exec "$@"' sh "$@"
