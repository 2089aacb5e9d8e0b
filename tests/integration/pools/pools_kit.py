"""Helpers of the pool suites: a bounded wait on a condition, and a gate tasks wait on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from support.gates import Gate, wait_gate  # noqa: F401 - re-exported


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


