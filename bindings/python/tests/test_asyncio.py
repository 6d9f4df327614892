"""The asyncio API: recv_async() and deliveries_async(), built on fileno().

Each test runs its own event loop with asyncio.run (no plugin needed)."""

from __future__ import annotations

import asyncio
import time

import pytest

import zgossip
from conftest import BOUND, unique


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, BOUND * 2))


def test_recv_async_gets_delivery_without_blocking_the_loop() -> None:
    async def main() -> None:
        with zgossip.Node("hub") as hub, zgossip.Node("leaf") as leaf:
            port = hub.bind("tcp://127.0.0.1:*")
            leaf.connect(f"tcp://127.0.0.1:{port}")
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.01)

            tick_task = asyncio.ensure_future(ticker())
            asyncio.get_running_loop().call_later(0.2, leaf.publish, "k", "v")
            msg = await hub.recv_async(timeout=BOUND)
            tick_task.cancel()
            assert msg == ["DELIVER", "k", "v"]
            # The loop ran other tasks while recv_async waited.
            assert ticks >= 3

    run(main())


def test_recv_async_timeout_returns_none() -> None:
    async def main() -> None:
        with zgossip.Node("n") as n:
            start = time.monotonic()
            assert await n.recv_async(timeout=0.2) is None
            assert 0.15 <= time.monotonic() - start < BOUND
            assert await n.recv_async(timeout=0) is None
            n.publish("k", "v")
            assert await n.recv_async(timeout=0) == ["DELIVER", "k", "v"] or (
                await n.recv_async(timeout=BOUND) == ["DELIVER", "k", "v"]
            )

    run(main())


def test_deliveries_async() -> None:
    async def main() -> None:
        with zgossip.Node("base") as base, zgossip.Node("alpha") as alpha:
            endpoint = f"inproc://{unique('base')}"
            base.bind(endpoint)
            alpha.connect(endpoint)
            for i in range(5):
                alpha.publish(f"k{i}", f"v{i}")
            got = []
            async for key, value in base.deliveries_async(timeout=0.5):
                got.append((key, value))
            assert got == [(f"k{i}", f"v{i}") for i in range(5)]

    run(main())


def test_concurrent_waiters_on_one_node() -> None:
    async def main() -> None:
        with zgossip.Node("n") as n:
            first = asyncio.ensure_future(n.recv_async(timeout=BOUND))
            second = asyncio.ensure_future(n.recv_async(timeout=BOUND))
            await asyncio.sleep(0.05)
            n.publish("a", "1")
            n.publish("b", "2")
            results = await asyncio.gather(first, second)
            assert sorted(r for r in results if r is not None) == [["DELIVER", "a", "1"], ["DELIVER", "b", "2"]]
            # Nobody waits any more: the reader is gone.
            assert not n.__dict__.get("_async_waiters")

    run(main())


def test_cancelled_wait_removes_reader() -> None:
    async def main() -> None:
        with zgossip.Node("n") as n:
            task = asyncio.ensure_future(n.recv_async())
            await asyncio.sleep(0.05)
            assert n.__dict__.get("_async_waiters")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not n.__dict__.get("_async_waiters")
            # The node still works afterwards.
            n.publish("k", "v")
            assert await n.recv_async(timeout=BOUND) == ["DELIVER", "k", "v"]

    run(main())


def test_close_wakes_async_waiters() -> None:
    async def main() -> None:
        n = zgossip.Node("n")
        loop = asyncio.get_running_loop()
        loop.call_later(0.1, n.close)
        with pytest.raises(zgossip.TerminatedError):
            await n.recv_async()
        n2 = zgossip.Node("n2")
        loop.call_later(0.1, n2.close)
        got = [kv async for kv in n2.deliveries_async()]
        assert got == []

    run(main())
