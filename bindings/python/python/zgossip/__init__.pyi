# Hand-written stub for the zgossip package (checked with
# `python -m mypy.stubtest zgossip`).
import os
from types import TracebackType
from typing import AsyncIterator, Dict, Iterator, List, Optional, Type, Union, final

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

__version__: str

class Error(Exception):
    """Base class of every error the zgossip node reports."""

class CommandError(Error, ValueError):
    """A command was refused (bad name, arguments, endpoint, key, ttl)."""

class IoError(Error, OSError):
    """An operating-system operation failed; ``errno`` is set when known."""

class ConfigError(Error):
    """A configuration file or path could not be read, written or applied."""

class TerminatedError(Error):
    """The node has stopped."""

@final
class Member:
    """One member of the network, as ``Node.members()`` lists it."""

    def __new__(cls, id: int, name: str, state: str, endpoint: str) -> "Member": ...
    @property
    def id(self) -> int:
        """The member's node id (16 hex digits in ``MEMBERS``/``MEMBER``)."""
    @property
    def name(self) -> str:
        """The name the member's node was created with."""
    @property
    def state(self) -> str:
        """``"alive"``, ``"suspect"``, ``"failed"`` or ``"left"``."""
    @property
    def endpoint(self) -> str:
        """Where others dial the member; ``""`` if it does not listen."""
    def __getnewargs__(self) -> tuple[int, str, str, str]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

class Node:
    """A gossip node, on an event-loop thread shared by the nodes of the process."""

    def __new__(cls, name: str = "zgossip") -> "Node": ...
    @property
    def name(self) -> str:
        """The name given when the node was created."""
    @property
    def closed(self) -> bool:
        """True once ``close()`` has been called."""
    @property
    def pending(self) -> int:
        """Number of replies and deliveries waiting to be received."""
    def close(self) -> None:
        """Stops the node and waits until it has ended; idempotent."""
    def __enter__(self) -> "Node": ...
    def __exit__(
        self,
        *exc_info: Union[Type[BaseException], BaseException, TracebackType, None],
    ) -> None: ...
    def send(self, *frames: str) -> None:
        """Sends a raw command, one string per frame."""
    def recv(self, timeout: Optional[float] = None) -> Optional[List[str]]:
        """Next reply or delivery; ``None`` when ``timeout`` seconds pass."""
    def fileno(self) -> int:
        """A descriptor readable while a reply or delivery waits."""
    def bind(self, endpoint: str) -> Optional[int]:
        """Binds an endpoint; returns the TCP port, ``None`` for ipc/inproc."""
    def connect(self, endpoint: str) -> None:
        """Connects to a remote node's endpoint."""
    def join(self, endpoint: str) -> None:
        """Joins the overlay through a member at a ``tcp://`` endpoint, or
        through every address of a DNS name, ``dns:NAME:PORT`` (resolved
        again every ``overlay/dns-interval``)."""
    def publish(self, key: str, value: str, ttl: Optional[float] = None) -> None:
        """Publishes a tuple; ``ttl`` in seconds makes it expire."""
    def publish_ephemeral(self, key: str, value: str, ttl: Optional[float] = None) -> None:
        """Publishes a tuple deleted everywhere when this node stops or fails."""
    def status(self) -> int:
        """The number of tuples held."""
    def port(self) -> int:
        """The port of the last TCP bind, 0 if none."""
    def unpublish(self, key: str) -> None:
        """Deletes a key on every node of the network."""
    def get(self, key: str) -> Optional[str]:
        """The value of ``key`` if the node holds it, else ``None``."""
    def keys(self, prefix: str = "") -> List[str]:
        """The keys held that start with ``prefix``."""
    def members(self) -> List[Member]:
        """The members of the network known here, this node first."""
    def stats(self) -> Dict[str, int]:
        """The node's counters by name."""
    def keyring(self) -> List[tuple[str, bool, int]]:
        """The CURVE keys held, the primary first: ``(public, primary,
        handshakes)``."""
    def metrics(self) -> str:
        """The node's metrics in the Prometheus text exposition format
        (version 0.0.4; docs/metrics.md lists them)."""
    def verbose(self) -> None:
        """Traces protocol events on standard error."""
    def set(self, path: str, value: Union[str, int]) -> None:
        """Sets a configuration path."""
    def load(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Loads a ZPL configuration file."""
    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Saves the configuration tree as ZPL."""
    def deliveries(self, timeout: Optional[float] = None) -> Iterator[tuple[str, str]]:
        """Iterates over ``(key, value)`` deliveries."""
    async def recv_async(self, timeout: Optional[float] = None) -> Optional[List[str]]:
        """``recv()`` for asyncio."""
    def deliveries_async(
        self, timeout: Optional[float] = None
    ) -> AsyncIterator[tuple[str, str]]:
        """``deliveries()`` for asyncio."""

def keypair() -> tuple[str, str]:
    """Generates a CURVE key pair: ``(public, secret)`` in Z85."""
