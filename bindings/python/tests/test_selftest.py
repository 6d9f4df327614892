"""The scenario of CZMQ's own zgossip self-test, on inproc and on tcp."""

from __future__ import annotations

import time
from typing import List

import pytest

import zgossip
from conftest import BOUND, unique, wait_status


@pytest.mark.parametrize("transport", ["inproc", "tcp"])
def test_czmq_selftest_scenario(transport: str) -> None:
    with zgossip.Node("base") as base, zgossip.Node("alpha") as alpha, zgossip.Node(
        "beta"
    ) as beta:
        base.send("SET", "server/timeout", "100")
        if transport == "inproc":
            endpoint = f"inproc://{unique('base')}"
            base.send("BIND", endpoint)
        else:
            base.send("BIND", "tcp://127.0.0.1:*")
            base.send("PORT")
            reply = base.recv(timeout=BOUND)
            assert reply is not None and reply[0] == "PORT"
            endpoint = f"tcp://127.0.0.1:{int(reply[1])}"

        alpha.send("CONNECT", endpoint)
        alpha.send("PUBLISH", "inproc://alpha-1", "service1")
        alpha.send("PUBLISH", "inproc://alpha-2", "service2")
        beta.send("CONNECT", endpoint)
        beta.send("PUBLISH", "inproc://beta-1", "service1")
        beta.send("PUBLISH", "inproc://beta-2", "service2")
        time.sleep(0.2)

        # As CZMQ's test: STATUS comes after the four deliveries. A slow
        # machine may need longer than 200 ms, so ask again (bounded).
        deliveries: List[List[str]] = []
        deadline = time.monotonic() + BOUND
        while True:
            alpha.send("STATUS")
            while True:
                msg = alpha.recv(timeout=max(0.0, deadline - time.monotonic()) + 0.5)
                assert msg is not None, f"no STATUS reply; got so far {deliveries}"
                if msg[0] == "STATUS":
                    break
                deliveries.append(msg)
            if msg == ["STATUS", "4"]:
                break
            assert time.monotonic() < deadline, f"STATUS {msg[1]} after {BOUND}s: {deliveries}"
            time.sleep(0.05)

        assert deliveries == [
            ["DELIVER", "inproc://alpha-1", "service1"],
            ["DELIVER", "inproc://alpha-2", "service2"],
            ["DELIVER", "inproc://beta-1", "service1"],
            ["DELIVER", "inproc://beta-2", "service2"],
        ]
        # The other nodes hold every tuple too.
        assert wait_status(base, 4) == 4
        assert wait_status(beta, 4) == 4
