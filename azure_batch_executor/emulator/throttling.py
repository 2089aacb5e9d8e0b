"""Request throttling for a duration: 429 `TooManyRequests` / 503 `ServerBusy`, counted.

Role: what a busy real account answers. A `Throttle` refuses, for `seconds` from when it
was set, every request whose route name is among `operations` (all when empty), whose
method matches and whose decoded path contains `path_contains`, with the service's 429
`TooManyRequests` (default) or 503 `ServerBusy`, and `Retry-After` only when asked.
`Throttler.check` is called by `app.App` on every request after authentication (before
injected faults' handlers run the operation); with no throttle set it is one attribute
test, so the emulator's hot path stays free. Every refusal is counted per (method, route)
for the admin API (`GET /_emulator/throttle`).

Sources: the service's throttling errors are 429 `TooManyRequests` and 503 `ServerBusy`
(https://learn.microsoft.com/rest/api/batchservice/batch-status-and-error-codes); how the
SDK reacts (azure-core's RetryPolicy: any status with `Retry-After` is retried after it;
without it POST and PATCH are retried on 500/503/504 only) is in
docs/dev/emulator-rest.md, "Throttling".

Imports: the standard library and sibling emulator modules (`exceptions`, `urls`).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import exceptions as exc
from . import urls

DEFAULT_CODES = {429: "TooManyRequests", 503: "ServerBusy"}
ROUTE_NAMES = frozenset(r.name for r in urls.ROUTES) | {"not_emulated"}


@dataclass
class Throttle:
    """One throttling window."""

    until: float  # time.monotonic() deadline
    status: int = 429
    code: str = "TooManyRequests"
    retry_after: float | None = None
    operations: frozenset[str] = frozenset()  # route names; empty: every operation
    method: str = "*"
    path_contains: str = ""
    refused: int = 0

    def matches(self, method: str, route: str, path: Callable[[], str]) -> bool:
        return ((not self.operations or route in self.operations)
                and self.method in ("*", method)
                and (not self.path_contains or self.path_contains in path()))

    def to_json(self, now: float) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "status": self.status, "code": self.code,
            "remaining_seconds": round(max(0.0, self.until - now), 3),
            "operations": sorted(self.operations), "method": self.method,
            "path_contains": self.path_contains, "refused": self.refused}
        if self.retry_after is not None:
            doc["retry_after"] = self.retry_after
        return doc


@dataclass
class Throttler:
    clock: Callable[[], float] = time.monotonic
    throttles: list[Throttle] = field(default_factory=list)
    refused: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, *, status: int = 429, code: str | None = None,
            retry_after: float | None = None, operations: Iterable[str] = (),
            method: str = "*", path_contains: str = "") -> None:
        if not seconds > 0:
            raise ValueError(f"seconds must be > 0, got {seconds}")
        if status not in DEFAULT_CODES:
            raise ValueError(f"status must be 429 (TooManyRequests) or 503 (ServerBusy), got "
                             f"{status}; inject other errors with inject_faults()")
        if retry_after is not None and retry_after < 0:
            raise ValueError(f"retry_after must be >= 0 seconds, got {retry_after}")
        ops = frozenset([operations] if isinstance(operations, str) else operations)
        unknown = sorted(ops - ROUTE_NAMES)
        if unknown:
            raise ValueError(f"unknown operation(s) {', '.join(unknown)}: use route names such "
                             f"as create_task_collection or get_job (docs/dev/emulator-rest.md,"
                             f" Operations)")
        throttle = Throttle(self.clock() + float(seconds), status, code or DEFAULT_CODES[status],
                            retry_after, ops, method.upper(), path_contains)
        with self._lock:
            self.throttles.append(throttle)

    def clear(self) -> None:
        with self._lock:
            self.throttles.clear()
            self.refused.clear()

    def check(self, method: str, route: str, path: Callable[[], str]) -> exc.BatchError | None:
        """The refusal for this request while a matching throttle lasts, else None."""
        if not self.throttles:  # the hot path: nothing set
            return None
        now = self.clock()
        with self._lock:
            self.throttles[:] = [t for t in self.throttles if t.until > now]
            for throttle in self.throttles:
                if throttle.matches(method, route, path):
                    throttle.refused += 1
                    self.refused[(method, route)] += 1
                    break
            else:
                return None
        err = exc.named(throttle.code, throttle.status,
                        "The server is busy (throttled by the emulator). Please retry your "
                        "request." if throttle.status == 503 else
                        "Too many requests (throttled by the emulator), please retry.")
        if throttle.retry_after is not None:
            value = float(throttle.retry_after)
            err.headers["Retry-After"] = str(int(value)) if value.is_integer() else str(value)
        return err

    def stats(self) -> dict[str, Any]:
        """What was refused, per (method, route), and the throttles still running."""
        now = self.clock()
        with self._lock:
            return {
                "refused": sum(self.refused.values()),
                "counts": [{"method": m, "route": r, "count": c}
                           for (m, r), c in sorted(self.refused.items())],
                "active": [t.to_json(now) for t in self.throttles if t.until > now]}
