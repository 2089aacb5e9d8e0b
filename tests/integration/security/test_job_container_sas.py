"""A blob container per job (docs/security.md): the output SAS of a task of job A (create
and write on A's container, ``sr=c``, learn.microsoft.com/rest/api/storageservices/
create-service-sas) writes A's blobs and nothing of job B's, which Azurite refuses (403)
as Azure does; it reads nothing either. Shutdown with ``blob_retention=0`` deletes the
job's container; otherwise it stays, with an expiry marker in the shared container.

On the process-wide local stack, through the official SDKs, as someone holding a task's
definition would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobClient, BlobServiceClient

from azure_batch_executor import AzureBatchExecutor
from azure_batch_executor import constants as C
from azure_batch_executor.wire.layout import JobLayout

TIMEOUT = 300


@pytest.fixture
def service(shared_stack: Any) -> Iterator[Any]:
    client = BlobServiceClient.from_connection_string(shared_stack.storage_connection_string)
    yield client
    client.close()


def _output_sas_url(ex: AzureBatchExecutor, task_id: str) -> str:
    """The output files' containerUrl (with its SAS) in the task's definition."""
    task = ex._ctx.services.batch.client.get_task(ex.job_id, task_id)  # type: ignore[attr-defined]
    urls = {o.destination.container.container_url for o in task.output_files}
    assert len(urls) == 1
    return urls.pop()


def _blob(container_url_with_sas: str, container: str, blob: str) -> BlobClient:
    """A client for `container`/`blob` carrying the SAS of `container_url_with_sas`."""
    parts = urlsplit(container_url_with_sas)
    root = container_url_with_sas[:container_url_with_sas.index(parts.path)]
    account = parts.path.rsplit("/", 1)[0]  # Azurite: /<account>/<container>
    return BlobClient.from_blob_url(f"{root}{account}/{container}/{blob}?{parts.query}")


def test_a_tasks_output_sas_cannot_write_another_jobs_blobs(shared_stack: Any,
                                                            service: Any) -> None:
    with AzureBatchExecutor(max_workers=1, keep_job=True, blob_retention=0) as a, \
            AzureBatchExecutor(max_workers=1, keep_job=True, blob_retention=0) as b:
        assert a.submit(pow, 2, 5).result(TIMEOUT) == 32
        assert b.submit(pow, 3, 3).result(TIMEOUT) == 27
        lay_a, lay_b = a._ctx.services.layout, b._ctx.services.layout
        assert lay_a.container == a.job_id != lay_b.container == b.job_id
        sas_url = _output_sas_url(a, lay_a.task_id(0))
        assert urlsplit(sas_url).path.endswith("/" + lay_a.container)
        query = dict(p.split("=", 1) for p in urlsplit(sas_url).query.split("&"))
        assert query["sr"] == "c" and query["sp"] == "cw"

        # the SAS works, on job A's container: write (create) only
        _blob(sas_url, lay_a.container, f"{lay_a.prefix}probe.txt").upload_blob(b"mine")
        with pytest.raises(HttpResponseError) as read_own:
            _blob(sas_url, lay_a.container, lay_a.outputs_blob(0)).download_blob().readall()
        assert read_own.value.status_code == 403

        # ... and nothing of job B's: its outputs.pickle can be neither replaced nor read
        target = lay_b.outputs_blob(0)
        before = service.get_blob_client(lay_b.container, target).download_blob().readall()
        with pytest.raises(HttpResponseError) as write_b:
            _blob(sas_url, lay_b.container, target).upload_blob(b"evil", overwrite=True)
        assert write_b.value.status_code == 403
        assert write_b.value.error_code in ("AuthorizationFailure",
                                            "AuthorizationResourceTypeMismatch")
        with pytest.raises(HttpResponseError) as read_b:
            _blob(sas_url, lay_b.container, target).download_blob().readall()
        assert read_b.value.status_code == 403
        # nor the shared container (node environments, expiry markers)
        with pytest.raises(HttpResponseError) as shared:
            _blob(sas_url, C.DEFAULT_CONTAINER_NAME, "_environments/x/evil").upload_blob(b"x")
        assert shared.value.status_code == 403
        after = service.get_blob_client(lay_b.container, target).download_blob().readall()
        assert after == before

    # keep_job keeps the job's blobs with the job, even at blob_retention=0
    names = {c.name for c in service.list_containers(name_starts_with=lay_a.container[:3])}
    assert {lay_a.container, lay_b.container} <= names
    for container in (lay_a.container, lay_b.container):
        service.delete_container(container)


def test_shutdown_deletes_the_jobs_container_or_marks_it(shared_stack: Any,
                                                         service: Any) -> None:
    with AzureBatchExecutor(max_workers=1, blob_retention=0) as gone:
        assert gone.submit(pow, 2, 3).result(TIMEOUT) == 8
        container = gone._ctx.services.layout.container
        assert service.get_container_client(container).exists()
        props = service.get_container_client(container).get_container_properties()
        assert props.metadata == {"abx_job_id": gone.job_id}
    assert not service.get_container_client(container).exists()
    shared = service.get_container_client(C.DEFAULT_CONTAINER_NAME)
    assert not [n for n in shared.list_blob_names(name_starts_with=C.EXPIRY_PREFIX)
                if n.endswith("/" + gone.job_id)]
    assert not list(shared.list_blob_names(name_starts_with=gone.job_id + "/"))

    with AzureBatchExecutor(max_workers=1, blob_retention=3600) as kept:
        assert kept.submit(pow, 2, 4).result(TIMEOUT) == 16
    lay = JobLayout(kept.job_id)
    job_container = service.get_container_client(lay.container)
    assert lay.outputs_blob(0) in set(job_container.list_blob_names())
    (marker,) = [n for n in shared.list_blob_names(name_starts_with=C.EXPIRY_PREFIX)
                 if n.endswith("/" + kept.job_id)]
    assert JobLayout.read_expiry_marker(marker)[1] == kept.job_id
    service.delete_container(lay.container)
    shared.delete_blob(marker)
