"""Membership: ``Node.members()``, the ``zgossip.Member`` record, the
``MEMBER`` events after ``SET membership/events 1``, and leaves on close and
on garbage collection. Nodes talk over loopback TCP; every wait is bounded."""

from __future__ import annotations

import copy
import gc
import pickle
import re
import time
from typing import Dict, List, Optional

import pytest

import zgossip
from conftest import BOUND, unique, wait_until

STATES = ("alive", "suspect", "failed", "left")


def start(name: str) -> "tuple[zgossip.Node, str]":
    node = zgossip.Node(name)
    port = node.bind("tcp://127.0.0.1:*")
    return node, f"tcp://127.0.0.1:{port}"


def all_alive(node: zgossip.Node, n: int) -> bool:
    members = node.members()
    return len(members) == n and all(m.state == "alive" for m in members)


def state_of(node: zgossip.Node, name: str) -> Optional[str]:
    for m in node.members():
        if m.name == name:
            return m.state
    return None


def member_events(node: zgossip.Node, seconds: float) -> List[zgossip.Member]:
    """The ``MEMBER`` messages that reach ``node`` within ``seconds``."""
    seen = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        msg = node.recv(timeout=left)
        if msg is None:
            break
        if msg[0] == "MEMBER":
            assert len(msg) == 5, msg
            assert re.fullmatch(r"[0-9a-f]{16}", msg[1]), msg
            seen.append(zgossip.Member(int(msg[1], 16), msg[2], msg[3], msg[4]))
    return seen


# ------------------------------------------------------------------ Member


def test_member_record() -> None:
    m = zgossip.Member(0x1234ABCD, "db", "alive", "tcp://10.0.0.5:5670")
    assert (m.id, m.name, m.state, m.endpoint) == (0x1234ABCD, "db", "alive", "tcp://10.0.0.5:5670")
    assert repr(m) == (
        "zgossip.Member(id=0x000000001234abcd, name='db', state='alive', "
        "endpoint='tcp://10.0.0.5:5670')"
    )
    assert type(m).__module__ == "zgossip" and type(m).__name__ == "Member"
    same = zgossip.Member(0x1234ABCD, "db", "alive", "tcp://10.0.0.5:5670")
    assert m == same and hash(m) == hash(same) and len({m, same}) == 1
    assert m != zgossip.Member(0x1234ABCD, "db", "left", "tcp://10.0.0.5:5670")
    assert m != (0x1234ABCD, "db", "alive", "tcp://10.0.0.5:5670")
    assert copy.copy(m) == m and pickle.loads(pickle.dumps(m)) == m
    # Names are the application's: quotes and escapes as Python writes them.
    odd = zgossip.Member(2**64 - 1, "it's\n", "left", "")
    assert repr(odd) == (
        "zgossip.Member(id=0xffffffffffffffff, name=\"it's\\n\", state='left', endpoint='')"
    )
    assert eval(repr(odd), {"zgossip": zgossip}) == odd
    with pytest.raises(AttributeError):
        m.state = "left"  # type: ignore[misc]
    with pytest.raises(ValueError, match="alive, suspect, failed, left"):
        zgossip.Member(1, "x", "dead", "")
    with pytest.raises(OverflowError):
        zgossip.Member(-1, "x", "alive", "")
    with pytest.raises(TypeError):
        zgossip.Member("1", "x", "alive", "")  # type: ignore[arg-type]


# ----------------------------------------------------------------- members()


def test_a_node_alone_lists_itself() -> None:
    with zgossip.Node("solo") as n:
        (me,) = n.members()
        assert (me.name, me.state, me.endpoint) == ("solo", "alive", "")
        assert 0 < me.id < 2**64
        # The typed call takes nothing off the reply queue.
        assert n.recv(0) is None
    with pytest.raises(zgossip.TerminatedError):
        n.members()


def test_members_takes_no_argument() -> None:
    with zgossip.Node("m") as n:
        with pytest.raises(zgossip.CommandError, match="MEMBERS takes 0 arguments"):
            n.send("MEMBERS", "x")
        with pytest.raises(zgossip.ConfigError, match="membership/events"):
            n.set("membership/events", 2)
        # The raw command: the reply on the queue, four frames per member.
        n.send("MEMBERS")
        msg = n.recv(timeout=BOUND)
        assert msg is not None and msg[0] == "MEMBERS" and len(msg) == 5
        assert msg[2:] == ["m", "alive", ""]
        assert int(msg[1], 16) == n.members()[0].id


def test_three_nodes_list_each_other_and_those_that_stop_are_left() -> None:
    a, a_ep = start(unique("alpha"))
    b, b_ep = start(unique("beta"))
    c, c_ep = start(unique("gamma"))
    endpoints = {a.name: a_ep, b.name: b_ep, c.name: c_ep}
    names = {a.name: "a", b.name: "b", c.name: "c"}
    try:
        a.set("membership/events", 1)
        b.join(a_ep)
        c.join(a_ep)
        for n in (a, b, c):
            assert wait_until(lambda: all_alive(n, 3), 10), (n.name, n.members())

        ids: Dict[str, int] = {}
        for n in (a, b, c):
            members = n.members()
            assert members[0].name == n.name, "itself first"
            assert sorted(m.name for m in members) == sorted(endpoints)
            for m in members:
                assert m.state in STATES
                assert m.endpoint == endpoints[m.name], (n.name, m)
                # One id per node, whoever lists it.
                assert ids.setdefault(m.name, m.id) == m.id
        assert len(set(ids.values())) == 3

        # a asked for events: one MEMBER alive for each node that joined,
        # the same record as members() gives.
        joined = member_events(a, 0.5)
        assert sorted(joined, key=lambda m: m.name) == sorted(
            a.members()[1:], key=lambda m: m.name
        )
        assert {names[m.name] for m in joined} == {"b", "c"}
        # b did not: nothing new on its queue.
        assert member_events(b, 0.2) == []

        # close(): the others list it left at once (well within seconds),
        # never failed.
        started = time.monotonic()
        c.close()
        assert wait_until(
            lambda: state_of(a, c.name) == "left" and state_of(b, c.name) == "left", BOUND
        ), (a.members(), b.members())
        assert time.monotonic() - started < BOUND
        assert member_events(a, 0.5) == [
            zgossip.Member(ids[c.name], c.name, "left", c_ep)
        ]

        # A node only garbage-collected stops, and leaves, too.
        b_name = b.name
        del b
        gc.collect()
        assert wait_until(lambda: state_of(a, b_name) == "left", BOUND), a.members()
        assert [m.state for m in a.members()] == ["alive", "left", "left"]
        stats = a.stats()
        assert (stats["members-alive"], stats["members-gone"]) == (0, 2)
        assert stats["members-failures"] == 0
    finally:
        a.close()
        c.close()

