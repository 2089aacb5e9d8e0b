"""`cloud.retry.RetryPolicy` with an injected clock, sleep and random source (no real
sleeps): `Retry-After` honoured, jitter applied, a storm of minutes waited out, the budget
and what it applies to, `patience`, and what is never retried."""

from __future__ import annotations

import email.utils
import random
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.http_errors import no_connection, service_error

from azure_batch_executor.cloud.retry import (
    RETRY_BUDGET,
    RequestStats,
    RetryPolicy,
    patience,
    retry_after,
)


class FakeTime:
    """A clock that only moves when the policy sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def policy(t: FakeTime, rand: Callable[[], float] = lambda: 0.5, **kw: Any) -> RetryPolicy:
    return RetryPolicy(clock=t.clock, sleep=t.sleep, rand=rand, **kw)


def failing(errors: Iterator[BaseException], value: str = "ok") -> Callable[[], str]:
    """A call raising the next of `errors` each time, then returning `value`."""
    def call() -> str:
        for exc in errors:
            raise exc
        return value
    return call


def test_retry_after_is_honoured_plus_up_to_a_fifth_of_it() -> None:
    t = FakeTime()
    calls = failing(iter([service_error(429, "TooManyRequests", retry_after=7),
                          service_error(503, "ServerBusy", retry_after=7)]))
    assert policy(t, rand=lambda: 0.0).call(RequestStats(), "batch.add", calls) == "ok"
    assert t.sleeps == [7.0, 7.0]  # never sooner than asked, even far above the backoff
    t = FakeTime()
    calls = failing(iter([service_error(429, "TooManyRequests", retry_after=7)]))
    policy(t, rand=lambda: 1.0).call(RequestStats(), "batch.add", calls)
    assert t.sleeps == [pytest.approx(7.0 * 1.2)]  # the jitter: at most 20 % more


def test_retry_after_in_milliseconds_and_as_an_http_date() -> None:
    assert retry_after(service_error(429, "x", headers={"retry-after-ms": "1500"})) == 1.5
    assert retry_after(service_error(429, "x", headers={"x-ms-retry-after-ms": "250"})) == 0.25
    when = email.utils.formatdate(timeval=__import__("time").time() + 30, usegmt=True)
    assert 28 <= (retry_after(service_error(503, "x", headers={"Retry-After": when})) or 0) <= 30
    assert retry_after(service_error(503, "x")) is None
    assert retry_after(service_error(503, "x", headers={"Retry-After": "soon"})) is None


def test_backoff_doubles_to_its_cap_with_equal_jitter() -> None:
    t = FakeTime()
    errors = iter([service_error(503, "ServerBusy")] * 8)
    policy(t, rand=lambda: 0.0).call(RequestStats(), "blob.get", failing(errors))
    assert t.sleeps == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]  # half of each step
    t = FakeTime()
    errors = iter([service_error(503, "ServerBusy")] * 8)
    policy(t, rand=lambda: 1.0).call(RequestStats(), "blob.get", failing(errors))
    assert t.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]  # all of each, capped


def test_jitter_spreads_clients_told_the_same_thing() -> None:
    waits = []
    for seed in range(20):
        t = FakeTime()
        errors = iter([service_error(429, "TooManyRequests", retry_after=2)] * 3
                      + [service_error(429, "TooManyRequests")] * 3)
        policy(t, rand=random.Random(seed).random).call(RequestStats(), "k", failing(errors))
        assert all(w >= 2.0 for w in t.sleeps[:3]) and all(w <= 2.4 for w in t.sleeps[:3])
        steps = zip(t.sleeps[3:], (4.0, 8.0, 10.0), strict=True)
        assert all(step / 2 <= w <= step for w, step in steps)
        waits.append(tuple(t.sleeps))
    assert len(set(waits)) == 20  # no two clients in lockstep


def test_a_ten_minute_storm_is_waited_out() -> None:
    t = FakeTime()
    stats = RequestStats()
    storm_end = 600.0

    def call() -> str:
        if t.now < storm_end:  # 429 without Retry-After, then 503 asking for 3 s
            if t.now < 300:
                raise service_error(429, "TooManyRequests")
            raise service_error(503, "ServerBusy", retry_after=3)
        return "ok"

    assert policy(t, rand=random.Random(1).random).call(stats, "batch.add", call) == "ok"
    attempts = stats.snapshot()["batch.add"]
    assert storm_end <= t.now <= storm_end + 10.0  # back within one capped backoff
    assert max(t.sleeps) <= 10.0 and 60 <= attempts <= 140  # 5-10 s apart: no hammering


def test_the_budget_ends_a_storm_longer_than_it() -> None:
    t = FakeTime()
    stats = RequestStats()
    always = failing(iter(lambda: service_error(429, "TooManyRequests"), None))
    with pytest.raises(Exception, match="TooManyRequests"):
        policy(t).call(stats, "batch.task_counts", always)
    assert RETRY_BUDGET - 10.0 <= t.now <= RETRY_BUDGET  # never sleeps past the budget


def test_a_retry_after_beyond_the_budget_raises_at_once() -> None:
    t = FakeTime()
    calls = failing(iter([service_error(429, "TooManyRequests", retry_after=3600)]))
    with pytest.raises(Exception, match="TooManyRequests"):
        policy(t).call(RequestStats(), "k", calls)
    assert t.sleeps == []


def test_no_connection_at_all_gets_the_short_budget() -> None:
    t = FakeTime()
    always = failing(iter(no_connection, None))
    with pytest.raises(Exception, match="refused"):
        policy(t).call(RequestStats(), "k", always)
    assert 50.0 <= t.now <= 60.0


@pytest.mark.parametrize(("status", "code"), [
    (404, "JobNotFound"), (409, "TaskExists"), (403, "AuthenticationFailed"),
    (400, "InvalidPropertyValue"), (413, "RequestBodyTooLarge")])
def test_what_is_not_transient_is_raised_at_once(status: int, code: str) -> None:
    t = FakeTime()
    stats = RequestStats()
    with pytest.raises(Exception, match=code):
        policy(t).call(stats, "k", failing(iter([service_error(status, code)])))
    assert t.sleeps == [] and stats.snapshot() == {"k": 1}


def test_every_attempt_is_counted_and_attempts_may_be_bounded() -> None:
    t = FakeTime()
    stats = RequestStats()
    always = failing(iter(lambda: service_error(500, "InternalError"), None))
    with pytest.raises(Exception, match="InternalError"):
        policy(t, attempts=3).call(stats, "batch.get_job", always)
    assert stats.snapshot() == {"batch.get_job": 3} and len(t.sleeps) == 2


def test_patience_shortens_the_budget_in_its_block_and_thread_only() -> None:
    t = FakeTime()
    p = policy(t)
    always = failing(iter(lambda: service_error(503, "ServerBusy"), None))
    with patience(5.0), pytest.raises(Exception, match="ServerBusy"):
        p.call(RequestStats(), "k", always)
    assert t.now <= 5.0
    seen: list[float] = []
    with patience(5.0):
        other = threading.Thread(target=lambda: seen.append(p.budget_for(Exception())))
        other.start()
        other.join()
    assert seen == [RETRY_BUDGET] and p.budget_for(Exception()) == RETRY_BUDGET
