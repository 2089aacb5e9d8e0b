"""The reusable executors (`reusable.ReusableExecutors`, behind get_reusable_executor()): reuse
why) when they change or the executor is shut down or broken. With a fake executor."""

from __future__ import annotations

import base64
import logging
import threading

import pytest

from azure_batch_executor.errors import BrokenBatchExecutor

KEY_A = base64.b64encode(b"key-a").decode()
KEY_B = base64.b64encode(b"key-b").decode()
AZURE = {  # a complete Azure configuration (never contacted: the executor is a fake)
    "batch_account_url": "https://acct.westeurope.batch.azure.com",
    "batch_account_name": "acct",
    "batch_account_key": KEY_A,
    "storage_account_url": "https://store.blob.core.windows.net",
}


def init(x: int) -> None:
    pass


def other_init(x: int) -> None:
    pass


class Unequal:
    """Like a numpy array: == does not give a bool."""

    def __eq__(self, other: object) -> bool:
        raise ValueError("The truth value of an array is ambiguous")

    __hash__ = object.__hash__


@pytest.fixture
def rebuilds(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="azure_batch_executor.reusable")
    return caplog


def test_same_arguments_reuse_one_executor(fake_builds) -> None:
    a = fake_builds.reuse.get(4, init, (1,), pool_id="p", poll_interval=1.0)
    b = fake_builds.reuse.get(4, init, (1,), pool_id="p", poll_interval=1.0)
    assert a is b and len(fake_builds) == 1 and a.shutdowns == []
    assert fake_builds.reuse.current() is a


def test_a_changed_setting_rebuilds_and_logs_which(fake_builds, rebuilds) -> None:
    a = fake_builds.reuse.get(pool_id="p1")
    b = fake_builds.reuse.get(pool_id="p2")
    assert b is not a and len(fake_builds) == 2
    assert a.shutdowns == [(False, False)]  # its futures still resolve; nothing waits
    assert "pool_id changed ('p1' -> 'p2')" in rebuilds.text
    assert a.job_id in rebuilds.text


@pytest.mark.parametrize("change, expected", [
    ({"max_workers": 8}, "max_workers changed (None -> 8)"),
    ({"initializer": other_init}, "initializer changed (init -> other_init)"),
    ({"initargs": (2,)}, "initargs changed"),
])
def test_executor_arguments_count_too(fake_builds, rebuilds, change, expected) -> None:
    base = {"max_workers": None, "initializer": init, "initargs": (1,)}
    fake_builds.reuse.get(**base)
    fake_builds.reuse.get(**{**base, **change})
    assert len(fake_builds) == 2 and expected in rebuilds.text


def test_a_changed_secret_is_named_not_shown(fake_builds, rebuilds) -> None:
    fake_builds.reuse.get(**AZURE)
    fake_builds.reuse.get(**{**AZURE, "batch_account_key": KEY_B})
    assert len(fake_builds) == 2
    assert "batch_account_key changed" in rebuilds.text
    assert KEY_A not in rebuilds.text and KEY_B not in rebuilds.text


def test_the_environment_is_part_of_the_settings(fake_builds, rebuilds, monkeypatch) -> None:
    monkeypatch.setenv("BATCH_ACCOUNT_URL", AZURE["batch_account_url"])
    monkeypatch.setenv("STORAGE_ACCOUNT_URL", AZURE["storage_account_url"])
    a = fake_builds.reuse.get()
    assert fake_builds.reuse.get() is a
    monkeypatch.setenv("STORAGE_ACCOUNT_URL", "https://other.blob.core.windows.net")
    assert fake_builds.reuse.get() is not a
    assert "storage_account_url changed" in rebuilds.text


def test_a_shut_down_executor_is_replaced(fake_builds, rebuilds) -> None:
    a = fake_builds.reuse.get()
    a.shutdown()
    b = fake_builds.reuse.get()
    assert b is not a and "was shut down" in rebuilds.text
    assert a.shutdowns == [(True, False), (False, False)]


def test_a_broken_executor_is_replaced(fake_builds, rebuilds) -> None:
    a = fake_builds.reuse.get()
    a.broken = BrokenBatchExecutor("the Batch job or pool is gone")
    assert fake_builds.reuse.current() is None
    b = fake_builds.reuse.get()
    assert b is not a
    assert "broken: the Batch job or pool is gone" in rebuilds.text


def test_arguments_without_a_boolean_equality_rebuild_without_failing(fake_builds) -> None:
    a = fake_builds.reuse.get(None, init, (Unequal(),))
    b = fake_builds.reuse.get(None, init, (Unequal(),))
    assert b is not a


def test_discard_forgets_only_the_current_executor(fake_builds) -> None:
    a = fake_builds.reuse.get()
    fake_builds.reuse.discard(object())  # type: ignore[arg-type]
    assert fake_builds.reuse.current() is a
    fake_builds.reuse.discard(a)
    assert fake_builds.reuse.current() is None and a.shutdowns == []  # the caller shuts it down
    assert fake_builds.reuse.get() is not a


def test_concurrent_callers_share_one_build(fake_builds) -> None:
    start = threading.Barrier(8)
    got: list[object] = []

    def call() -> None:
        start.wait()
        got.append(fake_builds.reuse.get(pool_id="p"))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fake_builds) == 1 and all(ex is fake_builds[0] for ex in got)


def test_bad_arguments_fail_before_any_build(fake_builds) -> None:
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        fake_builds.reuse.get(0)
    with pytest.raises(TypeError, match="pool_idd"):
        fake_builds.reuse.get(pool_idd="p")
    assert fake_builds == []
