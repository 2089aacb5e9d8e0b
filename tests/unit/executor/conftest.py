"""Fixtures for the executor's unit tests: an executor wired to in-process fakes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.batch_sdk_fake import FAKE_SETTINGS, FakeBatchClient
from support.memory_store import MemoryBlobStore

from azure_batch_executor.cloud.batch import BatchService
from azure_batch_executor.cloud.retry import RequestStats, RetryPolicy
from azure_batch_executor.config import ENV_NAMES, Settings
from azure_batch_executor.engine.executor import AzureBatchExecutor


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV_NAMES.values():
        monkeypatch.delenv(var, raising=False)


class Fakes:
    def __init__(self) -> None:
        self.store: MemoryBlobStore | None = None
        self.client: FakeBatchClient | None = None
        self.slots = 4
        self.pool_exists = False
        self.executors: list = []

    def connect(self, settings: Settings, stats: RequestStats, retry: RetryPolicy
                ) -> tuple[MemoryBlobStore, BatchService]:
        """The executor's `connect`: the memory store, and the real BatchService on the
        SDK fake (fast retries)."""
        self.store = MemoryBlobStore(stats)
        self.client = FakeBatchClient(self.store, slots=self.slots, pool_exists=self.pool_exists)
        batch = BatchService(settings, stats, RetryPolicy(attempts=3, initial=0.01, cap=0.05),
                             client=self.client)
        return self.store, batch

    def executor_class(self) -> type[AzureBatchExecutor]:
        """`AzureBatchExecutor` reaching these fakes (its `connect` replaced)."""
        return type("FakeExecutor", (AzureBatchExecutor,), {"connect": staticmethod(self.connect)})


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    f = Fakes()
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
        ex = fakes.executor_class()(max_workers=max_workers, **settings)
        fakes.executors.append(ex)
        return ex

    return make
