"""Fixtures for the reusable executor's and the joblib backend's unit tests.

`FakeExecutor` stands in for AzureBatchExecutor (no stack, no requests): it records
how it was built and shut down, runs submitted callables at once, and can be made
broken. `fake_builds` gives a `reusable.ReusableExecutors` that builds them (passed in,
not patched in) and the list of those built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from joblib.parallel import BACKENDS

from azure_batch_executor import reusable
from azure_batch_executor.config import ENV_NAMES, Settings
from azure_batch_executor.errors import BrokenBatchExecutor
from azure_batch_executor.joblib_backend import BACKEND_NAME, AzureBatchBackend


class FakeExecutor:
    capacity = 6  # what max_workers=None resolves to (the pool's nodes x slots)

    def __init__(self, max_workers: int | None = None,
                 initializer: Callable[..., object] | None = None,
                 initargs: tuple[Any, ...] = (), **settings: Any) -> None:
        self.settings = Settings.resolve(**settings)
        self.max_workers = max_workers or self.capacity
        self.initializer, self.initargs = initializer, initargs
        self.job_id = f"job-{id(self):x}"
        self.shutdowns: list[tuple[bool, bool]] = []
        self.broken: BrokenBatchExecutor | None = None
        self.submitted: list[Future] = []
        self.terminated = False

    @property
    def shut_down(self) -> bool:
        return bool(self.shutdowns)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        if self.broken is not None:
            raise self.broken
        if self.shut_down:
            raise RuntimeError("cannot schedule new futures after shutdown")
        future: Future = Future()
        self.submitted.append(future)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.shutdowns.append((wait, cancel_futures))

    def terminate(self, wait: bool = False) -> None:
        self.terminated = True
        self.shutdowns.append((wait, True))


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV_NAMES.values():
        monkeypatch.delenv(var, raising=False)


class Builds(list):  # type: ignore[type-arg]
    """The fake executors built so far, by `reuse` (a `ReusableExecutors` of `FakeExecutor`)
    and `backend` (an `AzureBatchBackend` whose executors come from `reuse`)."""

    def __init__(self) -> None:
        super().__init__()
        self.reuse = reusable.ReusableExecutors(self.build)
        self.backend = type("FakeBackend", (AzureBatchBackend,),
                            {"reusable_executors": self.reuse})

    def build(self, *args: Any, **kwargs: Any) -> FakeExecutor:
        ex = FakeExecutor(*args, **kwargs)
        self.append(ex)
        return ex


@pytest.fixture
def fake_builds(monkeypatch: pytest.MonkeyPatch) -> Iterator[Builds]:
    """Executors built by a `ReusableExecutors` of `FakeExecutor`; joblib's "azure_batch"
    backend is the `Builds.backend` using it for the test (joblib's own registry)."""
    builds = Builds()
    monkeypatch.setitem(BACKENDS, BACKEND_NAME, builds.backend)
    yield builds
