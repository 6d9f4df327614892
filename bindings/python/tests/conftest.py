"""Shared helpers for the zgossip Python tests. Every wait is bounded."""

from __future__ import annotations

import os
import time
import uuid
from typing import Callable

import pytest

import zgossip

# Upper bound for anything that should happen "soon" on a slow machine.
BOUND = 5.0


def unique(prefix: str) -> str:
    """A name no other test of this process uses (inproc names are global)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_until(pred: Callable[[], bool], timeout: float = BOUND, step: float = 0.02) -> bool:
    """Polls ``pred`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


def wait_status(node: zgossip.Node, n: int, timeout: float = BOUND) -> int:
    """Waits until ``node.status() >= n``; returns the last count seen."""
    seen = [node.status()]

    def ok() -> bool:
        seen[0] = node.status()
        return seen[0] >= n

    wait_until(ok, timeout)
    return seen[0]


def require(condition: bool, reason: str) -> None:
    """Skips the test when a system dependency is missing, except under CI
    (env CI set), where a missing dependency is a failure."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: a missing dependency fails)")
    pytest.skip(reason)
