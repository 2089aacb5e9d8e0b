"""Nested parallelism on the node (issue 9, item 4), on the local stack: inside a task,
joblib calls asking for "azure_batch" run sequentially in the task's own process (the
worker registers "azure_batch" as joblib's sequential backend, and so does
register_joblib() there), and constructing an AzureBatchExecutor fails the task's future
with NestedExecutorError instead of starting a second cloud job."""

from __future__ import annotations

import os
from typing import Any

import joblib
import pytest
from joblib import Parallel, delayed, parallel_config

from azure_batch_executor import NestedExecutorError
from azure_batch_executor.reusable import get_reusable_executor

TIMEOUT = 120.0
TASK_ENV = "AZURE_BATCH_EXECUTOR_TASK"


def pid_and_square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


def nested_joblib(n: int, register_first: bool) -> dict[str, Any]:
    """Runs on the node: a joblib call asking for the Batch backend with n_jobs=2."""
    if register_first:  # a task that imports this package and registers the backend itself
        from azure_batch_executor import register_joblib

        register_joblib()
    with parallel_config(backend="azure_batch"):
        out = Parallel(n_jobs=2)(delayed(pid_and_square)(i) for i in range(n))
        backend = type(joblib.parallel.get_active_backend()[0]).__name__
    return {"out": out, "backend": backend, "pid": os.getpid(),
            "task": os.environ.get(TASK_ENV)}


def start_an_executor() -> str:
    """Runs on the node: must fail at once, never create a job. (The import is inside: run
    from a source tree, this package travels by value, and its module globals, locks
    included, cannot be pickled.)"""
    from azure_batch_executor import AzureBatchExecutor

    with AzureBatchExecutor(max_workers=1) as ex:
        return ex.job_id


def job_creations(stack: Any) -> int:
    return stack.emulator.request_counts().get(("POST", "create_job"), 0)


@pytest.mark.parametrize("register_first", [False, True], ids=["worker", "register_joblib"])
def test_joblib_inside_a_task_runs_sequentially_on_the_node(
        local_stack: Any, register_first: bool) -> None:
    ex = get_reusable_executor()
    before = job_creations(local_stack)
    got = ex.submit(nested_joblib, 5, register_first).result(timeout=TIMEOUT)
    assert [square for _, square in got["out"]] == [0, 1, 4, 9, 16]
    assert {pid for pid, _ in got["out"]} == {got["pid"]}  # in the task's own process
    assert got["pid"] != os.getpid()  # which is not this one: it ran on a node
    assert got["backend"] == "SequentialBackend"
    assert got["task"] and got["task"].startswith("task-")
    assert job_creations(local_stack) == before  # no second job


def test_an_executor_inside_a_task_fails_its_future_with_nested_error(
        local_stack: Any) -> None:
    ex = get_reusable_executor()
    before = job_creations(local_stack)
    future = ex.submit(start_an_executor)
    with pytest.raises(NestedExecutorError) as info:
        future.result(timeout=TIMEOUT)
    assert info.value.task_id.startswith("task-")
    assert f"inside task {info.value.task_id} of an Azure Batch job" in str(info.value)
    assert "AZURE_BATCH_EXECUTOR_ALLOW_NESTED=1" in str(info.value)
    assert job_creations(local_stack) == before  # no second job
    assert ex.submit(pid_and_square, 3).result(timeout=TIMEOUT)[1] == 9  # the executor goes on
