"""Watching a job: one watch loop for the executor's manager thread and the SuperBatch client.

Role: a `Watcher` finds the newly completed tasks of one job at O(1) requests per tick
(`cloud.batch.CompletionFeed`) and paces its ticks like submitit's watcher: fast right
after tasks go out (doubling from `first_interval`), one `poll_interval` apart while
results flow, and, while nothing completes, further apart the longer nothing has: the
next tick after a tenth of the idle time so far, up to `max_interval` (an idle executor
on Azure settles at one count every 10 s; docs/how-it-works.md, "Throttling and
polling"). Health checks (the job still active, the pool still there) come every 10 s,
or every 6 ticks when ticks are further apart, and not while completions show both.

Turnaround: a watcher learns how long a call sent to an idle job takes to come back
(`expected`: an average of what it measured, each measure taken as the middle of the last
gap between two polls) and, after the next such call, polls first a little before that
time and then at a tenth of it (at least `FINE_INTERVAL`) until it comes back or twice
the time has passed: a sequential ``submit().result()`` loop waits a few milliseconds on
the local stack, not a whole doubling step (benchmarks/README.md, "Turnaround").

Failures: only `codes.is_gone` (the job or pool deleted, credentials revoked) and
`JobGone` raise at once. A transient one (throttled, busy, timed out, unreachable) is
never a failure of the job, however long it lasts: the tick is lost, the next one is
put off (never sooner than the reply's ``Retry-After``, with jitter) and polling goes
on; each request retries only briefly (`cloud.retry.patience`) since the next tick
tries again. Anything else (a reply that makes no sense, a bug) is counted, and
`MAX_POLL_FAILURES` in a row raise. Its caller decides what to do with the completions
and when to sleep (`due_in`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .. import constants as C
from ..cloud.codes import JobGone, error_code, is_gone, is_transient
from ..cloud.completions import CompletionFeed
from ..cloud.ports import BatchPort, CompletedTask
from ..cloud.retry import patience, retry_after
from ..config import Settings, first_line

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_POLL_FAILURES = 8  # lasting (not transient) failed ticks in a row before the job counts as lost
IDLE_FRACTION = 0.1  # idle: the next tick after this fraction of the time nothing completed
HEALTH_CHECK_TICKS = 6  # idle: a health check at most every this many ticks (and 10 s)
POLL_PATIENCE = 5.0  # seconds a poll's request retries before the tick is given up
STORM_JITTER = 0.2  # a tick put off by a transient failure: up to 20 % later
FINE_INTERVAL = 0.01  # seconds: the shortest tick, while a call is due back
EXPECT_EARLY = 0.8  # the first tick after sending to an idle job: at this fraction of `expected`
EXPECT_WEIGHT = 0.3  # the weight of a new measure in the average `expected`


def max_poll_interval(settings: Settings) -> float:
    """The cap of the idle backoff: the `max_poll_interval` setting, else 10 s on Azure and
    2 s on the local stack (its requests cost nothing); never below `poll_interval`."""
    value = settings.max_poll_interval
    if value is None:
        value = C.LOCAL_MAX_POLL_INTERVAL if settings.local else C.DEFAULT_MAX_POLL_INTERVAL
    return max(float(value), settings.poll_interval)


class Watcher:
    """The completions of one job, polled at the pace above; `ticks` counts the polls and
    `throttled` the ticks lost to transient failures."""

    def __init__(self, batch: BatchPort, job_id: str, poll_interval: float,
                 first_interval: float = C.MIN_POLL_INTERVAL,
                 max_interval: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 rand: Callable[[], float] = random.random) -> None:
        self.batch = batch
        self.job_id = job_id
        self.cap = poll_interval  # the pace while results flow
        self.idle_cap = max(poll_interval, max_interval if max_interval is not None
                            else poll_interval)
        self.first_interval = first_interval
        self.clock = clock
        self.rand = rand
        self.feed = CompletionFeed(batch, job_id)
        self.interval = first_interval
        now = clock()
        self.idle_since = now  # the last completion, or when tasks last went out
        self.next_poll = 0.0
        self.next_health = now + C.HEALTH_CHECK_INTERVAL
        self.failures = 0  # lasting failures in a row
        self.ticks = 0
        self.throttled = 0  # ticks lost to transient failures, all told
        self.storm_since: float | None = None  # the first transient failure of this spell
        self.expected: float | None = None  # seconds a call sent to an idle job takes back
        self.sent_at: float | None = None  # when calls last went out to an idle job
        self.last_poll = now

    @classmethod
    def for_settings(cls, batch: BatchPort, job_id: str, settings: Settings,
                     first_interval: float = C.MIN_POLL_INTERVAL) -> Watcher:
        """A watcher paced by the settings' `poll_interval` and `max_poll_interval`."""
        return cls(batch, job_id, settings.poll_interval, first_interval,
                   max_poll_interval(settings))

    def restart(self) -> None:
        """Tasks went out after a quiet spell: poll soon (just before they are expected
        back, once that is known), then back off again."""
        now = self.clock()
        self.interval = self.first_interval
        self.idle_since = now
        self.sent_at = now
        self.last_poll = now
        first = self.interval
        if self.expected is not None:
            first = max(FINE_INTERVAL, EXPECT_EARLY * self.expected)
        self.next_poll = now + first

    def expecting(self, now: float) -> bool:
        """Whether calls sent to an idle job are due back about now."""
        return (self.expected is not None and self.sent_at is not None
                and now - self.sent_at < 2 * self.expected)

    def learn(self, now: float) -> None:
        """Calls sent to an idle job came back: the time they took goes into `expected`."""
        if self.sent_at is None:
            return
        took = max(FINE_INTERVAL, now - self.sent_at - (now - self.last_poll) / 2)
        self.sent_at = None
        self.expected = took if self.expected is None else (
            (1 - EXPECT_WEIGHT) * self.expected + EXPECT_WEIGHT * took)

    def due_in(self) -> float:
        """Seconds until the next poll is due (0: now)."""
        return max(0.0, self.next_poll - self.clock())

    def poll(self, started: bool = False) -> list[CompletedTask]:
        """One tick: the tasks completed since the last one ([] after a passing failure);
        with `started`, also the tasks seen running (`take_started`)."""
        self.ticks += 1
        try:
            with patience(POLL_PATIENCE):
                new = self.feed.poll(started)
        except Exception as exc:  # noqa: BLE001 - gone: raised; transient: waited out
            self.failed(exc)
            return []
        self.answered()
        now = self.clock()
        if new:
            self.learn(now)
        self.last_poll = now
        self.back_off(moved=bool(new))
        if new:  # tasks completing: the job and pool are alive, no health check due
            self.next_health = self.clock() + self.health_period()
        return new

    def take_started(self) -> list[str]:
        """The ids of the tasks seen running since the last call (`poll(started=True)`)."""
        started, self.feed.started = self.feed.started, []
        return started

    def drained(self) -> None:
        """Nothing is left to complete: the next poll starts with the cheap count."""
        self.feed.flowing = False

    def check_health(self) -> bool:
        """Every few seconds: the job still active and the pool still there (`JobGone`).
        True when a check was due (and passed or met a passing failure)."""
        now = self.clock()
        if now < self.next_health:
            return False
        self.next_health = now + self.health_period()
        try:
            with patience(POLL_PATIENCE):
                self.batch.check_alive(self.job_id)
        except JobGone:
            raise
        except Exception as exc:  # noqa: BLE001 - handled like a failed poll
            self.failed(exc)
        return True

    def attempt(self, fn: Callable[..., T], *a: Any) -> T | None:
        """`fn(*a)`, a request of the watch loop (e.g. a health check of the caller's),
        with the poll's tolerance: None after a passing failure."""
        try:
            with patience(POLL_PATIENCE):
                return fn(*a)
        except Exception as exc:  # noqa: BLE001 - gone: raised; transient: waited out
            self.failed(exc)
            return None

    def health_period(self) -> float:
        return max(C.HEALTH_CHECK_INTERVAL, HEALTH_CHECK_TICKS * self.interval)

    def failed(self, exc: Exception) -> None:
        """A request of the watch loop failed: gone raises; transient puts the next tick
        off; anything else counts towards `MAX_POLL_FAILURES`."""
        if is_gone(exc):
            raise exc
        self.feed.flowing = False
        if is_transient(exc):
            self.throttled += 1
            if self.storm_since is None:
                self.storm_since = self.clock()
                log.warning("Batch did not answer a poll of job %s (%s); the job and its "
                            "tasks are not affected: polling goes on, further apart",
                            self.job_id, _brief(exc))
            self.back_off(moved=False, at_least=retry_after(exc) or 0.0)
            return
        self.failures += 1
        log.warning("poll of job %s failed (%d in a row): %s", self.job_id, self.failures,
                    first_line(exc))
        if self.failures >= MAX_POLL_FAILURES:
            raise exc
        self.back_off(moved=False)

    def answered(self) -> None:
        self.failures = 0
        if self.storm_since is not None:
            log.warning("Batch answers the polls of job %s again, after %.0f s", self.job_id,
                        self.clock() - self.storm_since)
            self.storm_since = None

    def back_off(self, moved: bool, at_least: float | None = None) -> None:
        """The next tick: one poll interval after results flowed; else doubling up to it,
        then a tenth of the idle time so far, up to the idle cap. After a transient
        failure (`at_least` given: its ``Retry-After``, or 0) the wait gets jitter."""
        now = self.clock()
        if moved:
            self.idle_since = now
            self.interval = self.cap
        elif at_least is None and self.expecting(now):  # a call is due back: look often
            self.interval = min(self.cap, max(FINE_INTERVAL,
                                              IDLE_FRACTION * (self.expected or 0.0)))
        else:
            grown = max(min(self.cap, self.interval * 2),
                        IDLE_FRACTION * (now - self.idle_since))
            self.interval = min(self.idle_cap, grown)
        wait = self.interval
        if at_least is not None:
            wait = max(wait, at_least) * (1.0 + STORM_JITTER * self.rand())
        self.next_poll = now + wait


def _brief(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    code = error_code(exc)
    head = " ".join(str(x) for x in (status, code) if x)
    return head or f"{type(exc).__name__}: {first_line(exc)}"
