"""The Node API: errors, lifecycle, receiving, descriptors, threads, signals,
configuration."""

from __future__ import annotations

import errno
import os
import pathlib
import select
import selectors
import signal
import subprocess
import sys
import threading
import time

import pytest

import zgossip
from conftest import BOUND, unique, wait_status, wait_until


@pytest.fixture
def node():
    n = zgossip.Node(unique("node"))
    yield n
    n.close()


# ---------------------------------------------------------------- exceptions


def test_exception_hierarchy() -> None:
    for cls in (zgossip.CommandError, zgossip.IoError, zgossip.ConfigError, zgossip.TerminatedError):
        assert issubclass(cls, zgossip.Error)
        assert cls.__module__ == "zgossip"
    assert issubclass(zgossip.Error, Exception)
    assert issubclass(zgossip.CommandError, ValueError)
    assert issubclass(zgossip.IoError, OSError)


@pytest.mark.parametrize(
    "frames, words",
    [
        (("BOGUS",), "unknown command 'BOGUS'"),
        ((), "empty command"),
        (("PUBLISH", "k"), "PUBLISH takes 2 arguments"),
        (("STATUS", "extra"), "STATUS takes 0 arguments"),
        (("PUBLISH", "k" * 256, "v"), "255"),
        (("PUBLISH", "k\0", "v"), "NUL"),
        (("BIND", "bogus://x"), "bogus"),
        (("CONNECT", "tcp://127.0.0.1"), "expected host:port"),
        (("status",), "unknown command"),
    ],
)
def test_refused_commands_raise_command_error(node, frames, words) -> None:
    with pytest.raises(zgossip.CommandError) as info:
        node.send(*frames)
    assert words.lower() in str(info.value).lower()
    # Also a ValueError, as Python code expects for a bad argument.
    with pytest.raises(ValueError):
        node.send(*frames)


