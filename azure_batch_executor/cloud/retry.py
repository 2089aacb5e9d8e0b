"""HTTP plumbing shared by the Blob and Batch sides: retries, request counters, transport.

Role: `RequestStats` counts every HTTP request attempt by kind ("batch.add",
"blob.get", ...). `RetryPolicy.call` runs one SDK call under a tenacity policy:
408/429/500/502/503/504 and connection errors are retried with exponential
backoff and jitter, honouring ``Retry-After``; anything else is raised at once.
The SDK clients are built with their own retries off, so these counts are the
requests. `http_transport` gives each client a connection pool as wide as the
executor's I/O thread pool. `naming_credentials` turns a refused credential into the
caller's error naming what to set.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import requests
import tenacity
from azure.core.exceptions import (
    HttpResponseError,
)
from azure.core.pipeline.transport import RequestsTransport

from .codes import is_transient, refused_credentials

T = TypeVar("T")


class RequestStats:
    """Thread-safe counters of request attempts, by kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()

    def add(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self._counts[kind] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def http_transport(pool_size: int) -> RequestsTransport:
    """A requests transport whose connection pool fits `pool_size` concurrent requests."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return RequestsTransport(session=session, session_owner=True)


@contextmanager
def naming_credentials(error: Callable[[HttpResponseError], Exception]) -> Iterator[None]:
    """Raise `error(exc)` (an error naming the variables to fix) instead of a reply that
    refused the credentials; any other error goes through unchanged."""
    try:
        yield
    except HttpResponseError as exc:
        if refused_credentials(exc):
            raise error(exc) from None
        raise


def retry_after(exc: BaseException | None) -> float | None:
    """Seconds asked for by a Retry-After (or retry-after-ms) response header, if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000.0
        value = headers.get("Retry-After")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            import datetime as dt

            when = parsedate_to_datetime(value)
            return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None


class _Wait(tenacity.wait.wait_base):
    """Exponential backoff with full jitter, but never shorter than Retry-After."""

    def __init__(self, initial: float, cap: float) -> None:
        self._jitter = tenacity.wait_random_exponential(multiplier=initial, max=cap)
        self._cap = cap

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        base = self._jitter(retry_state)
        outcome = retry_state.outcome
        asked = retry_after(outcome.exception() if outcome else None)
        return min(max(base, asked or 0.0), max(self._cap, asked or 0.0))


class RetryPolicy:
    """Named retry knobs, like azure-core's: attempts, initial backoff, backoff cap."""

    def __init__(self, attempts: int = 6, initial: float = 0.2, cap: float = 20.0) -> None:
        self.attempts = attempts
        self.initial = initial
        self.cap = cap

    def call(self, stats: RequestStats, kind: str, fn: Callable[..., T], *a: Any, **kw: Any) -> T:
        """`fn(*a, **kw)`, retried on transient errors; each attempt counted as `kind`."""
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=_Wait(self.initial, self.cap),
            retry=tenacity.retry_if_exception(is_transient),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                stats.add(kind)
                return fn(*a, **kw)
        raise AssertionError("unreachable")  # pragma: no cover
