"""register_joblib() inside a task on a node (issue 9, item 4) and get_reusable_executor()
in a forked child (item 3), without a stack: the node is simulated by the worker's
variable ``AZURE_BATCH_EXECUTOR_TASK``, the fork by the module's at-fork hook (real forks
run in tests/integration/executor/test_fork.py)."""

from __future__ import annotations

import logging
import os
import weakref

import joblib
import pytest
from joblib import Parallel, delayed, parallel_config
from joblib._parallel_backends import SequentialBackend
from joblib.parallel import BACKENDS

from azure_batch_executor import constants as C
from azure_batch_executor import reusable
from azure_batch_executor.joblib_backend import BACKEND_NAME, AzureBatchBackend, register_joblib


def pid_and_square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever register_joblib() puts in joblib's registry is undone after the test."""
    monkeypatch.setitem(BACKENDS, BACKEND_NAME, BACKENDS.get(BACKEND_NAME, AzureBatchBackend))


# ---------------------------------------------------------------- on a node
def test_on_a_node_register_joblib_makes_azure_batch_sequential(
        registry: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(C.TASK_ENV, "task-000004")
    monkeypatch.delenv(C.ENV_ALLOW_NESTED, raising=False)
    register_joblib()
    assert BACKENDS[BACKEND_NAME] is SequentialBackend
    # the executor's settings, as a client would pass them, are accepted and ignored there
    with parallel_config(backend=BACKEND_NAME, pool_id="superbatch", max_workers=4):
        out = Parallel(n_jobs=2)(delayed(pid_and_square)(x) for x in range(4))
        backend, _ = joblib.parallel.get_active_backend()
    assert out == [(os.getpid(), x * x) for x in range(4)]  # here, one by one
    assert isinstance(backend, SequentialBackend)


def test_on_a_node_with_nesting_allowed_register_joblib_is_the_batch_backend(
        registry: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(C.TASK_ENV, "task-000004")
    monkeypatch.setenv(C.ENV_ALLOW_NESTED, "1")
    register_joblib()
    assert BACKENDS[BACKEND_NAME] is AzureBatchBackend


def test_on_a_client_register_joblib_is_the_batch_backend(
        registry: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(C.TASK_ENV, raising=False)
    register_joblib()
    assert BACKENDS[BACKEND_NAME] is AzureBatchBackend


# ---------------------------------------------------------------- in a forked child
def test_after_fork_the_child_builds_its_own_and_leaves_the_parents_alone(
        fake_builds, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="azure_batch_executor.reusable")
    reuse = fake_builds.reuse
    parents = reuse.get(2, pool_id="p")
    parent_lock = reuse.lock
    parent_lock.acquire()  # another thread of the parent held it at the fork
    try:
        reusable._after_fork_in_child(weakref.ref(reuse))
        assert reuse.lock is not parent_lock
        assert reuse.current() is None  # nothing inherited is handed out
        child = reuse.get(2, pool_id="p")
    finally:
        parent_lock.release()
    assert child is not parents and fake_builds == [parents, child]
    assert parents.shutdowns == []  # never shut down from the child: its job is the parent's
    assert reuse.inherited == [parents]  # kept, so that nothing of it runs in the child
    assert reuse.get(2, pool_id="p") is child
    assert (f"building a new reusable AzureBatchExecutor in process {os.getpid()}: this "
            f"process was forked from process {os.getpid()}, whose executor (job "
            f"{parents.job_id}) stays with it") in caplog.text


def test_a_fork_the_hook_missed_is_seen_by_the_pid(fake_builds) -> None:
    """A C-level fork() runs no Python at-fork hook: the pid check still forgets the
    parent's executor."""
    reuse = fake_builds.reuse
    parents = reuse.get(2, pool_id="p")
    reuse.pid = os.getpid() + 1_000_000  # built by "another" process
    child = reuse.get(2, pool_id="p")
    assert child is not parents and parents.shutdowns == []
    assert reuse.pid == os.getpid()