def test_typed_methods_refuse_bad_arguments(node) -> None:
    with pytest.raises(zgossip.CommandError, match="255"):
        node.publish("k" * 256, "v")
    with pytest.raises(zgossip.CommandError):
        node.bind("nonsense")
    with pytest.raises(zgossip.CommandError):
        node.connect("tcp://")
    for ttl in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(zgossip.CommandError, match="ttl"):
            node.publish("k", "v", ttl=ttl)
    with pytest.raises(TypeError):
        node.send("PUBLISH", "k", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        node.set("server/timeout", 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        node.recv(timeout=-1)
    with pytest.raises(ValueError):
        node.recv(timeout=float("nan"))


def test_busy_port_raises_io_error_with_errno(node) -> None:
    port = node.bind("tcp://127.0.0.1:*")
    assert isinstance(port, int) and port > 0
    with zgossip.Node("other") as other:
        with pytest.raises(zgossip.IoError) as info:
            other.bind(f"tcp://127.0.0.1:{port}")
    assert isinstance(info.value, OSError)
    assert info.value.errno == errno.EADDRINUSE
    assert str(port) in str(info.value)


def test_bad_configuration_raises_config_error(node) -> None:
    with pytest.raises(zgossip.ConfigError, match="server/timeout"):
        node.set("server/timeout", "soon")
    with pytest.raises(zgossip.ConfigError):
        node.set("bad//path", "1")


def test_bad_io_cpus_raises_config_error_at_node_creation() -> None:
    # Read once per process, at the first node: a process of its own.
    code = (
        "import zgossip\n"
        "try:\n"
        "    zgossip.Node('cpus')\n"
        "except zgossip.ConfigError as e:\n"
        "    print('refused:', e)\n"
    )
    env = dict(os.environ, ZGOSSIP_IO_CPUS="1,x")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "refused:" in out.stdout and "ZGOSSIP_IO_CPUS" in out.stdout, out.stdout


def test_closed_node_raises_terminated_error() -> None:
    n = zgossip.Node("short-lived")
    n.close()
    assert n.closed
    n.close()  # idempotent
    for call in (n.status, n.port, n.verbose, lambda: n.send("STATUS"), lambda: n.bind("inproc://x")):
        with pytest.raises(zgossip.TerminatedError):
            call()
    with pytest.raises(zgossip.TerminatedError):
        n.recv()
    with pytest.raises(zgossip.TerminatedError):
        n.recv(timeout=0)


# ---------------------------------------------------------------- lifecycle


def test_context_manager_closes() -> None:
    with zgossip.Node("ctx") as n:
        assert isinstance(n, zgossip.Node)
        assert n.name == "ctx"
        assert not n.closed
        assert "ctx" in repr(n)
    assert n.closed
    assert "closed" in repr(n)


def test_context_manager_closes_on_exception() -> None:
    with pytest.raises(RuntimeError):
        with zgossip.Node("ctx") as n:
            raise RuntimeError("boom")
    assert n.closed


def test_many_nodes_start_and_stop() -> None:
    nodes = [zgossip.Node(f"n{i}") for i in range(20)]
    for n in nodes:
        n.close()
    # Nodes that are only garbage-collected stop too.
    for i in range(20):
        zgossip.Node(f"gc{i}").publish("k", "v")


def test_queued_messages_survive_close() -> None:
    n = zgossip.Node("q")
    n.publish("k", "v")
    assert wait_until(lambda: n.pending == 1)
    n.close()
    assert n.recv(timeout=BOUND) == ["DELIVER", "k", "v"]
    with pytest.raises(zgossip.TerminatedError):
        n.recv(timeout=BOUND)


# ---------------------------------------------------------------- commands


def test_typed_commands(node) -> None:
    assert node.port() == 0
    assert node.bind(f"inproc://{unique('x')}") is None
    assert node.port() == 0
    port = node.bind("tcp://127.0.0.1:*")
    assert port is not None and node.port() == port
    node.verbose()
    node.set("server/timeout", 250)
    node.set("server/timeout", "300")
    node.set("server/verbose", False)
    assert node.status() == 0
    node.publish("a", "1")
    node.publish("b", "2")
    assert node.status() == 2
    # The typed calls took nothing off the reply pipe.
    assert node.recv(timeout=BOUND) == ["DELIVER", "a", "1"]
    assert node.recv(timeout=BOUND) == ["DELIVER", "b", "2"]
    assert node.recv(timeout=0) is None


def test_raw_send_and_recv(node) -> None:
    node.send("BIND", "tcp://127.0.0.1:*")
    node.send("PORT")
    reply = node.recv(timeout=BOUND)
    assert reply is not None and reply[0] == "PORT" and int(reply[1]) == node.port()
    node.send("PUBLISH", "k", "v")
    node.send("STATUS")
    assert node.recv(timeout=BOUND) == ["DELIVER", "k", "v"]
    assert node.recv(timeout=BOUND) == ["STATUS", "1"]


def test_recv_timeout_returns_none(node) -> None:
    assert node.recv(0) is None
    start = time.monotonic()
    assert node.recv(timeout=0.25) is None
    elapsed = time.monotonic() - start
    assert 0.2 <= elapsed < BOUND


def test_publish_with_ttl_expires(node) -> None:
    node.publish("short", "lived", ttl=0.2)
    node.publish("long", "lived")
    assert node.status() == 2
    assert wait_until(lambda: node.status() == 1)
    msgs = [node.recv(timeout=BOUND) for _ in range(3)]
    assert ["DELIVER", "short", "lived"] in msgs
    assert ["EXPIRE", "short"] in msgs


def test_deliveries_iterator(node) -> None:
    for i in range(3):
        node.publish(f"k{i}", f"v{i}")
    assert list(node.deliveries(timeout=0.3)) == [("k0", "v0"), ("k1", "v1"), ("k2", "v2")]
    # Other replies are skipped.
    node.publish("k3", "v3")
    node.send("STATUS")
    node.publish("k4", "v4")
    assert list(node.deliveries(timeout=0.3)) == [("k3", "v3"), ("k4", "v4")]


def test_deliveries_iterator_ends_when_node_closes(node) -> None:
    timer = threading.Timer(0.2, node.close)
    timer.start()
    try:
        start = time.monotonic()
        assert list(node.deliveries()) == []
        assert time.monotonic() - start < BOUND
    finally:
        timer.cancel()


def test_two_nodes_over_tcp(node) -> None:
    port = node.bind("tcp://127.0.0.1:*")
    with zgossip.Node("leaf") as leaf:
        leaf.connect(f"tcp://127.0.0.1:{port}")
        leaf.publish("service/db", "tcp://10.0.0.5:5432")
        node.publish("service/web", "tcp://10.0.0.6:80")
        got = {}
        for key, value in leaf.deliveries(timeout=BOUND):
            got[key] = value
            if len(got) == 2:
                break
        assert got == {"service/db": "tcp://10.0.0.5:5432", "service/web": "tcp://10.0.0.6:80"}
        assert wait_status(node, 2) == 2


def test_nodes_that_join_keep_a_few_links_and_share_every_write() -> None:
    nodes = [zgossip.Node(f"j{i}") for i in range(8)]
    try:
        ports = [n.bind("tcp://127.0.0.1:*") for n in nodes]
        for i, n in enumerate(nodes[1:], start=1):
            n.join(f"tcp://127.0.0.1:{ports[i // 2]}")
        for i, n in enumerate(nodes):
            n.publish(f"k{i}", "v")
        for n in nodes:
            assert wait_status(n, len(nodes)) == len(nodes)
        for n in nodes:
            stats = n.stats()
            assert 1 <= stats["overlay-active"] <= 5
        with pytest.raises(zgossip.CommandError, match="not a tcp:// endpoint"):
            nodes[0].join("ipc:///tmp/nowhere")
        with pytest.raises(zgossip.CommandError, match="bad DNS seed .*missing :PORT"):
            nodes[0].join("dns:seeds.example")
        # A name the resolver may not know: taken, resolved off the loop.
        nodes[0].join("dns:localhost:1")
        assert nodes[0].stats()["dns-seeds"] == 1
    finally:
        for n in nodes:
            n.close()


# ---------------------------------------------------------------- descriptors


def test_fileno_with_selectors(node) -> None:
    with selectors.DefaultSelector() as sel:
        sel.register(node, selectors.EVENT_READ)
        assert sel.select(timeout=0) == []
        node.publish("k", "v")
        events = sel.select(timeout=BOUND)
        assert [key.fileobj for key, _ in events] == [node]
        # Level-triggered: readable until the message is taken.
        assert sel.select(timeout=0) != []
        assert node.recv(timeout=0) == ["DELIVER", "k", "v"]
        assert sel.select(timeout=0) == []
        sel.unregister(node)


def test_fileno_with_select(node) -> None:
    assert isinstance(node.fileno(), int) and node.fileno() >= 0
    assert select.select([node], [], [], 0)[0] == []
    node.publish("k", "v")
    assert select.select([node], [], [], BOUND)[0] == [node]
    node.recv(0)
    assert select.select([node], [], [], 0)[0] == []


def test_fileno_readable_after_close() -> None:
    n = zgossip.Node("fd")
    fd = n.fileno()
    n.close()
    assert n.fileno() == fd
    assert select.select([fd], [], [], BOUND)[0] == [fd]


# ---------------------------------------------------------------- threads, signals


def test_recv_releases_the_gil(node) -> None:
    # Another Python thread must run while recv() waits: it is the one
    # that produces the message recv() waits for.
    ticks = []

    def worker() -> None:
        for _ in range(10):
            ticks.append(time.monotonic())
            time.sleep(0.01)
        node.publish("from", "thread")

    t = threading.Thread(target=worker)
    start = time.monotonic()
    t.start()
    msg = node.recv(timeout=BOUND)
    t.join(BOUND)
    assert msg == ["DELIVER", "from", "thread"]
    assert len(ticks) == 10 and time.monotonic() - start < BOUND


def test_concurrent_calls_from_threads(node) -> None:
    errors = []

    def publisher(i: int) -> None:
        try:
            for j in range(50):
                node.publish(f"t{i}/{j}", "v")
                node.status()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=publisher, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND)
    assert errors == []
    assert wait_status(node, 200) == 200
    assert len(list(node.deliveries(timeout=0.3))) == 200


class _Interrupted(Exception):
    pass


def test_signal_handler_interrupts_recv(node) -> None:
    def handler(signum, frame):
        raise _Interrupted()

    previous = signal.signal(signal.SIGUSR1, handler)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1))
    try:
        timer.start()
        start = time.monotonic()
        with pytest.raises(_Interrupted):
            node.recv()  # no timeout: only the signal ends it
        assert time.monotonic() - start < 2.0
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)


