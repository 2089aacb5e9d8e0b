"""Fixtures for the executor's unit tests: an executor wired to in-process fakes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from executor_fakes import FAKE_SETTINGS, FakeBatchClient, FakeStore

from azure_batch_executor.cloud.batch import BatchService
from azure_batch_executor.cloud.retry import RetryPolicy
from azure_batch_executor.config import ENV_NAMES
from azure_batch_executor.engine import executor as executor_module


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV_NAMES.values():
        monkeypatch.delenv(var, raising=False)


class Fakes:
    def __init__(self) -> None:
        self.store: FakeStore | None = None
        self.client: FakeBatchClient | None = None
        self.slots = 4
        self.pool_exists = False
        self.executors: list = []


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fakes]:
    f = Fakes()

    def connect(settings, stats, retry):
        f.store = FakeStore(stats)
        batch = BatchService(settings, stats, RetryPolicy(attempts=3, initial=0.01, cap=0.05))
        f.client = FakeBatchClient(f.store, slots=f.slots, pool_exists=f.pool_exists)
        batch.client = f.client  # type: ignore[assignment]
        return f.store, batch

    monkeypatch.setattr(executor_module, "_connect", connect)
    yield f
    for ex in f.executors:
        ex.shutdown(wait=True, cancel_futures=True)
    if f.client is not None:
        f.client.hold.set()
        f.client.shutdown()


@pytest.fixture
def make_executor(fakes: Fakes):
    def make(max_workers=None, **kwargs):
        settings = dict(FAKE_SETTINGS)
        settings.update(kwargs)
        ex = executor_module.AzureBatchExecutor(max_workers=max_workers, **settings)
        fakes.executors.append(ex)
        return ex

    return make
