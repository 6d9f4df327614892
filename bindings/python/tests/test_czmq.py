"""Interop with a real CZMQ 4.2.1 zgossip actor from the system library
(Debian libczmq-dev), driven through ctypes in this very process.

Loopback tcp only; every wait is bounded. Skipped with a reason when the
library is missing, except under CI (env CI set), where that fails."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import time
from typing import List, Optional, Tuple

import pytest

import zgossip
from conftest import BOUND, require, wait_status

pytestmark = pytest.mark.czmq

_vp, _cp = ctypes.c_void_p, ctypes.c_char_p


def _load_czmq() -> Optional[ctypes.CDLL]:
    path = ctypes.util.find_library("czmq")
    if path is None:
        return None
    # CZMQ installs its own SIGINT/SIGTERM handlers when it starts, unless
    # told not to: keep Python's (Ctrl-C must stay KeyboardInterrupt).
    os.environ.setdefault("ZSYS_SIGHANDLER", "false")
    lib = ctypes.CDLL(path)
    sigs = {
        "zsys_handler_set": ([_vp], None),
        "zactor_new": ([_vp, _vp], _vp),
        "zactor_sock": ([_vp], _vp),
        "zactor_destroy": ([ctypes.POINTER(_vp)], None),
        "zstr_sendm": ([_vp, _cp], ctypes.c_int),
        "zstr_send": ([_vp, _cp], ctypes.c_int),
        "zstr_recv": ([_vp], _vp),
        "zstr_free": ([ctypes.POINTER(_vp)], None),
        "zsock_set_rcvtimeo": ([_vp, ctypes.c_int], None),
        "zsock_rcvmore": ([_vp], ctypes.c_int),
    }
    for name, (args, res) in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes = args
        fn.restype = res
    lib.zsys_handler_set(None)
    return lib


_CZMQ = _load_czmq()


@pytest.fixture
def czmq() -> ctypes.CDLL:
    require(_CZMQ is not None, "the CZMQ library (libczmq.so.4) is not installed: apt-get install libczmq-dev")
    assert _CZMQ is not None
    return _CZMQ


class CzmqNode:
    """A CZMQ zgossip actor: zactor_new(zgossip, name)."""

    def __init__(self, lib: ctypes.CDLL, name: str) -> None:
        self.lib = lib
        self._name = ctypes.create_string_buffer(name.encode())  # kept alive
        self.actor = lib.zactor_new(ctypes.cast(lib.zgossip, _vp), ctypes.cast(self._name, _vp))
        assert self.actor, "zactor_new failed"
        self.sock = lib.zactor_sock(self.actor)
        lib.zsock_set_rcvtimeo(self.sock, int(BOUND * 1000))
        self.deliveries: List[Tuple[str, str]] = []

    def send(self, *frames: str) -> None:
        for f in frames[:-1]:
            assert self.lib.zstr_sendm(self.actor, f.encode()) == 0
        assert self.lib.zstr_send(self.actor, frames[-1].encode()) == 0

    def recv(self) -> Optional[List[str]]:
        """One message, or None after the receive timeout."""
        out: List[str] = []
        while True:
            ptr = self.lib.zstr_recv(self.actor)
            if not ptr:
                return out or None
            out.append(ctypes.string_at(ptr).decode())
            handle = _vp(ptr)
            self.lib.zstr_free(ctypes.byref(handle))
            if not self.lib.zsock_rcvmore(self.sock):
                return out

    def _reply(self, kind: str) -> List[str]:
        """The next reply of a kind, keeping the deliveries met on the way."""
        while True:
            msg = self.recv()
            assert msg is not None, f"CZMQ node sent no {kind}"
            if msg[0] == "DELIVER":
                self.deliveries.append((msg[1], msg[2]))
            elif msg[0] == kind:
                return msg

    def port(self) -> int:
        self.send("PORT")
        return int(self._reply("PORT")[1])

    def status(self) -> int:
        self.send("STATUS")
        return int(self._reply("STATUS")[1])

    def wait_status(self, n: int, timeout: float = BOUND) -> int:
        deadline = time.monotonic() + timeout
        while True:
            count = self.status()
            if count >= n or time.monotonic() >= deadline:
                return count
            time.sleep(0.02)

    def destroy(self) -> None:
        if self.actor:
            handle = _vp(self.actor)
            self.lib.zactor_destroy(ctypes.byref(handle))
            self.actor = None


@pytest.fixture
def cz(czmq):
    nodes: List[CzmqNode] = []

    def make(name: str) -> CzmqNode:
        node = CzmqNode(czmq, name)
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.destroy()


def test_ours_connects_to_czmq(cz) -> None:
    c = cz("czmq")
    c.send("BIND", "tcp://127.0.0.1:*")
    port = c.port()
    assert port > 0
    c.send("PUBLISH", "czmq/key", "czmq value")
    with zgossip.Node("ours") as ours:
        ours.publish("ours/key", "ours value")
        ours.connect(f"tcp://127.0.0.1:{port}")
        assert c.wait_status(2) == 2
        assert wait_status(ours, 2) == 2
        assert ("ours/key", "ours value") in c.deliveries
        got = dict(ours.deliveries(timeout=1.0))
        assert got == {"ours/key": "ours value", "czmq/key": "czmq value"}
        # A tuple published later travels both ways too.
        ours.publish("later/ours", "1")
        c.send("PUBLISH", "later/czmq", "2")
        assert c.wait_status(4) == 4
        assert wait_status(ours, 4) == 4
        assert c.status() == ours.status()


def test_czmq_connects_to_ours(cz) -> None:
    with zgossip.Node("ours") as ours:
        # CZMQ remotes never ping: keep their session open for the test
        # even on a slow machine (the default forgets it after 1 s).
        ours.set("server/timeout", 10000)
        port = ours.bind("tcp://127.0.0.1:*")
        ours.publish("ours/key", "ours value")
        c = cz("czmq")
        c.send("CONNECT", f"tcp://127.0.0.1:{port}")
        c.send("PUBLISH", "czmq/key", "czmq value")
        assert c.wait_status(2) == 2
        assert wait_status(ours, 2) == 2
        assert sorted(c.deliveries) == [("czmq/key", "czmq value"), ("ours/key", "ours value")]
        ours.publish("later/ours", "1")
        c.send("PUBLISH", "later/czmq", "2")
        assert c.wait_status(4) == 4
        assert wait_status(ours, 4) == 4
        assert c.status() == ours.status() == 4


def test_mixed_network_selftest_scenario(cz) -> None:
    """CZMQ's self-test with a CZMQ base, our alpha and a CZMQ beta."""
    base = cz("base")
    base.send("SET", "server/timeout", "1000")
    base.send("BIND", "tcp://127.0.0.1:*")
    endpoint = f"tcp://127.0.0.1:{base.port()}"
    beta = cz("beta")
    with zgossip.Node("alpha") as alpha:
        alpha.connect(endpoint)
        alpha.publish("inproc://alpha-1", "service1")
        alpha.publish("inproc://alpha-2", "service2")
        beta.send("CONNECT", endpoint)
        beta.send("PUBLISH", "inproc://beta-1", "service1")
        beta.send("PUBLISH", "inproc://beta-2", "service2")
        assert wait_status(alpha, 4) == 4
        assert base.wait_status(4) == 4
        assert beta.wait_status(4) == 4
        keys = [k for k, _ in alpha.deliveries(timeout=1.0)]
        assert keys[:2] == ["inproc://alpha-1", "inproc://alpha-2"]
        assert sorted(keys) == sorted(
            ["inproc://alpha-1", "inproc://alpha-2", "inproc://beta-1", "inproc://beta-2"]
        )
