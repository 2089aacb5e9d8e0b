"""The joblib backend's logic without a stack: n_jobs, submit/callback, abort, nesting,
registration, and the error without joblib. The executor is a fake."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import Future

import joblib
import pytest
from joblib._parallel_backends import SequentialBackend
from joblib.parallel import BACKENDS

from azure_batch_executor.joblib_backend import AzureBatchBackend, register_joblib


@pytest.fixture
def backend(fake_builds) -> AzureBatchBackend:
    return fake_builds.backend(nesting_level=0, pool_id="p")


def test_capabilities_are_those_of_a_future_based_backend() -> None:
    b = AzureBatchBackend()
    assert b.supports_retrieve_callback and b.supports_return_generator and b.supports_timeout
    assert not b.supports_sharedmem


@pytest.mark.parametrize("n_jobs, expected", [(-1, 6), (-2, 5), (-100, 1), (3, 3), (50, 50),
                                              (None, 6)])
def test_effective_n_jobs_counts_back_from_the_capacity(backend, n_jobs, expected) -> None:
    assert backend.effective_n_jobs(n_jobs) == expected


def test_n_jobs_minus_one_follows_max_workers(fake_builds) -> None:
    assert fake_builds.backend(max_workers=2).effective_n_jobs(-1) == 2


def test_n_jobs_zero_is_refused_like_joblib(backend) -> None:
    with pytest.raises(ValueError, match="n_jobs == 0 in Parallel has no meaning"):
        backend.effective_n_jobs(0)


def test_positive_n_jobs_builds_nothing(fake_builds) -> None:
    fake_builds.backend().configure(n_jobs=4, parallel=None, max_nbytes="1M", mmap_mode="r")
    assert fake_builds == []


def test_settings_are_checked_when_the_backend_is_made() -> None:
    with pytest.raises(TypeError, match="valid settings are"):
        AzureBatchBackend(pool_idd="p")
    with pytest.raises(ValueError, match="max_workers"):
        AzureBatchBackend(max_workers=0)


def test_submit_uses_the_reusable_executor_and_calls_back(backend, fake_builds) -> None:
    seen: list[Future] = []
    f1 = backend.submit(lambda: 1, callback=seen.append)
    f2 = backend.submit(lambda: 2)
    assert len(fake_builds) == 1 and fake_builds[0].submitted == [f1, f2]
    assert fake_builds[0].settings.pool_id == "p"
    f1.set_result([1])
    assert seen == [f1] and backend.retrieve_result_callback(f1) == [1]
    assert backend._futures == {f2}  # resolved futures are forgotten


def test_abort_cancels_pending_batches_and_keeps_the_executor(backend, fake_builds) -> None:
    futures = [backend.submit(lambda: None) for _ in range(3)]
    executor = fake_builds.reuse.current()
    backend.abort_everything(ensure_ready=True)
    assert all(f.cancelled() for f in futures)
    assert not executor.terminated and fake_builds.reuse.current() is executor
    assert executor.shutdowns == []


def test_abort_terminates_the_job_when_tasks_were_added(backend, fake_builds) -> None:
    pending, running = backend.submit(lambda: 1), backend.submit(lambda: 2)
    running.set_running_or_notify_cancel()  # Batch accepted its task
    executor = fake_builds.reuse.current()
    backend.abort_everything(ensure_ready=True)
    assert pending.cancelled() and not running.cancelled()
    assert executor.terminated
    assert executor.shutdowns == [(True, True)] and fake_builds.reuse.current() is None
    backend.submit(lambda: 3)  # ensure_ready: the next batch gets a new executor
    assert fake_builds.reuse.current() not in (None, executor)


def test_nested_calls_run_sequentially() -> None:
    nested, n_jobs = AzureBatchBackend(nesting_level=0).get_nested_backend()
    assert isinstance(nested, SequentialBackend) and nested.nesting_level == 1
    assert n_jobs is None


def test_register_twice_is_harmless(monkeypatch) -> None:
    monkeypatch.setitem(BACKENDS, "azure_batch", BACKENDS.get("azure_batch", AzureBatchBackend))
    register_joblib()
    register_joblib()
    assert BACKENDS["azure_batch"] is AzureBatchBackend
    with joblib.parallel_config(backend="azure_batch", pool_id="p", max_workers=3):
        backend, _ = joblib.parallel.get_active_backend()
    assert isinstance(backend, AzureBatchBackend) and backend._max_workers == 3


def test_without_joblib_the_error_names_the_extra() -> None:
    code = ("import sys; sys.modules['joblib'] = None\n"
            "import azure_batch_executor.joblib_backend")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0
    assert "ImportError" in done.stderr
    assert 'pip install "azure-batch-executor[joblib]"' in done.stderr
