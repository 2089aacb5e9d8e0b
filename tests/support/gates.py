"""Gates that tasks on the local stack wait on: the test holds a file's exclusive flock
until `Gate.open()`; `wait_gate(path)` (run as a task, on this machine) takes a shared
flock, so it returns once the gate is open, and at once on any other path (e.g. "/")."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any


class Gate:
    """A gate in `directory`; `path` is what tasks wait on."""

    def __init__(self, directory: Path) -> None:
        import fcntl

        self.path = str(directory / f"gate-{uuid.uuid4().hex}")
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def open(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the lock: every waiting task goes on
            self._fd = None


def wait_gate(path: str, value: Any = None) -> Any:
    """Block until the gate at `path` is open, then return `value` (runs as a task)."""
    import fcntl

    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)
    return value
