"""Reattach (issue 15): `AzureBatchExecutor.attach(job_id)` rebuilds the futures of a job
from one listing of its tasks, in submission order (a map() chunk's future: the list of
its calls' results), resolves them as the tasks complete, fails them with
BrokenBatchExecutor if the job goes, and ends the job as an executor's end does;
`AzureBatchExecutor.jobs()` lists this package's jobs with their task counts.

The executor and the attached job share one fake Batch account (the SDK fake, calls run
in this process) and one memory blob store: the executor stands for the process that
died, its tasks held until the attached job is watching.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import CancelledError

import pytest
from support.batch_sdk_fake import FAKE_SETTINGS, FakeBatchClient
from support.memory_store import MemoryBlobStore
from support.waiting import wait_until

from azure_batch_executor.cloud.batch import BatchService
from azure_batch_executor.cloud.retry import RequestStats, RetryPolicy
from azure_batch_executor.cloud.taskdef import CALL_DISPLAY, CHUNK_DISPLAY
from azure_batch_executor.config import Settings
from azure_batch_executor.engine.attach import AttachedJob, JobInfo
from azure_batch_executor.engine.executor import AzureBatchExecutor
from azure_batch_executor.errors import BrokenBatchExecutor, ConfigurationError

TIMEOUT = 30.0


def square(x: int) -> int:
    if x == 13:
        raise ValueError("unlucky 13")
    return x * x


class Account:
    """One fake account for every connect: the executor's and the attached job's."""

    def __init__(self) -> None:
        self.store = MemoryBlobStore()
        self.client = FakeBatchClient(self.store)
        self.client.in_process = True

    def connect(self, settings: Settings, stats: RequestStats, retry: RetryPolicy
                ) -> tuple[MemoryBlobStore, BatchService]:
        return self.store, BatchService(settings, stats, RetryPolicy(attempts=3, initial=0.01,
                                                                     cap=0.05),
                                        client=self.client)


@pytest.fixture
def account() -> Iterator[Account]:
    acc = Account()
    yield acc
    acc.client.hold.set()
    acc.client.shutdown()


@pytest.fixture
def executor_class(account: Account) -> type[AzureBatchExecutor]:
    return type("AttachingExecutor", (AzureBatchExecutor,),
                {"connect": staticmethod(account.connect)})


def started(cls: type[AzureBatchExecutor], account: Account, submit: list[int],
            mapped: list[int], chunksize: int = 2) -> AzureBatchExecutor:
    """An executor (keep_job) whose tasks are added and held: `submit` one task each, then
    one map() of `mapped` in chunks."""
    account.client.hold.clear()
    ex = cls(max_workers=2, queue_depth=20, keep_job=True, **FAKE_SETTINGS)
    for x in submit:
        ex.submit(square, x)
    if mapped:
        ex.map(square, mapped, chunksize=chunksize)
    n = len(submit) + -(-len(mapped) // chunksize)
    wait_until(lambda: len(account.client.tasks[ex.job_id]) == n, f"{n} tasks added")
    wait_until(lambda: not ex._manager.table.adding, "the add replies")
    return ex


def attach(cls: type[AzureBatchExecutor], job_id: str, **settings: object) -> AttachedJob:
    return cls.attach(job_id, **{**FAKE_SETTINGS, **settings})


def test_attach_rebuilds_the_futures_in_submission_order(executor_class, account) -> None:
    ex = started(executor_class, account, submit=[0, 1, 2], mapped=[3, 4, 5, 6, 7])
    bodies = [t["body"] for t in account.client.tasks[ex.job_id].values()]
    assert [b["displayName"] for b in sorted(bodies, key=lambda b: b["id"])] == [
        CALL_DISPLAY] * 3 + [CHUNK_DISPLAY] * 3
    attached = attach(executor_class, ex.job_id)
    try:
        assert attached.task_ids == [f"task-{i:06d}" for i in range(6)]
        assert not any(f.done() for f in attached.futures)
        account.client.hold.set()
        assert list(attached.results(timeout=TIMEOUT)) == [x * x for x in range(8)]
        assert [f.result() for f in attached.futures] == [0, 1, 4, [9, 16], [25, 36], [49]]
    finally:
        account.client.hold.set()
        ex.shutdown(wait=True)
        attached.shutdown(wait=True)
    assert ex.job_id not in account.client.jobs  # deleted: keep_job is False for attach


def test_a_failed_call_raises_in_its_place(executor_class, account) -> None:
    ex = started(executor_class, account, submit=[13, 2], mapped=[12, 13, 14], chunksize=3)
    with attach(executor_class, ex.job_id, keep_job=True) as attached:
        account.client.hold.set()
        with pytest.raises(ValueError, match="unlucky 13"):
            attached.futures[0].result(TIMEOUT)
        assert attached.futures[1].result(TIMEOUT) == 4
        with pytest.raises(ValueError, match="unlucky 13"):  # the chunk's first failure
            attached.futures[2].result(TIMEOUT)
        seen = []
        with pytest.raises(ValueError, match="unlucky 13"):
            seen.extend(attached.results(TIMEOUT))
        assert seen == []  # the first call raised: nothing before it
    ex.shutdown(wait=True)
    assert account.client.jobs[ex.job_id]["state"] == "completed"  # keep_job: terminated


def test_a_finished_kept_job_resolves_at_once(executor_class, account) -> None:
    ex = started(executor_class, account, submit=[3], mapped=[1, 2])
    account.client.hold.set()
    ex.shutdown(wait=True)  # keep_job=True: terminated, kept
    with attach(executor_class, ex.job_id) as attached:
        assert list(attached.results(TIMEOUT)) == [9, 1, 4]
    assert ex.job_id not in account.client.jobs


def test_a_job_deleted_meanwhile_fails_every_future(executor_class, account) -> None:
    ex = started(executor_class, account, submit=[1, 2], mapped=[3, 4])
    attached = attach(executor_class, ex.job_id)
    try:
        account.client.job_gone = True
        for f in attached.futures:
            with pytest.raises(BrokenBatchExecutor):
                f.result(TIMEOUT)
    finally:
        account.client.hold.set()
        ex.shutdown(wait=True, cancel_futures=True)
        attached.shutdown(wait=True)


def test_shutdown_cancel_futures_terminates_the_job(executor_class, account) -> None:
    ex = started(executor_class, account, submit=[1, 2, 3], mapped=[])
    attached = attach(executor_class, ex.job_id)
    attached.shutdown(wait=True, cancel_futures=True)
    assert all(f.cancelled() for f in attached.futures)  # never started: cancelled
    with pytest.raises(CancelledError):
        next(attached.results())
    assert account.client.calls["terminate_job"] >= 1
    assert ex.job_id not in account.client.jobs  # then deleted (keep_job False)
    account.client.hold.set()
    ex.shutdown(wait=True, cancel_futures=True)


def test_attach_to_a_missing_job_names_the_fix(executor_class) -> None:
    with pytest.raises(ConfigurationError, match=r"no job 'abx-nope'.*jobs\(\)"):
        attach(executor_class, "abx-nope")


def test_jobs_lists_this_packages_jobs_with_their_task_counts(executor_class,
                                                               account) -> None:
    first = started(executor_class, account, submit=[1, 2], mapped=[])
    second = started(executor_class, account, submit=[3], mapped=[4, 5, 6])
    account.client.create_job({"id": "someone-elses-job", "poolInfo": {"poolId": "p"}})
    try:
        found = executor_class.jobs(**FAKE_SETTINGS)
        assert [j.id for j in found] == [second.job_id, first.job_id]  # newest first
        assert all(isinstance(j, JobInfo) and j.state == "active" for j in found)
        assert [j.tasks for j in found] == [3, 2]
        assert found[0].created is not None and found[0].pool_id == second.pool_id
    finally:
        account.client.hold.set()
        first.shutdown(wait=True)
        second.shutdown(wait=True)


def test_tasks_say_their_kind_in_their_display_name(executor_class, account) -> None:
    ex = started(executor_class, account, submit=[1], mapped=[2, 3], chunksize=1)
    try:
        names = {tid: t["body"].get("displayName")
                 for tid, t in account.client.tasks[ex.job_id].items()}
        assert names == {"task-000000": CALL_DISPLAY, "task-000001": CHUNK_DISPLAY,
                         "task-000002": CHUNK_DISPLAY}
        body = json.dumps(account.client.tasks[ex.job_id]["task-000000"]["body"])
        assert len(body) == len(body.encode())  # ASCII, as every definition
    finally:
        account.client.hold.set()
        ex.shutdown(wait=True)


def test_tasks_without_a_display_name_are_read_by_their_outcome(executor_class,
                                                                  account) -> None:
    """A job of an executor that wrote no displayName: one result row is a call, more are a
    chunk."""
    ex = started(executor_class, account, submit=[2], mapped=[3, 4])
    for task in account.client.tasks[ex.job_id].values():
        del task["body"]["displayName"]
    try:
        with attach(executor_class, ex.job_id, keep_job=True) as attached:
            account.client.hold.set()
            assert list(attached.results(TIMEOUT)) == [4, 9, 16]
            assert [f.result() for f in attached.futures] == [4, [9, 16]]
    finally:
        account.client.hold.set()
        ex.shutdown(wait=True)
