"""Helpers of the throttling suite: a gate tasks wait on, and waiting with a deadline."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


class Gate:
    """A file the test holds an exclusive flock on until `open()`; tasks of the local stack
    run on this machine and wait for it with `wait_gate`."""

    def __init__(self, directory: Path) -> None:
        import fcntl

        self.path = str(directory / f"gate-{uuid.uuid4().hex}")
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def open(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def wait_gate(path: str) -> None:
    import fcntl

    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.02)
