"""joblib's own expectations of a custom backend (adapted from joblib's test_parallel.py),
run with backend "azure_batch" on the local stack; plus reuse across Parallel calls,
remote exceptions, abort, nested calls, and the GridSearchCV example."""

from __future__ import annotations

import importlib.util
import logging
import time
from multiprocessing import TimeoutError as JoblibTimeout  # what Parallel(timeout=) raises
from pathlib import Path
from typing import Any

import joblib
import pytest
from joblib import Parallel, delayed, parallel_config

from azure_batch_executor import constants as C
from azure_batch_executor import reusable
from azure_batch_executor.errors import RemoteTraceback

ROOT = Path(__file__).resolve().parents[3]
BACKEND = "azure_batch"


def square(x: int) -> int:
    return x * x


class CustomError(Exception):
    """Defined in the test module: travels by value and must come back as itself."""


def fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise CustomError(f"bad input {x}")
    return x


def inner_parallel(x: int) -> tuple[list[int], str]:
    """A nested Parallel call, run on the node: must be sequential there."""
    backend, _ = joblib.parallel.get_active_backend()
    out = Parallel(n_jobs=2)(delayed(square)(i) for i in range(x))
    return out, type(backend).__name__


def job_creations(stack: Any) -> int:
    return stack.emulator.request_counts().get(("POST", "create_job"), 0)


# ---------------------------------------------------------------- joblib's basic expectations
def test_simple_parallel_and_effective_n_jobs(local_stack: Any) -> None:
    """test_simple_parallel, and n_jobs=-1 means the pool's capacity (nodes x slots)."""
    with parallel_config(backend=BACKEND):
        capacity = local_stack.nodes * local_stack.slots_per_node
        assert joblib.effective_n_jobs(-1) == capacity
        assert joblib.effective_n_jobs(-2) == capacity - 1
        assert joblib.effective_n_jobs(3) == 3
        assert Parallel(n_jobs=-1)(delayed(square)(x) for x in range(10)) == [
            x * x for x in range(10)]


def test_invalid_n_jobs(local_stack: Any) -> None:
    with pytest.raises(ValueError, match="n_jobs == 0 in Parallel has no meaning"):
        Parallel(n_jobs=0, backend=BACKEND)(delayed(square)(x) for x in range(3))


def test_reuse_one_job_across_parallel_calls_and_rebuild_logged(
    local_stack: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Two Parallel calls in a row create no second job; changing a setting does, and
    the log says which setting changed."""
    with parallel_config(backend=BACKEND, n_jobs=2):
        Parallel()(delayed(square)(x) for x in range(3))
        first = reusable.current_executor()
        before = job_creations(local_stack)
        assert Parallel()(delayed(square)(x) for x in range(4)) == [0, 1, 4, 9]
        assert Parallel()(delayed(square)(x) for x in range(5)) == [0, 1, 4, 9, 16]
        assert job_creations(local_stack) == before
        assert reusable.current_executor() is first
    caplog.set_level(logging.INFO, logger="azure_batch_executor.reusable")
    with parallel_config(backend=BACKEND, n_jobs=2, poll_interval=0.25):
        assert Parallel()(delayed(square)(x) for x in range(2)) == [0, 1]
    assert job_creations(local_stack) == before + 1
    assert f"poll_interval changed ({C.DEFAULT_POLL_INTERVAL} -> 0.25)" in caplog.text


@pytest.mark.parametrize("return_as", ["generator", "generator_unordered"])
def test_generator_outputs(local_stack: Any, return_as: str) -> None:
    """test_parallel_return_order_with_return_as_generator_parameter, shortened."""
    out = Parallel(n_jobs=2, backend=BACKEND, return_as=return_as)(
        delayed(square)(x) for x in range(6))
    assert not isinstance(out, list)
    results = list(out)
    if return_as == "generator":
        assert results == [x * x for x in range(6)]
    else:
        assert sorted(results) == [x * x for x in range(6)]


def test_error_in_task_iterator(local_stack: Any) -> None:
    """test_error_in_task_iterator: the iterator's own error reaches the caller."""

    def items():
        yield delayed(square)(1)
        yield delayed(square)(2)
        raise RuntimeError("the iterator broke")

    with pytest.raises(RuntimeError, match="the iterator broke"):
        Parallel(n_jobs=2, backend=BACKEND, pre_dispatch="1*n_jobs")(items())


def test_exception_comes_back_as_itself_with_remote_traceback(local_stack: Any) -> None:
    with pytest.raises(CustomError, match="bad input 3") as info:
        Parallel(n_jobs=2, backend=BACKEND, batch_size=1)(
            delayed(fail_on)(x, 3) for x in range(5))
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "fail_on" in str(cause) and "bad input 3" in str(cause)


# ---------------------------------------------------------------- abort and timeout
def _running_tasks(batch_client: Any, job_id: str) -> list[str]:
    """Its tasks still running: the job is terminated in one request ("Job - Terminate",
    REST), its active tasks stay active and are never scheduled."""
    return [t.id for t in batch_client.list_tasks(job_id, select=["id", "state"])
            if str(t.state).lower().endswith(("running", "preparing"))]


@pytest.mark.parametrize("how", ["error", "timeout"])
def test_abort_terminates_the_tasks_already_added(
    local_stack: Any, batch_client: Any, how: str
) -> None:
    """test_abort_backend: an early error (or Parallel's timeout) must not leave long
    tasks running: Parallel returns at once and the job's running tasks are ended."""
    with parallel_config(backend=BACKEND, n_jobs=2):
        Parallel()(delayed(square)(x) for x in range(2))  # the reusable executor is up
        executor = reusable.current_executor()
        assert executor is not None
        delays: list[Any] = ["a"] + [60] * 7 if how == "error" else [60] * 4
        start = time.monotonic()
        with pytest.raises(TypeError if how == "error" else JoblibTimeout):
            Parallel(batch_size=1, timeout=None if how == "error" else 2.0)(
                delayed(time.sleep)(d) for d in delays)
        assert time.monotonic() - start < 30
    job = batch_client.get_job(executor.job_id)
    assert str(job.state).lower().split(".")[-1] in ("terminating", "completed")
    assert _running_tasks(batch_client, executor.job_id) == []
    assert reusable.current_executor() is not executor  # the next call gets a new one
    assert Parallel(n_jobs=2, backend=BACKEND)(delayed(square)(x) for x in range(3)) == [0, 1, 4]


# ---------------------------------------------------------------- nested, sklearn
def test_nested_parallel_runs_sequentially_on_the_node(local_stack: Any) -> None:
    out = Parallel(n_jobs=2, backend=BACKEND)(delayed(inner_parallel)(x) for x in (2, 3))
    assert out == [([0, 1], "SequentialBackend"), ([0, 1, 4], "SequentialBackend")]


def test_sklearn_grid_search_example(local_stack: Any, capsys: pytest.CaptureFixture) -> None:
    """examples/sklearn_grid_search.py, in this process (on the session's stack)."""
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location(
        "sklearn_grid_search", ROOT / "examples" / "sklearn_grid_search.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main() == 0
    out = capsys.readouterr().out
    assert "best score on Azure Batch" in out and "equal: True" in out
