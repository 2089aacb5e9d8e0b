"""The Blob and Batch layers' cleanup and pool requests on the local stack (Azurite and the
Batch emulator): streamed file uploads, deletion by prefix, pool_exists, registries for a
new pool, delete_job."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator

import pytest
from azure.core.exceptions import ResourceNotFoundError, ServiceResponseError

from azure_batch_executor.cloud import storage as storage
from azure_batch_executor.cloud.batch import BatchService
from azure_batch_executor.cloud.codes import lower
from azure_batch_executor.cloud.retry import RequestStats, RetryPolicy
from azure_batch_executor.cloud.storage import BlobStore
from azure_batch_executor.config import Settings
from azure_batch_executor.engine.accounts import connect, with_local_stack

REGISTRY = {"registryServer": "reg.azurecr.io", "username": "reg", "password": "pw"}


@pytest.fixture
def layers(local_stack) -> Iterator[tuple[BlobStore, BatchService, RequestStats]]:
    settings = with_local_stack(Settings.resolve(
        env={}, container_name="layers-it", pool_id=f"layers-{uuid.uuid4().hex[:8]}"))
    stats = RequestStats()
    store, batch = connect(settings, stats, RetryPolicy(attempts=3, initial=0.01, cap=0.05))
    store.ensure_container()
    store.sign()
    yield store, batch, stats
    batch.close()
    store.close()


def test_upload_file_streams_a_file_and_reads_it_again_on_retry(layers, tmp_path,
                                                                monkeypatch) -> None:
    store, _, stats = layers
    path = tmp_path / "inputs.pickle"
    data = os.urandom(3 * 1024 * 1024 + 5)
    path.write_bytes(data)
    real_upload = store._container.upload_blob
    attempts = []

    def drops_the_connection_once(name, stream, **kw):
        attempts.append(name)
        if len(attempts) == 1:
            stream.read(1024 * 1024)  # part of the file went out, then the connection broke
            raise ServiceResponseError("connection reset (injected)")
        return real_upload(name, stream, **kw)

    monkeypatch.setattr(store._container, "upload_blob", drops_the_connection_once)
    blob = f"job-{uuid.uuid4().hex[:8]}/inputs.pickle"
    store.upload_file(path, blob)
    assert len(attempts) == 2
    assert store.download(blob) == data
    assert stats.snapshot()["blob.put"] == 2


def test_delete_prefix_deletes_that_job_only_in_batches(layers, monkeypatch) -> None:
    store, _, stats = layers
    monkeypatch.setattr(storage, "_DELETE_BATCH", 2)  # 5 blobs: 3 batch requests
    job, other = f"job-{uuid.uuid4().hex[:8]}/", f"job-{uuid.uuid4().hex[:8]}/"
    for i in range(5):
        store.upload(f"{job}iter_{i}_outputs.pickle", b"x")
    store.upload(f"{other}iter_0_outputs.pickle", b"kept")
    assert store.delete_prefix(job) == 5
    assert store.blob_names(job) == []
    assert store.download(f"{other}iter_0_outputs.pickle") == b"kept"
    assert stats.snapshot()["blob.delete"] == 3
    assert store.delete_prefix(job) == 0  # nothing left: no error
    with pytest.raises(ValueError, match="empty prefix"):
        store.delete_prefix("")


def test_pool_exists_and_a_new_pool_with_registries(layers) -> None:
    _, batch, _ = layers
    assert batch.pool_exists() is False
    image = "reg.azurecr.io/img:v1"
    settings = dataclasses.replace(batch._settings, container_image=image)
    containers = BatchService(settings, RequestStats(), RetryPolicy())
    try:
        containers.ensure_pool(registries=[REGISTRY])
        assert batch.pool_exists() is True
        pool = batch.client.get_pool(settings.pool_id)
        config = pool.virtual_machine_configuration.container_configuration
        assert config.container_image_names == [image]
        assert [r.registry_server for r in config.container_registries] == ["reg.azurecr.io"]
    finally:
        containers.delete_pool()
        containers.close()


def test_delete_job(layers) -> None:
    _, batch, _ = layers
    batch.ensure_pool()
    job_id = f"layers-{uuid.uuid4().hex[:8]}"
    batch.create_job(job_id)
    batch.delete_job(job_id)
    try:
        state = lower(batch.client.get_job(job_id).state)
    except ResourceNotFoundError as exc:  # already gone
        assert "JobNotFound" in str(exc)
    else:
        assert state == "deleting"
    batch.delete_pool()
