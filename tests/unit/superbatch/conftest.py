"""Fixtures for the SuperBatch client's unit tests: a client wired to in-process fakes.

`FakeStore` keeps blobs in a dict; `FakeBatch` stands in for `batch.BatchService`
(the methods `superbatch.client.run()` and `batch.CompletionFeed` call). Adding a
task completes it at once: a command line containing "fail" fails with exit code 3
and a stderr blob, one containing "no-output" succeeds without uploading its
outputs, any other succeeds and uploads each output file's blob.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from azure_batch_executor import superbatch
from azure_batch_executor.cloud.batch import AddResult, CompletedTask
from azure_batch_executor.config import ENV_NAMES

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


class FakeStore:
    container_url = "https://fake.blob.core.windows.net/superbatchtest"

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def ensure_container(self) -> None:
        pass

    def sign(self) -> None:
        pass

    def read_url(self, blob_name: str) -> str:
        return f"{self.container_url}/{blob_name}?sp=r&sig=c2VjcmV0"

    def output_container_url(self) -> str:
        return f"{self.container_url}?sp=cw&sig=c2VjcmV0"

    def upload(self, blob_name: str, data: bytes) -> None:
        self.blobs[blob_name] = bytes(data)

    def upload_file(self, path, blob_name: str) -> None:
        with open(path, "rb") as f:
            self.upload(blob_name, f.read())

    def delete_prefix(self, prefix: str) -> int:
        names = [name for name in self.blobs if name.startswith(prefix)]
        for name in names:
            del self.blobs[name]
        return len(names)

    def download(self, blob_name: str) -> bytes | None:
        return self.blobs.get(blob_name)

    def tail(self, blob_name: str, nbytes: int = 2048) -> str:
        return self.blobs.get(blob_name, b"").decode()[-nbytes:]

    def close(self) -> None:
        pass


class FakeBatch:
    def __init__(self, store: FakeStore, pool_exists: bool) -> None:
        self.store = store
        self.pools: set[str] = set()
        self._pool_exists = pool_exists
        self.collections: list[int] = []
        self.completed: list[CompletedTask] = []
        self.jobs: dict[str, str] = {}
        self.ensure_pool_calls = 0
        self.registries: list[dict[str, str]] = []  # given to the last ensure_pool()

    def pool_exists(self, pool_id: str | None = None) -> bool:
        return self._pool_exists

    def ensure_pool(self, registries=()) -> int:
        self.ensure_pool_calls += 1
        self.registries = [dict(r) for r in registries]
        self._pool_exists = True
        return 4

    def create_job(self, job_id: str) -> None:
        self.jobs[job_id] = "active"

    def add_collection(self, job_id: str, texts: list[str]) -> list[AddResult]:
        assert len(texts) <= 100
        tasks = [json.loads(text) for text in texts]
        self.collections.append(len(tasks))
        for t in tasks:
            self._complete(t)
        return [AddResult(t["id"], True, False) for t in tasks]

    def _complete(self, task: dict[str, Any]) -> None:
        command = task["commandLine"]
        ok = "fail" not in command
        outputs = task["outputFiles"]
        for o in outputs:
            blob = o["destination"]["container"]["path"]
            if o["filePattern"] == "../stderr.txt":
                self.store.blobs[blob] = b"" if ok else b"Traceback ...\nValueError: bad seed 12\n"
            elif o["filePattern"] != "../stdout.txt" and ok and "no-output" not in command:
                self.store.blobs[blob] = task["id"].encode()
        self.completed.append(CompletedTask(
            task_id=task["id"], transition_time=dt.datetime.now(dt.timezone.utc),
            result="success" if ok else "failure", exit_code=0 if ok else 3,
            failure_code=None if ok else "FailureExitCode",
            failure_message=None if ok else "The task exited with a failure exit code",
        ))

    def task_counts(self, job_id: str) -> tuple[int, int, int]:
        return 0, 0, len(self.completed)

    def completed_since(self, job_id: str, since: dt.datetime | None) -> list[CompletedTask]:
        return [t for t in self.completed if since is None or t.transition_time > since]

    def check_alive(self, job_id: str) -> None:
        pass

    def terminate_job(self, job_id: str, reason: str = "UserTerminate") -> None:
        self.jobs[job_id] = "terminated"

    def delete_job(self, job_id: str) -> None:
        del self.jobs[job_id]

    def delete_pool(self) -> None:
        self._pool_exists = False

    def close(self) -> None:
        pass


class Fakes:
    def __init__(self) -> None:
        self.store = FakeStore()
        self.pool_exists = False
        self.batch: FakeBatch | None = None


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fakes]:
    f = Fakes()

    def connect(settings, stats, retry):
        f.batch = FakeBatch(f.store, f.pool_exists)
        return f.store, f.batch

    monkeypatch.setattr(superbatch, "_connect", connect)
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
        return superbatch.client(**args)

    return make
