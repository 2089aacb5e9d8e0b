"""The executor's two process guards (issue 9, items 3 and 4), against in-process fakes:
inside a task on a node (``AZURE_BATCH_EXECUTOR_TASK`` set) the constructor refuses at once,
before any request; in a process forked from its owner an executor refuses new work at
once and its shutdown() returns without joining the parent's poller thread.
(Real forks run in tests/integration/executor/test_fork.py.)"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest

from azure_batch_executor import ForkedExecutorError, NestedExecutorError
from azure_batch_executor import constants as C
from azure_batch_executor.config import nested_task
from azure_batch_executor.engine import executor as executor_module


def square(x: int) -> int:
    return x * x


# ---------------------------------------------------------------- nested: inside a task
def test_inside_a_task_the_constructor_refuses_before_any_request(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_request(*args: object) -> None:
        raise AssertionError("the guard must come before any connection")

    class NoRequests(executor_module.AzureBatchExecutor):
        connect = staticmethod(no_request)

    monkeypatch.setenv(C.TASK_ENV, "task-000007")
    monkeypatch.delenv(C.ENV_ALLOW_NESTED, raising=False)
    with pytest.raises(NestedExecutorError) as info:
        NoRequests(max_workers=2)
    message = str(info.value)
    assert "inside task task-000007 of an Azure Batch job" in message
    assert "second cloud job" in message
    assert "joblib calls inside a task run sequentially on the node" in message
    assert "AZURE_BATCH_EXECUTOR_ALLOW_NESTED=1" in message
    assert info.value.task_id == "task-000007"
    assert isinstance(info.value, RuntimeError)


def test_nested_error_travels_back_from_the_node_as_itself() -> None:
    back = pickle.loads(pickle.dumps(NestedExecutorError("task-000001")))
    assert type(back) is NestedExecutorError
    assert back.task_id == "task-000001"
    assert str(back) == str(NestedExecutorError("task-000001"))


def test_allow_nested_lets_the_constructor_run(
        monkeypatch: pytest.MonkeyPatch, make_executor) -> None:
    monkeypatch.setenv(C.TASK_ENV, "task-000007")
    monkeypatch.setenv(C.ENV_ALLOW_NESTED, "1")
    ex = make_executor(max_workers=1)
    assert ex.submit(square, 5).result(timeout=30) == 25


@pytest.mark.parametrize(("env", "expected"), [
    ({}, None),
    ({C.TASK_ENV: ""}, None),
    ({C.TASK_ENV: "task-000003"}, "task-000003"),
    ({C.TASK_ENV: "task-000003", C.ENV_ALLOW_NESTED: "1"}, None),
    ({C.TASK_ENV: "task-000003", C.ENV_ALLOW_NESTED: " True "}, None),
    ({C.TASK_ENV: "task-000003", C.ENV_ALLOW_NESTED: "0"}, "task-000003"),
    ({C.TASK_ENV: "task-000003", C.ENV_ALLOW_NESTED: ""}, "task-000003"),
])
def test_nested_task_reads_the_worker_variable(env: dict[str, str],
                                               expected: str | None) -> None:
    assert nested_task(env) == expected


# ---------------------------------------------------------------- fork: another process
def test_in_another_process_submit_and_map_raise_at_once_and_shutdown_returns(
        make_executor) -> None:
    ex = make_executor(max_workers=1)
    assert ex.submit(square, 2).result(timeout=30) == 4
    owner = ex._pid
    ex._pid = owner + 1_000_000  # as seen from a forked child: the owner is another process
    try:
        with pytest.raises(ForkedExecutorError) as info:
            ex.submit(square, 3)
        with pytest.raises(ForkedExecutorError):
            ex.map(square, [1, 2])
        message = str(info.value)
        assert f"belongs to process {owner + 1_000_000}" in message
        assert f"job {ex.job_id}" in message
        assert ("After os.fork() create a new AzureBatchExecutor in the child, or use "
                "get_reusable_executor() / the joblib backend, which make one per process"
                ) in message
        assert isinstance(info.value, RuntimeError)
        ex.shutdown(wait=True)  # must not join the owner's poller thread: returns at once
        assert ex.shut_down
        assert ex._manager.is_alive()  # the owner's poller was left alone
    finally:
        ex._pid = owner
    ex.shutdown(wait=True)  # back in the owner: a real shutdown
    assert not ex._manager.is_alive()


def test_forked_error_pickles_with_its_attributes() -> None:
    back = pickle.loads(pickle.dumps(ForkedExecutorError(10, 11, "abx-1")))
    assert (back.owner_pid, back.pid, back.job_id) == (10, 11, "abx-1")
    assert str(back) == str(ForkedExecutorError(10, 11, "abx-1"))


FORK_WITH_LOCKS_HELD = """
import os, sys
from azure_batch_executor.engine import output as _output
from azure_batch_executor.wire import shipping as _shipping
from azure_batch_executor import local, reusable

def locks():
    return [_output._lock, _shipping._ship_lock, local._shared_lock, reusable.shared.lock]

for lock in locks():  # held at the fork, as another thread of the parent might hold them
    lock.acquire()
pid = os.fork()
if pid == 0:
    os._exit(0 if all(lock.acquire(timeout=5) for lock in locks()) else 3)
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork() is POSIX only")
def test_a_forked_child_gets_fresh_module_locks() -> None:
    """The module-level locks the child's own executor takes (shipping modules, echoing
    output, the local stack, the reusable executor) are new after os.fork(): a fork while
    another thread held one cannot deadlock the child."""
    done = subprocess.run([sys.executable, "-c", FORK_WITH_LOCKS_HELD], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
