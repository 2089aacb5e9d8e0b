"""Azurite as the local stack starts it: free port, in memory, real Blob API."""

import pytest
from azure.storage.blob import BlobServiceClient

from azure_batch_executor.local import AZURITE_ACCOUNT_NAME, Azurite


def test_two_instances_get_distinct_free_ports_and_serve_blobs() -> None:
    with Azurite() as first, Azurite() as second:
        assert first.blob_url != second.blob_url
        assert first.blob_url.endswith("/" + AZURITE_ACCOUNT_NAME)
        service = BlobServiceClient.from_connection_string(first.connection_string)
        container = service.create_container("probe")
        container.upload_blob("a/b.txt", b"payload")
        assert container.download_blob("a/b.txt").readall() == b"payload"
        # in memory and separate: the second instance has no such container
        other = BlobServiceClient.from_connection_string(second.connection_string)
        assert [c.name for c in other.list_containers()] == []


def test_stop_ends_the_process_and_is_idempotent() -> None:
    azurite = Azurite().start()
    proc = azurite._proc
    assert proc is not None and proc.poll() is None
    azurite.stop()
    assert proc.poll() is not None
    azurite.stop()


def test_external_azurite_is_used_as_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with Azurite() as real:
        base = real.blob_url.rsplit("/", 1)[0]
        monkeypatch.setenv("AZURITE_BLOB_URL", base)
        external = Azurite().start()
        assert external.blob_url == real.blob_url
        assert external._proc is None
        external.stop()
