"""Waiting on a condition another process or thread moves on its own time.

`wait_until(predicate, what)` asks `predicate()` every 50 ms until it is truthy and returns
its value, or fails the test after `timeout` seconds naming `what`: synchronisation on a
condition with a deadline, never a bare sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

_tick = threading.Event()  # never set: its wait() is the pause between two questions


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        _tick.wait(0.05)
