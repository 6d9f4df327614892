"""Key rotation through the Python binding: a node holds a second key,
switches to it and retires the first; a client of either key gets in
during the switch, and bad keyring commands raise with a message."""

from __future__ import annotations

import pytest

import zgossip
from conftest import wait_until


def test_rotate_a_key_on_a_running_node() -> None:
    old_public, old_secret = zgossip.keypair()
    new_public, new_secret = zgossip.keypair()
    with zgossip.Node("srv") as srv, zgossip.Node("a") as a, zgossip.Node("b") as b:
        assert srv.keyring() == []
        srv.send("KEYRING", "ADD", old_secret)
        port = srv.bind("tcp://127.0.0.1:*")
        ep = f"tcp://127.0.0.1:{port}"
        srv.send("KEYRING", "ADD", new_secret)
        assert [(k, p) for k, p, _ in srv.keyring()] == [
            (old_public, True),
            (new_public, False),
        ]
        srv.publish("k", "v")
        # One client of the old key, one of the new: both get in.
        a.send("CONNECT", ep, old_public)
        b.send("CONNECT", ep, new_public, old_public)
        assert wait_until(lambda: a.get("k") == "v" and b.get("k") == "v", 10)
        srv.send("KEYRING", "USE", new_public)
        srv.send("KEYRING", "REMOVE", old_public)
        assert [(k, p) for k, p, _ in srv.keyring()] == [(new_public, True)]
        assert srv.stats()["curve-handshakes"] == 2
        assert srv.stats()["curve-handshakes-secondary"] == 1


def test_bad_keyring_commands_raise_with_a_message() -> None:
    public, secret = zgossip.keypair()
    with zgossip.Node("bad") as node:
        with pytest.raises(zgossip.CommandError, match="40-character Z85"):
            node.send("KEYRING", "ADD", "not-a-key")
        node.send("KEYRING", "ADD", secret)
        with pytest.raises(zgossip.CommandError, match="only key"):
            node.send("KEYRING", "REMOVE", public)
        with pytest.raises(zgossip.CommandError, match="not held"):
            node.send("KEYRING", "USE", zgossip.keypair()[0])
