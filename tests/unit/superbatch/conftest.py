"""Fixtures for the SuperBatch client's unit tests: a client wired to the shared fakes.

`make_client` builds a subclass of `superbatch.client` whose `connect` returns a
`support.memory_store.MemoryBlobStore` and a `support.batch_service_fake.ScriptedBatch`
(adding a task completes it at once, its outcome read off its command line).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from support.batch_service_fake import ScriptedBatch
from support.memory_store import MemoryBlobStore

from azure_batch_executor import superbatch
from azure_batch_executor.cloud.retry import RequestStats, RetryPolicy
from azure_batch_executor.config import ENV_NAMES, Settings

BATCH_KEY = base64.b64encode(b"batch-secret-key-for-tests").decode()
STORAGE_KEY = base64.b64encode(b"storage-secret-key-for-tests").decode()
AZURE_ENV = {
    "BATCH_ACCOUNT_NAME": "fake",
    "BATCH_ACCOUNT_KEY": BATCH_KEY,
    "BATCH_ACCOUNT_URL": "https://fake.westeurope.batch.azure.com",
    "STORAGE_ACCOUNT_KEY": STORAGE_KEY,
    "STORAGE_ACCOUNT_CONNECTION_STRING": (
        f"DefaultEndpointsProtocol=https;AccountName=fake;AccountKey={STORAGE_KEY};"
        "EndpointSuffix=core.windows.net"
    ),
}
SEED_VARS = (*ENV_NAMES.values(), "REGISTRY_SERVER", "REGISTRY_USERNAME", "REGISTRY_PASSWORD")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in SEED_VARS:
        monkeypatch.delenv(var, raising=False)


class Fakes:
    def __init__(self) -> None:
        self.store = MemoryBlobStore(
            container_url="https://fake.blob.core.windows.net/superbatchtest")
        self.pool_exists = False
        self.batch: ScriptedBatch | None = None

    def connect(self, settings: Settings, stats: RequestStats, retry: RetryPolicy
                ) -> tuple[MemoryBlobStore, ScriptedBatch]:
        self.batch = ScriptedBatch(self.store, self.pool_exists)
        return self.store, self.batch

    def client_class(self) -> type[superbatch.client]:
        """`superbatch.client` reaching these fakes (its `connect` replaced)."""
        return type("FakeClient", (superbatch.client,), {"connect": staticmethod(self.connect)})


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fakes]:
    f = Fakes()
    for name, value in AZURE_ENV.items():
        monkeypatch.setenv(name, value)
    yield f


@pytest.fixture
def make_client(fakes: Fakes, tmp_path):
    """A client on the fakes with the walkthrough's arguments; override any by keyword."""

    def make(**kwargs: Any) -> superbatch.client:
        args: dict[str, Any] = dict(
            POOL_ID="superbatchtest", JOB_ID="superbatchtest20240101000000",
            POOL_VM_SIZE="STANDARD_A1_v2", POOL_NODE_COUNT=0, POOL_LOW_PRIORITY_NODE_COUNT=2,
            DELETE_POOL_WHEN_DONE=False, BLOB_CONTAINER_NAME="superbatchtest",
            BATCH_DIRECTORY=str(tmp_path), DOCKER_IMAGE="myusername/sum-of-powers:v1",
            COMMAND_LINE="python3 worker.py",
        )
        args.update(kwargs)
        return fakes.client_class()(**args)

    return make