def test_ctrl_c_interrupts_recv(node) -> None:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    try:
        timer.start()
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            node.recv(timeout=10)
        assert time.monotonic() - start < 2.0
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    # The node is still usable.
    node.publish("k", "v")
    assert node.recv(timeout=BOUND) == ["DELIVER", "k", "v"]


# ---------------------------------------------------------------- configuration (LOAD/SAVE)


@pytest.mark.config
def test_save_then_load_round_trips(node, tmp_path: pathlib.Path) -> None:
    node.set("server/timeout", 250)
    node.set("remote/ping-interval", "100")
    first = tmp_path / "first.cfg"
    node.save(first)
    text = first.read_text()
    assert "server" in text and "250" in text and "ping-interval" in text
    # A bare section name reads back with the value "" (as CZMQ's zconfig),
    # so the text is a fixed point from the second save on.
    with zgossip.Node("copy") as copy, zgossip.Node("copy2") as copy2:
        copy.load(str(first))
        second = tmp_path / "second.cfg"
        copy.save(second)
        assert 'timeout = "250"' in second.read_text()
        assert 'ping-interval = "100"' in second.read_text()
        copy2.load(second)
        third = tmp_path / "third.cfg"
        copy2.save(third)
        assert third.read_text() == second.read_text()


@pytest.mark.config
def test_load_binds_configured_endpoint(node, tmp_path: pathlib.Path) -> None:
    cfg = tmp_path / "node.cfg"
    cfg.write_text(
        "server\n"
        "    timeout = 500\n"
        "zgossip\n"
        "    bind\n"
        "        endpoint = tcp://127.0.0.1:*\n"
    )
    node.load(cfg)
    port = node.port()
    assert port > 0
    with zgossip.Node("peer") as peer:
        peer.connect(f"tcp://127.0.0.1:{port}")
        peer.publish("via", "config")
        assert wait_status(node, 1) == 1


