"""Wire interop with libzmq through pyzmq: raw ZGP v1 frames from a DEALER
that connects to our node, and a ROUTER our node connects to. libzmq is a
second, independent ZMTP implementation."""

from __future__ import annotations

import struct
import time
from typing import List, Optional

import pytest

import zgossip
from conftest import BOUND, require, wait_status

try:
    import zmq
except ImportError:  # pragma: no cover - depends on the machine
    zmq = None  # type: ignore[assignment]

HELLO = b"\xaa\xa0\x01\x01"
PING = b"\xaa\xa0\x03\x01"
PONG = b"\xaa\xa0\x04\x01"
INVALID = b"\xaa\xa0\x05\x01"
PUBLISH = b"\xaa\xa0\x02\x01"


def publish_frame(key: bytes, value: bytes, ttl: int = 0) -> bytes:
    return PUBLISH + bytes([len(key)]) + key + struct.pack(">I", len(value)) + value + struct.pack(">I", ttl)


def parse_publish(frame: bytes):
    assert frame[:4] == PUBLISH, frame
    klen = frame[4]
    key = frame[5 : 5 + klen]
    (vlen,) = struct.unpack(">I", frame[5 + klen : 9 + klen])
    value = frame[9 + klen : 9 + klen + vlen]
    (ttl,) = struct.unpack(">I", frame[9 + klen + vlen : 13 + klen + vlen])
    assert len(frame) == 13 + klen + vlen
    return key, value, ttl


@pytest.fixture
def ctx():
    require(zmq is not None, "pyzmq is not installed")
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def dealer(ctx, port: Optional[int]):
    assert port is not None
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.rcvtimeo = int(BOUND * 1000)
    sock.connect(f"tcp://127.0.0.1:{port}")
    return sock


def test_dealer_speaks_zgp_to_our_node(ctx) -> None:
    with zgossip.Node("ours") as node:
        port = node.bind("tcp://127.0.0.1:*")
        node.publish("held", "before-hello")
        sock = dealer(ctx, port)

        sock.send(HELLO)
        # On HELLO the node sends every tuple it holds.
        assert parse_publish(sock.recv()) == (b"held", b"before-hello", 0)

        sock.send(PING)
        assert sock.recv() == PONG

        sock.send(publish_frame(b"from/pyzmq", b"hello from libzmq"))
        assert node.recv(timeout=BOUND) == ["DELIVER", "held", "before-hello"]
        assert node.recv(timeout=BOUND) == ["DELIVER", "from/pyzmq", "hello from libzmq"]
        assert node.status() == 2

        # A tuple published later is forwarded to the connected client.
        node.publish("later", "x" * 300)
        assert parse_publish(sock.recv()) == (b"later", b"x" * 300, 0)
        sock.close()


def test_dealer_publish_before_hello_is_invalid(ctx) -> None:
    with zgossip.Node("ours") as node:
        port = node.bind("tcp://127.0.0.1:*")
        sock = dealer(ctx, port)
        sock.send(PING)  # allowed before HELLO, as in CZMQ
        assert sock.recv() == PONG
        sock.send(publish_frame(b"k", b"v"))
        assert sock.recv() == INVALID
        assert node.status() == 0
        sock.close()


def test_two_dealers_gossip_through_our_node(ctx) -> None:
    with zgossip.Node("ours") as node:
        port = node.bind("tcp://127.0.0.1:*")
        a, b = dealer(ctx, port), dealer(ctx, port)
        a.send(HELLO)
        b.send(HELLO)
        # Make sure both sessions exist before publishing.
        for s in (a, b):
            s.send(PING)
            assert s.recv() == PONG
        a.send(publish_frame(b"a-key", b"a-value"))
        assert parse_publish(b.recv()) == (b"a-key", b"a-value", 0)
        assert wait_status(node, 1) == 1
        a.close()
        b.close()


def router_recv(sock) -> List[bytes]:
    """Next message other than PING (answered with PONG) from our remote."""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        frames = sock.recv_multipart()
        assert len(frames) == 2, frames
        if frames[1] == PING:
            sock.send_multipart([frames[0], PONG])
            continue
        return frames
    raise AssertionError("nothing but pings")


def test_our_node_connects_to_a_router(ctx) -> None:
    sock = ctx.socket(zmq.ROUTER)
    sock.linger = 0
    sock.rcvtimeo = int(BOUND * 1000)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    with zgossip.Node("ours") as node:
        node.publish("held", "1")
        node.connect(f"tcp://127.0.0.1:{port}")
        routing_id, first = router_recv(sock)
        assert first == HELLO
        # After HELLO, every tuple the node holds.
        rid, frame = router_recv(sock)
        assert rid == routing_id and parse_publish(frame) == (b"held", b"1", 0)

        node.publish("fresh", "2")
        rid, frame = router_recv(sock)
        assert rid == routing_id and parse_publish(frame) == (b"fresh", b"2", 0)

        # The server side may publish to our remote: it is delivered.
        sock.send_multipart([routing_id, publish_frame(b"from/router", b"3")])
        got = {}
        for key, value in node.deliveries(timeout=BOUND):
            got[key] = value
            if "from/router" in got:
                break
        assert got.get("from/router") == "3"
        assert node.status() == 3
    sock.close()
