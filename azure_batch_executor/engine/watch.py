"""Watching a job: one watch loop for the executor's manager thread and the SuperBatch client.

Role: a `Watcher` finds the newly completed tasks of one job at O(1) requests per tick
(`cloud.batch.CompletionFeed`), paces its ticks like submitit's watcher (fast right after
tasks go out, doubling up to the poll interval while nothing completes, one interval
while results flow), checks every few seconds that the job and pool are still there
(not while completions show it), and tells a passing failure from a lasting one: a
failed request is logged and counted; the job or pool gone, revoked credentials, or
`MAX_POLL_FAILURES` failures in a row raise. Its caller decides what to do with the
completions and when to sleep (`due_in`).
"""

from __future__ import annotations

import logging
import time

from .. import constants as C
from ..cloud.batch import CompletionFeed, JobGone
from ..cloud.codes import is_gone
from ..cloud.ports import BatchPort, CompletedTask
from ..config import first_line

log = logging.getLogger(__name__)

MAX_POLL_FAILURES = 8  # consecutive failed ticks before the job counts as lost


class Watcher:
    """The completions of one job, polled at the pace above; `ticks` counts the polls."""

    def __init__(self, batch: BatchPort, job_id: str, poll_interval: float,
                 first_interval: float = C.MIN_POLL_INTERVAL) -> None:
        self.batch = batch
        self.job_id = job_id
        self.cap = poll_interval
        self.first_interval = first_interval
        self.feed = CompletionFeed(batch, job_id)
        self.interval = first_interval
        self.next_poll = 0.0
        self.next_health = time.monotonic() + C.HEALTH_CHECK_INTERVAL
        self.failures = 0
        self.ticks = 0

    def restart(self) -> None:
        """Tasks went out after a quiet spell: poll soon, then back off again."""
        self.interval = self.first_interval
        self.next_poll = time.monotonic() + self.interval

    def due_in(self) -> float:
        """Seconds until the next poll is due (0: now)."""
        return max(0.0, self.next_poll - time.monotonic())

    def poll(self) -> list[CompletedTask]:
        """One tick: the tasks completed since the last one ([] after a passing failure)."""
        self.ticks += 1
        try:
            new = self.feed.poll()
        except Exception as exc:  # noqa: BLE001 - counted; gone or too many: raised
            self.failed(exc)
            return []
        self.failures = 0
        self.back_off(moved=bool(new))
        if new:  # tasks completing: the job and pool are alive, no health check due
            self.next_health = time.monotonic() + C.HEALTH_CHECK_INTERVAL
        return new

    def drained(self) -> None:
        """Nothing is left to complete: the next poll starts with the cheap count."""
        self.feed.flowing = False

    def check_health(self) -> bool:
        """Every few seconds: the job still active and the pool still there (`JobGone`).
        True when a check was due (and passed or counted a passing failure)."""
        if time.monotonic() < self.next_health:
            return False
        self.next_health = time.monotonic() + C.HEALTH_CHECK_INTERVAL
        try:
            self.batch.check_alive(self.job_id)
        except JobGone:
            raise
        except Exception as exc:  # noqa: BLE001 - counted like a failed poll
            self.failed(exc)
        return True

    def failed(self, exc: Exception) -> None:
        if is_gone(exc):
            raise exc
        self.failures += 1
        log.warning("poll of job %s failed (%d in a row): %s", self.job_id, self.failures,
                    first_line(exc))
        if self.failures >= MAX_POLL_FAILURES:
            raise exc
        self.feed.flowing = False
        self.back_off(moved=False)

    def back_off(self, moved: bool) -> None:
        """Next tick: one poll interval after results flowed, else doubling up to it."""
        self.interval = self.cap if moved else min(self.cap, self.interval * 2)
        self.next_poll = time.monotonic() + self.interval