@pytest.mark.config
def test_load_errors_raise_config_error(node, tmp_path: pathlib.Path) -> None:
    with pytest.raises(zgossip.ConfigError):
        node.load(tmp_path / "missing.cfg")
    bad = tmp_path / "bad.cfg"
    bad.write_text("server\n   timeout = 1\n")  # 3 spaces: not ZPL
    with pytest.raises(zgossip.ConfigError):
        node.load(bad)
    with pytest.raises(zgossip.ConfigError):
        node.save(tmp_path / "no" / "such" / "dir" / "x.cfg")


def test_get_keys_unpublish_and_stats() -> None:
    with zgossip.Node("a") as a, zgossip.Node("b") as b:
        port = a.bind("tcp://127.0.0.1:*")
        b.connect(f"tcp://127.0.0.1:{port}")
        a.publish("svc/db", "10.0.0.5")
        a.publish("svc/web", "10.0.0.6")
        a.publish("other", "x")
        deadline = time.monotonic() + 5
        while b.status() < 3:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert b.get("svc/db") == "10.0.0.5"
        assert b.get("missing") is None
        assert b.keys("svc/") == ["svc/db", "svc/web"]
        assert len(b.keys()) == 3
        b.unpublish("svc/db")
        while a.get("svc/db") is not None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert a.stats()["tombstones"] == 1
        assert a.stats()["tuples"] == 2


def test_curve_network_with_generated_keys() -> None:
    server_public, server_secret = zgossip.keypair()
    client_public, client_secret = zgossip.keypair()
    assert len(server_public) == 40 and server_public != client_public
    with zgossip.Node("server") as server, zgossip.Node("client") as client:
        server.send("SET SECRETKEY", server_secret)
        port = server.bind("tcp://127.0.0.1:*")
        client.send("SET SECRETKEY", client_secret)
        client.send("CONNECT", f"tcp://127.0.0.1:{port}", server_public)
        client.publish("secret/k", "v")
        deadline = time.monotonic() + 5
        while server.get("secret/k") != "v":
            assert time.monotonic() < deadline
            time.sleep(0.02)
