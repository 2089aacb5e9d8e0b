"""`engine.watch.Watcher` and `cloud.batch.CompletionFeed` on a fake clock (no real
sleeps): the idle backoff and the requests it costs per hour, the pace while results
flow, storms of throttling that are never failures of the job, what does break it, and
the periodic listing that does not trust the task count alone."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import itertools
import random
from collections.abc import Callable

import pytest
from support.http_errors import service_error

from azure_batch_executor import constants as C
from azure_batch_executor.cloud.codes import JobGone
from azure_batch_executor.cloud.completions import CompletionFeed
from azure_batch_executor.cloud.ports import CompletedTask
from azure_batch_executor.config import Settings
from azure_batch_executor.engine.watch import MAX_POLL_FAILURES, Watcher, max_poll_interval

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeJob:
    """The watcher's side of a `BatchPort`: tasks complete at scripted times; `error(now,
    what)` may return the error a request meets; `counts_move` False freezes the count."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.finish_at: dict[str, float] = {}
        self.requests: collections.Counter[str] = collections.Counter()
        self.error: Callable[[float, str], BaseException | None] = lambda now, what: None
        self.counts_move = True
        self.alive = True

    def _request(self, what: str) -> None:
        self.requests[what] += 1
        exc = self.error(self.clock.now, what)
        if exc is not None:
            raise exc

    def _done(self) -> list[CompletedTask]:
        return [CompletedTask(task_id=t, transition_time=T0 + dt.timedelta(seconds=at),
                              result="success", exit_code=0, failure_code=None,
                              failure_message=None)
                for t, at in sorted(self.finish_at.items()) if at <= self.clock.now]

    def task_counts(self, job_id: str) -> tuple[int, int, int]:
        self._request("counts")
        return 0, 0, len(self._done()) if self.counts_move else 0

    def completed_since(self, job_id: str, since: dt.datetime | None) -> list[CompletedTask]:
        self._request("list")
        return [t for t in self._done() if since is None or t.transition_time > since]

    def check_alive(self, job_id: str) -> None:
        self._request("get_job")
        self._request("get_pool")
        if not self.alive:
            raise JobGone(f"job {job_id} is completed")


def make(clock: Clock, job: FakeJob, max_interval: float = 10.0,
         rand: Callable[[], float] = random.Random(7).random) -> Watcher:
    w = Watcher(job, "job-1", 0.7, C.MIN_POLL_INTERVAL, max_interval, clock=clock, rand=rand)
    w.restart()  # tasks went out at t=0
    return w


def run(clock: Clock, w: Watcher, until: float) -> list[tuple[float, list[str]]]:
    """The manager's loop on the fake clock: sleep until a tick is due, poll, check
    health; returns (tick time, task ids found) per tick."""
    ticks = []
    while True:
        clock.now = max(clock.now, w.next_poll)
        if clock.now >= until:
            return ticks
        found = [t.task_id for t in w.poll()]
        w.check_health()
        ticks.append((clock.now, found))


def gaps(ticks: list[tuple[float, list[str]]], start: float = 0.0,
         end: float = float("inf")) -> list[float]:
    times = [t for t, _ in ticks if start <= t <= end]
    return [b - a for a, b in itertools.pairwise(times)]


def test_idle_ticks_come_further_apart_up_to_the_cap() -> None:
    clock, job = Clock(), FakeJob(Clock())
    job.clock = clock
    w = make(clock, job)
    ticks = run(clock, w, until=3600.0)
    assert gaps(ticks, 0, 5)[:3] == pytest.approx([0.2, 0.4, 0.7])  # fast after the adds
    assert max(gaps(ticks, 0, 7)) <= 0.7 + 1e-9  # poll_interval for the first seconds
    assert 5.0 <= gaps(ticks, 60, 70)[0] <= 7.0  # a tenth of the idle time: 6 s at 60 s
    assert max(gaps(ticks)) == pytest.approx(10.0)  # the cap
    requests = sum(job.requests.values())
    steady = sum(1 for t, _ in ticks if t >= 2400) * 3600 / 1200  # ticks per hour, late
    assert steady == pytest.approx(360, abs=3)
    # The first idle hour, all told: counts, safety listings, health checks (2 requests)
    assert 450 <= requests <= 520, job.requests
    assert job.requests["list"] == pytest.approx(len(ticks) / CompletionFeed.LIST_EVERY, abs=1)


def test_health_checks_thin_out_with_the_ticks() -> None:
    clock = Clock()
    job = FakeJob(clock)
    w = make(clock, job)
    run(clock, w, until=3600.0)
    assert 55 <= job.requests["get_job"] <= 75  # every 60 s (6 ticks of 10 s), not every 10 s


def test_results_flowing_keep_the_pace_of_poll_interval() -> None:
    clock = Clock()
    job = FakeJob(clock)
    job.finish_at = {f"task-{i:06d}": 2.0 * i for i in range(1, 60)}  # one every 2 s
    w = make(clock, job)
    ticks = run(clock, w, until=200.0)
    assert max(gaps(ticks, 2, 118)) <= 0.7 + 1e-9
    found = [t for _, ids in ticks for t in ids]
    assert sorted(found) == sorted(job.finish_at)  # each exactly once
    assert min(gaps(ticks, 150, 200)) > 0.7  # idle again: further apart


def test_a_ten_minute_storm_is_no_failure_of_the_job() -> None:
    clock = Clock()
    job = FakeJob(clock)
    job.finish_at = {"task-000000": 100.0}  # completes while nothing is answered

    def storm(now: float, what: str) -> BaseException | None:
        if now < 300:
            return service_error(429, "TooManyRequests")
        if now < 600:
            return service_error(503, "ServerBusy", retry_after=3)
        return None

    job.error = storm
    w = make(clock, job)
    ticks = run(clock, w, until=700.0)
    found_at = [t for t, ids in ticks if ids]
    assert [ids for _, ids in ticks if ids] == [["task-000000"]]
    assert 600 <= found_at[0] <= 600 + 10.0 * 1.2  # at most one jittered idle tick late
    assert w.failures == 0 and w.throttled > 50 and w.storm_since is None
    assert max(gaps(ticks, 0, 600)) <= 10.0 * 1.2 + 1e-9  # polling went on
    assert min(gaps(ticks, 300, 600)) >= 3.0  # Retry-After honoured
    storm_gaps = gaps(ticks, 100, 300)
    assert len(set(storm_gaps)) > len(storm_gaps) // 2  # jittered, not in lockstep


@pytest.mark.parametrize("error", [
    service_error(404, "JobNotFound"), service_error(409, "JobCompleted"),
    service_error(404, "PoolNotFound"), service_error(403, "AuthenticationFailed"),
    service_error(401, "InvalidAuthenticationInfo")], ids=lambda e: str(e.status_code))
def test_gone_breaks_at_once_even_in_a_storm(error: Exception) -> None:
    clock = Clock()
    job = FakeJob(clock)
    job.error = lambda now, what: service_error(429, "TooManyRequests") if now < 30 else error
    w = make(clock, job)
    with pytest.raises(type(error)):
        run(clock, w, until=100.0)
    assert 30 <= clock.now <= 30 + 10.0 * 1.2


def test_a_job_that_ended_breaks_at_the_health_check() -> None:
    clock = Clock()
    job = FakeJob(clock)
    job.alive = False
    w = make(clock, job)
    with pytest.raises(JobGone):
        run(clock, w, until=100.0)
    assert clock.now == pytest.approx(C.HEALTH_CHECK_INTERVAL, abs=1.0)


def test_lasting_failures_in_a_row_break_it() -> None:
    clock = Clock()
    job = FakeJob(clock)
    job.error = lambda now, what: service_error(400, "InvalidRequestBody")
    w = make(clock, job)
    with pytest.raises(Exception, match="InvalidRequestBody"):
        run(clock, w, until=600.0)
    assert job.requests["counts"] == MAX_POLL_FAILURES


def test_a_count_that_never_moves_hides_nothing_for_long() -> None:
    clock = Clock()
    job = FakeJob(clock)
    job.counts_move = False  # the count says 0 completed, whatever happens
    job.finish_at = {"task-000000": 30.0, "task-000001": 500.0}
    w = make(clock, job)
    ticks = run(clock, w, until=1200.0)
    found = {ids[0]: t for t, ids in ticks if ids}
    assert set(found) == {"task-000000", "task-000001"}
    # within LIST_EVERY ticks of the completion (the ticks then are at most 10 s apart)
    assert found["task-000001"] - 500.0 <= CompletionFeed.LIST_EVERY * 10.0
    assert sum(job.requests.values()) - 2 * job.requests["get_job"] == len(ticks)  # 1 a tick


def test_a_health_request_of_the_caller_has_the_same_tolerance() -> None:
    clock = Clock()
    w = make(clock, FakeJob(clock))

    def busy() -> list[str]:
        raise service_error(503, "ServerBusy", retry_after=2)

    assert w.attempt(busy) is None and w.throttled == 1 and w.failures == 0
    assert w.due_in() >= 2.0
    with pytest.raises(type(service_error(404, "JobNotFound"))):
        w.attempt(lambda: (_ for _ in ()).throw(service_error(404, "JobNotFound")))
    assert w.attempt(lambda: ["ok"]) == ["ok"]


def test_the_idle_cap_comes_from_the_settings() -> None:
    azure = Settings()
    assert max_poll_interval(azure) == C.DEFAULT_MAX_POLL_INTERVAL == 10.0
    assert max_poll_interval(dataclasses.replace(azure, local=True)) == 2.0
    assert max_poll_interval(dataclasses.replace(azure, max_poll_interval=30.0)) == 30.0
    slow = dataclasses.replace(azure, poll_interval=20.0)
    assert max_poll_interval(slow) == 20.0  # never below poll_interval
    w = Watcher.for_settings(FakeJob(Clock()), "j", dataclasses.replace(azure, local=True))
    assert (w.cap, w.idle_cap) == (0.7, 2.0)


@pytest.mark.parametrize("bad", [0.5, 0, -1, float("inf"), float("nan"), "10", True])
def test_max_poll_interval_is_checked_before_any_request(bad: object) -> None:
    from azure_batch_executor.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"max_poll_interval=.*poll_interval \(0.7\)"):
        Settings.resolve(max_poll_interval=bad)
    assert Settings.resolve(max_poll_interval=0.7).max_poll_interval == 0.7
