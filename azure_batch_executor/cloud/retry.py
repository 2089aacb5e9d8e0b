"""HTTP plumbing shared by the Blob and Batch sides: retries, request counters, transport.

Role: `RequestStats` counts every HTTP request attempt by kind ("batch.add",
"blob.get", ...). `RetryPolicy.call` runs one SDK call: a transient failure (408, 429,
500, 502, 503, 504, a timeout, no connection; `codes.is_transient`) is tried again after
an exponential backoff with jitter, never sooner than the reply's ``Retry-After`` asks,
for as long as a time budget lasts (minutes: a throttling storm is waited out, not turned
into failures); anything else is raised at once. A block under `patience(seconds)`
gives up sooner: the watcher, which polls again anyway, uses it so that a storm never
holds the manager thread for long. The SDK clients are built with their own retries
off, so these counts are the requests. `http_transport` gives each client a connection
pool as wide as the executor's I/O thread pool. `naming_credentials` turns a refused
credential into the caller's error naming what to set.
"""

from __future__ import annotations

import collections
import contextvars
import logging
import random
import threading
import time
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

from .codes import error_code, is_transient, never_reached, refused_credentials

log = logging.getLogger(__name__)

T = TypeVar("T")

# The default policy (docs/how-it-works.md, "Throttling and polling"): the first retry
# after 0.25-0.5 s, each backoff twice the one before up to 10 s (equal jitter: between
# half of it and all of it); a Retry-After is waited out, plus up to 20 % of it; a
# request gives up after 15 minutes of transient failures (a 10-minute storm with room
# to spare), or 1 minute when no connection could be made at all.
RETRY_INITIAL = 0.5
RETRY_CAP = 10.0
RETRY_JITTER = 0.2
RETRY_BUDGET = 900.0
RETRY_CONNECT_BUDGET = 60.0


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
    """Seconds asked for by a Retry-After (or retry-after-ms) response header, if any:
    delta-seconds or an HTTP date (the two forms of RFC 9110)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        for name in ("retry-after-ms", "x-ms-retry-after-ms"):
            if headers.get(name):
                return max(0.0, float(headers[name]) / 1000.0)
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


class RetryPolicy:
    """Named retry knobs, like azure-core's: `budget` (seconds of retries per request;
    `connect_budget` when the service was never reached), `initial` backoff, its `cap`,
    `jitter` on a ``Retry-After``, and optionally at most `attempts` attempts; the loop is
    tenacity's, with these as its wait and stop. `clock`,
    `sleep` and `rand` are injectable (tests: no real sleeps)."""

    def __init__(self, attempts: int | None = None, initial: float = RETRY_INITIAL,
                 cap: float = RETRY_CAP, budget: float = RETRY_BUDGET,
                 connect_budget: float = RETRY_CONNECT_BUDGET, jitter: float = RETRY_JITTER,
                 *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 rand: Callable[[], float] = random.random) -> None:
        self.attempts = attempts
        self.initial = initial
        self.cap = cap
        self.budget = budget
        self.connect_budget = connect_budget
        self.jitter = jitter
        self.clock = clock
        self.sleep = sleep
        self.rand = rand

    def __repr__(self) -> str:
        return (f"RetryPolicy(attempts={self.attempts}, initial={self.initial}, "
                f"cap={self.cap}, budget={self.budget}, connect_budget={self.connect_budget},"
                f" jitter={self.jitter})")

    def delay(self, failures: int, asked: float | None = None) -> float:
        """Seconds to wait after `failures` failed attempts in a row: ``initial x
        2**(failures-1)``, capped, with equal jitter (between half of it and all of it);
        never less than `asked` (a ``Retry-After``), itself plus up to `jitter` of it so
        that clients told the same delay do not all come back at the same instant."""
        step = min(self.cap, self.initial * 2.0 ** min(failures - 1, 60))
        wait = step * (0.5 + 0.5 * self.rand())
        if asked is not None:
            wait = max(wait, asked * (1.0 + self.jitter * self.rand()))
        return wait

    def budget_for(self, exc: BaseException) -> float:
        """Seconds of retries a request failing with `exc` may spend (`patience` may cut
        it shorter)."""
        budget = self.connect_budget if never_reached(exc) else self.budget
        limit = _patience.get()
        return budget if limit is None else min(budget, limit)

    def call(self, stats: RequestStats, kind: str, fn: Callable[..., T], *a: Any, **kw: Any) -> T:
        """`fn(*a, **kw)`, retried on transient errors (a tenacity loop); each attempt
        counted as `kind`. The last error is raised when the next wait would end past the
        budget."""
        start = self.clock()

        def wait(state: tenacity.RetryCallState) -> float:
            return self.delay(state.attempt_number, retry_after(_outcome_error(state)))

        def stop(state: tenacity.RetryCallState) -> bool:  # tenacity: after `wait`
            exc = _outcome_error(state)
            failures, upcoming = state.attempt_number, state.upcoming_sleep
            spent = self.clock() - start
            if ((self.attempts is not None and failures >= self.attempts)
                    or spent + upcoming > self.budget_for(exc)):
                if spent >= 30.0:  # a storm outlasted the budget: say so once
                    log.warning("%s: gave up after %d attempts in %.0f s: %s",
                                kind or "request", failures, spent, _describe(exc))
                return True
            log.debug("%s: attempt %d failed (%s), next in %.2f s", kind or "request",
                      failures, _describe(exc), upcoming)
            return False

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(is_transient),
            stop=stop,
            wait=wait,
            sleep=self.sleep,
            before=lambda state: stats.add(kind),
            reraise=True,
        )
        return retrying(fn, *a, **kw)


def _outcome_error(state: tenacity.RetryCallState) -> BaseException:
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    if exc is None:  # tenacity stops on results only when told to: not here
        raise AssertionError("retry stop called without an error")
    return exc


_patience: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "azure_batch_executor_retry_patience", default=None)


@contextmanager
def patience(seconds: float) -> Iterator[None]:
    """Requests made in this block, on this thread, retry for at most `seconds` instead of
    their policy's budget: for callers that try again later anyway (the watcher's polls
    and health checks), so that a storm hands control back to them soon."""
    token = _patience.set(seconds)
    try:
        yield
    finally:
        _patience.reset(token)


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    code = error_code(exc)
    return " ".join(str(x) for x in (status, code) if x) or type(exc).__name__
