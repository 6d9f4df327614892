"""The node's log lines to the standard ``logging`` module.

The library writes its lines (the protocol trace, warnings, errors) on its
own event-loop thread, into a bounded queue of the native module (see
``src/logging.rs`` for why it never calls Python there). One daemon thread,
started with the first ``Node``, takes them out and logs them under the
logger ``zgossip``: ``zgossip.engine``, ``zgossip.reactor``,
``zgossip.discovery``, ``zgossip.store`` (the part of the library that
wrote the line). The levels are ``logging``'s; the per-message trace is at
level 5, below ``DEBUG``.

The native side formats only what the ``zgossip`` loggers would log: the
thread reads their effective level when it starts and about every quarter
of a second, and tells the native side.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import threading
import time
from typing import Any, Dict, Optional

# The native module has no stub of its own (the package's __init__.pyi
# describes what it exports); its four log_* calls are used here only.
_zgossip: Any = importlib.import_module("zgossip._zgossip")

LOGGER = "zgossip"
_PARTS = ("engine", "reactor", "discovery", "store")
# How often the thread reads the loggers' levels again (seconds).
_LEVEL_EVERY = 0.25

_lock = threading.Lock()
_started = False
_thread: Optional[threading.Thread] = None
_stop = threading.Event()


def _level() -> int:
    """The most detailed level any ``zgossip`` logger would log."""
    names = [LOGGER] + [f"{LOGGER}.{p}" for p in _PARTS]
    return min(logging.getLogger(n).getEffectiveLevel() for n in names)


def _logger_name(target: str) -> str:
    """``zgossip::engine`` -> ``zgossip.engine``; a target of another
    library (``mdns_sd``) goes under ``zgossip`` too."""
    name = target.replace("::", ".")
    return name if name == LOGGER or name.startswith(LOGGER + ".") else f"{LOGGER}.{name}"


def _pump() -> None:
    loggers: Dict[str, logging.Logger] = {}
    checked = time.monotonic()
    dropped = 0
    while not _stop.is_set():
        line = _zgossip.log_next(_LEVEL_EVERY)
        if time.monotonic() - checked >= _LEVEL_EVERY:
            _zgossip.log_set_level(_level())
            checked = time.monotonic()
            now_dropped = _zgossip.log_dropped()
            if now_dropped > dropped:
                logging.getLogger(LOGGER).warning(
                    "%d log lines dropped: the queue was full", now_dropped - dropped
                )
                dropped = now_dropped
        if line is None:
            continue
        level, target, message = line
        logger = loggers.get(target)
        if logger is None:
            logger = loggers[target] = logging.getLogger(_logger_name(target))
        logger.log(level, "%s", message)


def start() -> None:
    """Starts the thread once (at the first ``Node``), and tells the native
    side the loggers' level now."""
    global _started, _thread
    with _lock:
        if not _started:
            _started = True
            # False: another logger of Rust's log facade runs in this
            # process (another extension installed one); the lines go
            # there, and its level is not ours to set.
            if _zgossip.log_install():
                _thread = threading.Thread(target=_pump, name="zgossip-log", daemon=True)
                _thread.start()
                atexit.register(_shutdown)
        if _thread is not None:
            _zgossip.log_set_level(_level())


def _shutdown() -> None:
    """Stops the thread before the interpreter goes away."""
    _stop.set()
    if _thread is not None:
        _thread.join(timeout=2 * _LEVEL_EVERY + 1)
