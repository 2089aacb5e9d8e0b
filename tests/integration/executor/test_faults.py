"""The fault table, loky-style: one row per stage where a task can go wrong.

Each row builds an executor on the local stack, provokes one fault, and names
the exception the future must fail with (or the value it must still return)
and a pattern its message must match. No future may hang: every wait has a
deadline, and the executor is shut down after each row.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Future
from dataclasses import dataclass
from typing import Any

import pytest
from executor_contract import Gate, wait_gate

from azure_batch_executor import (
    BrokenBatchExecutor,
    RemoteError,
    RemoteTraceback,
    TaskFailedError,
    TaskPicklingError,
    VersionMismatchError,
)

TIMEOUT = 60.0


# ------------------------------------------------------------------ task functions
def identity(x):
    return x


class FailsOnLoad:
    """Pickles fine on the client; unpickling it on the node raises."""

    def __reduce__(self):
        return (_explode_on_load, ())


def _explode_on_load():
    raise RuntimeError("unpickling failed on the node, on purpose")


def raise_value_error(x):
    raise ValueError(f"bad value {x}")


def return_lock():
    return threading.Lock()


def exit_3():
    os._exit(3)


def wait_forever(path):
    return wait_gate(path)


def wait_then(path, value):
    wait_gate(path)
    return value


# ------------------------------------------------------------------ helpers
def wait_until(predicate: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    """Poll `predicate` until it returns something truthy (deadline: `timeout`)."""
    deadline = time.monotonic() + timeout
    event = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        event.wait(0.05)


def running_node(ex, stack, task_id: str) -> str:
    """The node id the task runs on, once it runs."""
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.core.exceptions import ResourceNotFoundError

    client = BatchClient(stack.batch_account_url,
                         AzureNamedKeyCredential(stack.batch_account_name,
                                                 stack.batch_account_key))

    def node():
        try:
            task = client.get_task(ex.job_id, task_id)
        except ResourceNotFoundError:  # not added yet
            return None
        if str(task.state).lower().endswith("running") and task.node_info:
            return task.node_info.node_id
        return None

    try:
        return wait_until(node, f"task {task_id} to run")
    finally:
        client.close()


@dataclass
class Ctx:
    make: Callable[..., Any]
    stack: Any
    gate: Gate
    monkeypatch: pytest.MonkeyPatch


# ------------------------------------------------------------------ the rows
def row_unpicklable_argument(c: Ctx) -> Future:
    return c.make().submit(identity, threading.Lock())


def row_unpickle_fails_on_node(c: Ctx) -> Future:
    return c.make().submit(identity, FailsOnLoad())


def row_exception_in_call(c: Ctx) -> Future:
    return c.make().submit(raise_value_error, 7)


def row_unpicklable_result(c: Ctx) -> Future:
    return c.make().submit(return_lock)


def row_os_exit(c: Ctx) -> Future:
    return c.make().submit(exit_3)


def row_sigkill(c: Ctx) -> Future:
    ex = c.make()
    f = ex.submit(wait_forever, c.gate.path)
    task_id = "task-000000"
    running_node(ex, c.stack, task_id)
    wait_until(lambda: c.stack.emulator.kill_task(ex.job_id, task_id), "kill_task")
    return f


def row_wall_clock_timeout(c: Ctx) -> Future:
    return c.make(task_timeout=1.0).submit(wait_forever, c.gate.path)


def row_version_mismatch(c: Ctx) -> Future:
    from azure_batch_executor.wire import codec as _wire

    real = _wire.client_versions
    c.monkeypatch.setattr(_wire, "client_versions",
                          lambda: dict(real(), cloudpickle="0.0.0-client"))
    ex = c.make()
    f = ex.submit(identity, 1)
    f.exception(TIMEOUT)
    wait_until(lambda: ex._ctx.flags.broken is not None, "the executor to break")
    with pytest.raises(BrokenExecutor):
        ex.submit(identity, 2)
    return f


def row_preemption(c: Ctx) -> Future:
    ex = c.make()
    f = ex.submit(wait_then, c.gate.path, "survived")
    calls: list[Future] = []
    f.add_done_callback(calls.append)
    node = running_node(ex, c.stack, "task-000000")
    c.stack.emulator.preempt_node(ex.pool_id, node)
    c.gate.open()
    assert f.result(TIMEOUT) == "survived"
    assert len(calls) == 1
    return f


def row_503_on_task_adds(c: Ctx) -> Future:
    ex = c.make()
    c.stack.emulator.inject_faults("POST", "addtaskcollection", 503, "ServerBusy", count=3)
    fs = [ex.submit(identity, i) for i in range(3)]
    assert [f.result(TIMEOUT) for f in fs] == [0, 1, 2]
    assert ex.request_counts()["batch.add"] >= 4
    return fs[0]


def row_429_with_retry_after_on_counts(c: Ctx) -> Future:
    ex = c.make()
    c.stack.emulator.inject_faults("GET", "taskcounts", 429, "TooManyRequests", count=2,
                                   retry_after=0.2)
    return ex.submit(identity, "throttled")


def row_job_deleted_underneath(c: Ctx) -> Future:
    ex = c.make()
    f = ex.submit(wait_forever, c.gate.path)
    running_node(ex, c.stack, "task-000000")
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    client = BatchClient(c.stack.batch_account_url,
                         AzureNamedKeyCredential(c.stack.batch_account_name,
                                                 c.stack.batch_account_key))
    client.begin_delete_job(ex.job_id, polling_interval=1)
    client.close()
    f.exception(TIMEOUT)
    with pytest.raises(BrokenBatchExecutor):
        ex.submit(identity, 1)
    return f


ROWS = [
    # id, row, expected exception (None: a value), message pattern
    ("client-pickle-argument", row_unpicklable_argument, TaskPicklingError,
     r"positional argument 0 of submit\(identity.*lock"),
    ("node-unpickle", row_unpickle_fails_on_node, RuntimeError, r"unpickling failed on the node"),
    ("call-raises", row_exception_in_call, ValueError, r"bad value 7"),
    ("result-unpicklable", row_unpicklable_result, RemoteError,
     r"_thread.lock.*could not be pickled"),
    ("os-exit-3", row_os_exit, TaskFailedError, r"exit code 3\b"),
    ("sigkill", row_sigkill, TaskFailedError, r"SIGKILL"),
    ("wall-clock-timeout", row_wall_clock_timeout, TaskFailedError,
     r"(?i)TaskEnded|wall.?clock"),
    ("version-mismatch", row_version_mismatch, VersionMismatchError,
     r"cloudpickle 0\.0\.0-client.*cloudpickle \d"),
    ("preemption", row_preemption, None, r"survived"),
    ("503-on-add", row_503_on_task_adds, None, r"0"),
    ("429-on-counts", row_429_with_retry_after_on_counts, None, r"throttled"),
    ("job-deleted", row_job_deleted_underneath, BrokenBatchExecutor, r"(?i)job|gone"),
]


@pytest.mark.parametrize(("row", "expected", "pattern"), [r[1:] for r in ROWS],
                         ids=[r[0] for r in ROWS])
def test_fault(row, expected, pattern, make_batch_executor, local_stack, tmp_path,
               monkeypatch) -> None:
    gate = Gate(tmp_path)
    try:
        future = row(Ctx(make_batch_executor, local_stack, gate, monkeypatch))
        exc = future.exception(TIMEOUT)  # never hangs: a deadline on every row
        if expected is None:
            assert exc is None, exc
            assert re.search(pattern, str(future.result(0)))
            return
        assert isinstance(exc, expected), repr(exc)
        assert re.search(pattern, str(exc), re.S), str(exc)
        if expected in (ValueError, RuntimeError):  # remote exceptions: own type + traceback
            assert isinstance(exc.__cause__, RemoteTraceback)
            assert "Traceback" in str(exc.__cause__)
    finally:
        gate.open()
