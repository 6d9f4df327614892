"""Discovery on a secured network, through the Python binding: a node with
a CURVE key pair that runs DISCOVER links only with nodes that beacon a
public key; it never links with a plain node, in either direction.

The body runs in a child process inside a new network namespace that has
only ``lo`` (``unshare --net``), so no beacon leaves the machine. Without
namespaces the test is skipped, except under CI, where that fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import zgossip
from conftest import require, wait_until

_SEAL = (
    "ip link set lo up && "
    "ip route add default dev lo src 127.0.0.1 && "
    "ip route add 224.0.0.0/4 dev lo src 127.0.0.1 && "
    'exec "$@"'
)


def _can_unshare() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0


def _start(name: str, secured: bool, key: str) -> zgossip.Node:
    node = zgossip.Node(name)
    if secured:
        public, secret = zgossip.keypair()
        node.send("SET PUBLICKEY", public)
        node.send("SET SECRETKEY", secret)
    node.send("DISCOVER", "interface=lo", "interval=50")
    node.publish(key, "x")
    return node


def body() -> None:
    """Runs inside the namespace (see the module docstring)."""
    a = _start("a", True, "secret-a")
    d = _start("d", True, "secret-d")
    b = _start("b", False, "evil-b")
    c = _start("c", False, "evil-c")
    assert wait_until(
        lambda: sorted(a.keys()) == ["secret-a", "secret-d"]
        and sorted(d.keys()) == ["secret-a", "secret-d"]
        and sorted(b.keys()) == ["evil-b", "evil-c"]
        and sorted(c.keys()) == ["evil-b", "evil-c"],
        timeout=10,
    ), (a.keys(), d.keys(), b.keys(), c.keys())
    time.sleep(0.3)  # several beacon intervals for a leak to show
    for n in (a, d):
        assert sorted(n.keys()) == ["secret-a", "secret-d"], n.keys()
        assert n.stats()["discovery-ignored-plain"] > 0
        assert n.stats()["plain-dials"] == 0
    for n in (b, c):
        assert sorted(n.keys()) == ["evil-b", "evil-c"], n.keys()
        assert n.stats()["discovery-ignored-curve"] > 0
    for n in (a, b, c, d):
        n.close()
    print("discovery_curve: OK")


def test_secured_and_plain_nodes_never_link_by_discovery() -> None:
    require(_can_unshare(), "cannot create a network namespace (needs root, unshare and ip)")
    here = os.path.dirname(os.path.abspath(__file__))
    code = f"import sys; sys.path.insert(0, {here!r}); import test_discovery_curve as t; t.body()"
    out = subprocess.run(
        ["unshare", "--net", "sh", "-c", _SEAL, "sh", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and "discovery_curve: OK" in out.stdout, out.stdout + out.stderr
