"""Helpers of the throttling suite: a gate tasks wait on, and waiting with a deadline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from support import waiting
from support.gates import Gate, wait_gate  # noqa: F401 - re-exported


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    return waiting.wait_until(predicate, what, timeout)
