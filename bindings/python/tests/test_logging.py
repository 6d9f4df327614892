"""The node's log lines reach the standard ``logging`` module, under the
logger ``zgossip``, with ``logging``'s levels."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

import zgossip
from conftest import unique, wait_until


def _seen(caplog: pytest.LogCaptureFixture, name: str, level: int, start: str) -> bool:
    return any(
        r.name == name and r.levelno == level and r.getMessage().startswith(start)
        for r in caplog.records
    )


def test_trace_reaches_logging_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="zgossip")
    hub_name, leaf_name = unique("log-hub"), unique("log-leaf")
    with zgossip.Node(hub_name) as hub, zgossip.Node(leaf_name) as leaf:
        port = hub.bind("tcp://127.0.0.1:*")
        leaf.connect(f"tcp://127.0.0.1:{port}")
        # No verbose(): the logger's level alone asks for the trace.
        assert wait_until(
            lambda: _seen(caplog, "zgossip.reactor", logging.DEBUG, f"{hub_name}: bound ")
        ), [r.getMessage() for r in caplog.records]
        assert wait_until(
            lambda: _seen(caplog, "zgossip.engine", logging.DEBUG, f"{leaf_name}: connecting to ")
        )
    assert all(r.name.startswith("zgossip") for r in caplog.records if "log-" in r.getMessage())


def test_warning_reaches_logging(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.WARNING, logger="zgossip")
    name = unique("log-warn")
    cfg = tmp_path / "node.cfg"
    cfg.write_text("server\n    timeout = 2000\n")
    with zgossip.Node(name) as node:
        node.load(cfg)
        cfg.write_text("server\n    timeout = nonsense\n")
        later = time.time() + 2
        os.utime(cfg, (later, later))  # a new modification time
        # The file is checked about once a second; the reload fails.
        assert wait_until(
            lambda: _seen(caplog, "zgossip.reactor", logging.WARNING, f"{name}: "), timeout=10
        ), [r.getMessage() for r in caplog.records]
        assert any("server/timeout" in r.getMessage() for r in caplog.records)
        # At WARNING, the trace is not even produced.
        node.bind("tcp://127.0.0.1:*")
    assert not any(r.levelno < logging.WARNING for r in caplog.records)
