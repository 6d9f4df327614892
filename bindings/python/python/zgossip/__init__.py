"""Gossip of key/value tuples, wire-compatible with CZMQ 4.2.1 ``zgossip``.

Nodes publish key/value tuples that spread through a loosely connected
network until every node holds them. A node is a Rust event loop (on a
thread shared by the nodes of the process); this package drives it::

    import zgossip

    with zgossip.Node("hub") as hub, zgossip.Node("leaf") as leaf:
        port = hub.bind("tcp://127.0.0.1:*")
        leaf.connect(f"tcp://127.0.0.1:{port}")
        leaf.publish("service/db", "tcp://10.0.0.5:5432")
        for key, value in hub.deliveries(timeout=5):
            print(key, value)
            break

Errors raise :class:`Error` subclasses carrying the node's message:
:class:`CommandError` (also a ``ValueError``), :class:`IoError` (also an
``OSError``, with ``errno``), :class:`ConfigError` and
:class:`TerminatedError`. A timeout is not an error: ``recv()`` returns
``None``, and the delivery iterators end.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Dict, Iterator, List, Optional, Set

__all__ = [
    "Node",
    "Member",
    "Error",
    "CommandError",
    "IoError",
    "ConfigError",
    "TerminatedError",
    "keypair",
    "__version__",
]

__version__ = "0.1.0"


class Error(Exception):
    """Base class of every error the zgossip node reports."""


class CommandError(Error, ValueError):
    """A command was refused: unknown name, wrong number of arguments, bad
    endpoint, key over 255 bytes, NUL character, bad ttl, ..."""


class IoError(Error, OSError):
    """An operating-system operation failed (binding a busy port, starting
    the node thread, ...). ``errno`` is set when the system gave one."""


class ConfigError(Error):
    """A configuration file or path could not be read, written or applied."""


class TerminatedError(Error):
    """The node has stopped (``close()`` or ``$TERM``): nothing more can be
    sent, and nothing is left to receive."""


# Imported after the exception classes: the native module looks them up
# here when it first raises one.
from ._zgossip import Member  # noqa: E402
from ._zgossip import NodeCore as _NodeCore  # noqa: E402
from ._zgossip import keypair  # noqa: E402


def _check_timeout(timeout: Optional[float]) -> Optional[float]:
    if timeout is None:
        return None
    t = float(timeout)
    if not (t >= 0.0 and t != float("inf")):
        raise ValueError(
            f"timeout must be None or a finite number of seconds >= 0, got {timeout!r}"
        )
    return t


def _wake(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_result(None)


class Node(_NodeCore):
    """A gossip node, on an event-loop thread shared by the process's nodes.

    ``Node(name)`` starts it; ``close()`` (or leaving a ``with`` block)
    stops it. Typed methods cover every command (``bind``, ``connect``,
    ``publish``, ``publish_ephemeral``, ``status``, ``port``, ``set``, ``load``, ``save``,
    ``verbose``); ``send(*frames)`` and ``recv(timeout)`` speak the raw
    string protocol of CZMQ's actor. Deliveries of new tuples (``DELIVER
    key value``) and replies to raw commands share one queue, in the order
    the node produced them; the typed methods never take anything off it.

    ``fileno()`` is readable while something waits in that queue, so a node
    works with ``select``/``selectors``; ``recv_async()`` and
    ``deliveries_async()`` build on it for asyncio.

    A node may be used from several threads at once. Blocking calls release
    the GIL and honour Ctrl-C.
    """

    def __enter__(self) -> "Node":
        """Returns the node itself; leaving the block calls ``close()``."""
        return self

    def __exit__(self, *exc_info: Any) -> None:
        """Closes the node."""
        self.close()

    def deliveries(self, timeout: Optional[float] = None) -> Iterator[tuple[str, str]]:
        """Iterates over deliveries as ``(key, value)`` pairs.

        ``timeout`` bounds the wait for each next delivery, in seconds
        (``None``: wait as long as it takes); the iteration ends when none
        comes in time, or when the node is closed. Replies to raw commands
        (``PORT``, ``STATUS``) met on the way are consumed and skipped: use
        ``recv()`` when you mix both.
        """
        timeout = _check_timeout(timeout)
        while True:
            try:
                msg = self.recv(timeout)
            except TerminatedError:
                return
            if msg is None:
                return
            if len(msg) == 3 and msg[0] == "DELIVER":
                yield (msg[1], msg[2])

    # ------------------------------------------------------------ asyncio

    async def _readable(self, timeout: Optional[float]) -> None:
        """Waits until ``fileno()`` is readable or ``timeout`` passes.

        Several coroutines of one loop may wait at once: one reader
        callback per loop wakes them all, and is removed as soon as nobody
        waits (the descriptor is level-triggered)."""
        loop = asyncio.get_running_loop()
        fd = self.fileno()
        registry: Dict[asyncio.AbstractEventLoop, Set["asyncio.Future[None]"]]
        registry = self.__dict__.setdefault("_async_waiters", {})
        waiters = registry.get(loop)
        if waiters is None:
            waiters = set()
            registry[loop] = waiters

            def on_readable() -> None:
                for f in list(waiters):
                    _wake(f)
                waiters.clear()
                loop.remove_reader(fd)
                registry.pop(loop, None)

            loop.add_reader(fd, on_readable)
        fut: asyncio.Future[None] = loop.create_future()
        waiters.add(fut)
        timer = loop.call_later(timeout, _wake, fut) if timeout is not None else None
        try:
            await fut
        finally:
            if timer is not None:
                timer.cancel()
            waiters.discard(fut)
            if not waiters and registry.get(loop) is waiters:
                loop.remove_reader(fd)
                registry.pop(loop, None)

    async def recv_async(self, timeout: Optional[float] = None) -> Optional[List[str]]:
        """Like ``recv()``, for asyncio: awaits the next reply or delivery
        without blocking the event loop (it watches ``fileno()`` with
        ``loop.add_reader``). Returns ``None`` when ``timeout`` seconds pass
        first; raises ``TerminatedError`` once the node has stopped and
        nothing is left."""
        timeout = _check_timeout(timeout)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            msg = self.recv(0)
            if msg is not None:
                return msg
            remaining = None
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
            await self._readable(remaining)

    async def deliveries_async(
        self, timeout: Optional[float] = None
    ) -> AsyncIterator[tuple[str, str]]:
        """Like ``deliveries()``, for asyncio::

            async for key, value in node.deliveries_async(timeout=5):
                ...

        Ends when no delivery comes within ``timeout`` seconds of the
        previous one, or when the node is closed."""
        timeout = _check_timeout(timeout)
        while True:
            try:
                msg = await self.recv_async(timeout)
            except TerminatedError:
                return
            if msg is None:
                return
            if len(msg) == 3 and msg[0] == "DELIVER":
                yield (msg[1], msg[2])
