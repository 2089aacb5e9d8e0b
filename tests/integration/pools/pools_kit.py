"""Helpers of the pool suites: a bounded wait on a condition, and a gate tasks wait on."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


def until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Wait until `condition()` is true (checked every 50 ms, `timeout` at most); return
    its value."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        tick.wait(0.05)


class Gate:
    """A file the test holds an exclusive flock on until `open()`; the local stack's tasks
    run on this machine and wait on it (`wait_gate`)."""

    def __init__(self, directory: Path) -> None:
        import fcntl

        self.path = str(directory / f"gate-{uuid.uuid4().hex}")
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def open(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def wait_gate(path: str, value: Any = None) -> Any:
    """Block until the gate at `path` is open, then return `value` (runs on a node)."""
    import fcntl

    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)
    return value
