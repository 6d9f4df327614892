"""Ephemeral tuples: ``Node.publish_ephemeral()`` ties a tuple to its
writer's life; when the writer closes (or is only garbage-collected) every
other node deletes it and tells its application ``DELETE key``, while the
writer's plain tuples stay. Nodes talk over loopback TCP; every wait is
bounded."""

from __future__ import annotations

import gc
import time
from typing import List, Optional

import pytest

import zgossip
from conftest import BOUND, unique, wait_until


def start(name: str) -> "tuple[zgossip.Node, str]":
    node = zgossip.Node(name)
    port = node.bind("tcp://127.0.0.1:*")
    return node, f"tcp://127.0.0.1:{port}"


def state_of(node: zgossip.Node, name: str) -> Optional[str]:
    for m in node.members():
        if m.name == name:
            return m.state
    return None


def messages(node: zgossip.Node, seconds: float, until: Optional[List[str]] = None) -> List[List[str]]:
    """The messages that reach ``node`` within ``seconds``, stopping early
    after ``until``."""
    seen = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        msg = node.recv(timeout=left)
        if msg is None:
            break
        seen.append(msg)
        if msg == until:
            break
    return seen


def joined_pair() -> "tuple[zgossip.Node, zgossip.Node]":
    """A writer and a reader that joined it, each listing the other alive."""
    writer, writer_ep = start(unique("writer"))
    reader, _ = start(unique("reader"))
    reader.join(writer_ep)
    assert wait_until(
        lambda: state_of(reader, writer.name) == "alive"
        and state_of(writer, reader.name) == "alive",
        BOUND,
    ), (reader.members(), writer.members())
    return writer, reader


def test_an_ephemeral_tuple_is_deleted_everywhere_when_its_writer_closes() -> None:
    writer, reader = joined_pair()
    try:
        writer.publish_ephemeral("svc/db", "tcp://10.0.0.5:5432")
        writer.publish("plain", "stays")
        assert wait_until(
            lambda: reader.get("svc/db") == "tcp://10.0.0.5:5432"
            and reader.get("plain") == "stays",
            BOUND,
        ), reader.keys()
        # Delivered as any tuple, to the writer's application too.
        assert ["DELIVER", "svc/db", "tcp://10.0.0.5:5432"] in messages(
            writer, BOUND, until=["DELIVER", "plain", "stays"]
        )
        got = messages(reader, BOUND, until=["DELIVER", "plain", "stays"])
        assert ["DELIVER", "svc/db", "tcp://10.0.0.5:5432"] in got, got

        started = time.monotonic()
        writer.close()
        got = messages(reader, BOUND, until=["DELETE", "svc/db"])
        assert got[-1:] == [["DELETE", "svc/db"]], got
        assert time.monotonic() - started < BOUND
        assert reader.get("svc/db") is None
        # Only the ephemeral one: the plain tuple stays, and nothing else
        # is deleted.
        assert reader.get("plain") == "stays"
        assert reader.keys() == ["plain"]
        assert [m for m in messages(reader, 0.5) if m[0] in ("DELETE", "EXPIRE")] == []
        assert reader.stats()["ephemeral-deleted"] == 1
        assert state_of(reader, writer.name) == "left"
    finally:
        writer.close()
        reader.close()


def test_a_writer_only_garbage_collected_takes_its_ephemeral_tuples_along() -> None:
    writer, reader = joined_pair()
    try:
        writer.publish_ephemeral("svc/cache", "tcp://10.0.0.7:6379", ttl=3600)
        assert wait_until(lambda: reader.get("svc/cache") is not None, BOUND)
        del writer
        gc.collect()
        got = messages(reader, BOUND, until=["DELETE", "svc/cache"])
        assert got[-1:] == [["DELETE", "svc/cache"]], got
        assert reader.keys() == []
    finally:
        reader.close()


def test_an_ephemeral_tuple_with_a_ttl_expires_while_its_writer_lives() -> None:
    with zgossip.Node(unique("e")) as node:
        node.publish_ephemeral("short", "lived", ttl=0.2)
        node.publish_ephemeral("long", "lived")
        assert node.status() == 2
        assert wait_until(lambda: node.status() == 1)
        assert node.keys() == ["long"]
        got = messages(node, BOUND, until=["EXPIRE", "short"])
        assert ["DELIVER", "short", "lived"] in got and ["EXPIRE", "short"] in got, got


def test_publish_ephemeral_refuses_bad_arguments() -> None:
    with zgossip.Node(unique("bad")) as node:
        with pytest.raises(zgossip.CommandError, match="255"):
            node.publish_ephemeral("k" * 256, "v")
        with pytest.raises(zgossip.CommandError, match="EPHEMERAL: arguments cannot contain NUL"):
            node.publish_ephemeral("k\0", "v")
        for ttl in (0, -1.0, float("nan"), float("inf")):
            with pytest.raises(zgossip.CommandError, match="EPHEMERAL: ttl must be"):
                node.publish_ephemeral("k", "v", ttl=ttl)
        with pytest.raises(TypeError):
            node.publish_ephemeral("k", 3)  # type: ignore[arg-type]
        # The raw command, refused as PUBLISH is, with its own name; also a
        # ValueError.
        with pytest.raises(ValueError) as info:
            node.send("EPHEMERAL", "k")
        assert isinstance(info.value, zgossip.CommandError)
        assert str(info.value) == (
            "EPHEMERAL takes 2 arguments, got 1: usage: EPHEMERAL key value [ttl-msecs]"
        )
        with pytest.raises(zgossip.CommandError, match="EPHEMERAL: ttl must be a positive"):
            node.send("EPHEMERAL", "k", "v", "0")
        # Nothing refused was stored; the raw command works.
        assert node.status() == 0
        node.send("EPHEMERAL", "k", "v", "60000")
        assert node.get("k") == "v"
    with pytest.raises(zgossip.TerminatedError):
        node.publish_ephemeral("k", "v")
