"""Persistence through the command (docs/persistence.md): a Node with a data
directory survives being closed and reopened."""

from __future__ import annotations

import pathlib

import pytest

import zgossip
from conftest import unique


def test_a_node_with_a_data_directory_survives_close_and_reopen(tmp_path: pathlib.Path) -> None:
    data = str(tmp_path / "data")
    with zgossip.Node(unique("p")) as n:
        n.set("store/fsync", "always")
        n.set("store/path", data)
        n.publish("kept", "1")
        n.publish("deleted", "2")
        n.unpublish("deleted")
        assert n.stats()["store-fsyncs"] >= 1
    with zgossip.Node(unique("p")) as n:
        n.set("store/path", data)
        assert n.get("kept") == "1"
        assert n.get("deleted") is None
        assert n.status() == 1
        stats = n.stats()
        assert stats["store-loaded"] == 3
        assert stats["tombstones"] == 1


def test_store_settings_are_refused_with_config_errors(tmp_path: pathlib.Path) -> None:
    data = str(tmp_path / "data")
    with zgossip.Node(unique("p")) as a, zgossip.Node(unique("p")) as b:
        with pytest.raises(zgossip.ConfigError, match="between 1 and 60000"):
            a.set("store/fsync", 0)
        a.set("store/path", data)
        with pytest.raises(zgossip.ConfigError, match="in use by another node"):
            b.set("store/path", data)
        with pytest.raises(zgossip.ConfigError, match="cannot change while it runs"):
            a.set("store/path", str(tmp_path / "other"))
