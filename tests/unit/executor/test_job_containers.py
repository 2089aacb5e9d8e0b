"""A blob container per job: its name (`JobLayout.container`, valid for any job id), the
task SAS scoped to it, and what an executor does with it (on the SDK and blob fakes).

Container names: learn.microsoft.com/rest/api/storageservices/naming-and-referencing-
containers--blobs--and-metadata ("Container names"); the signed resource of a service SAS
(``sr=c`` a container, ``sr=b`` a blob): learn.microsoft.com/rest/api/storageservices/
create-service-sas.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
from support.batch_sdk_fake import FAKE_SETTINGS

from azure_batch_executor import constants as C
from azure_batch_executor.cloud.retry import RequestStats, RetryPolicy
from azure_batch_executor.cloud.storage import BlobStore
from azure_batch_executor.config import Settings
from azure_batch_executor.wire.layout import (
    CONTAINER_JOB_KEY,
    JobLayout,
    is_container_name,
    job_container,
    new_job_id,
)

TIMEOUT = 60


def mul(a, b):
    return a * b


@pytest.mark.parametrize("prefix", ["abx", "my-team", "a1"])
def test_a_job_id_of_a_clean_prefix_is_its_own_container_name(prefix) -> None:
    job_id = new_job_id(prefix)
    assert JobLayout(job_id).container == job_id and is_container_name(job_id)


@pytest.mark.parametrize("job_id", [
    "My_Team-20260301-120000-0011aabb", "ABX-20260301-120000-0011aabb", "a__b",
    "_-_", "x", "-lead-", "Z" * 64, "a-" * 31 + "b", "team--x-20260301-120000-0011aabb",
    "é-ü-20260301-120000-0011aabb"])
def test_any_job_id_gets_a_valid_container_name(job_id) -> None:
    name = job_container(job_id)
    assert is_container_name(name), name
    assert 3 <= len(name) <= 63 and "--" not in name and name == name.lower()
    assert name == JobLayout(job_id).container  # deterministic


def test_sanitized_names_keep_the_job_ids_apart() -> None:
    ids = ["My_Job-20260301-120000-0011aabb", "my-job-20260301-120000-0011aabb",
           "MY_JOB-20260301-120000-0011aabb", "my__job-20260301-120000-0011aabb"]
    names = {job_container(j) for j in ids}
    assert len(names) == len(ids)
    assert job_container(ids[0]).startswith("my-job-20260301-120000-0011aabb-")


def test_names_that_are_not_container_names() -> None:
    for name in ("ab", "a" * 64, "-ab", "ab-", "a--b", "Abc", "a_b", "a.b"):
        assert not is_container_name(name), name


def _store() -> BlobStore:
    settings = Settings.resolve(env={}, **FAKE_SETTINGS)
    return BlobStore(settings, RequestStats(), RetryPolicy())


def _sas(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_the_output_sas_names_the_jobs_container_only() -> None:
    shared = _store()
    try:
        shared.sign()  # an account key: no request
        a, b = (JobLayout(new_job_id("abx")) for _ in range(2))
        assert a.container != b.container
        job_a = shared.for_container(a.container)
        out = job_a.output_container_url()
        assert urlsplit(out).path == f"/{a.container}"
        sas = _sas(out)
        assert sas["sr"] == "c" and sas["sp"] == "cw"  # create+write: no read, list, delete
        assert urlsplit(shared.for_container(b.container).output_container_url()).path \
            == f"/{b.container}"
        assert _sas(shared.for_container(b.container).output_container_url())["sig"] \
            != sas["sig"]  # signed for another container
        read = job_a.read_url(a.worker_blob())
        assert urlsplit(read).path == f"/{a.container}/{a.worker_blob()}"
        assert _sas(read)["sr"] == "b" and _sas(read)["sp"] == "r"
        # the shared container's SAS stays the shared container's
        env = shared.read_url(JobLayout.environment_blob("e1", "requirements.txt"))
        assert urlsplit(env).path.startswith(f"/{shared.container_name}/_environments/")
        assert shared.container_name == C.DEFAULT_CONTAINER_NAME
        expiry = dt.datetime.fromisoformat(sas["se"].replace("Z", "+00:00"))
        assert expiry == dt.datetime.fromisoformat(
            _sas(read)["se"].replace("Z", "+00:00"))  # the same validity as the key's
    finally:
        shared.close()


def test_each_executor_works_in_its_own_container(fakes, make_executor) -> None:
    first, second = make_executor(), make_executor()
    assert first.submit(mul, 2, 3).result(TIMEOUT) == 6
    assert second.submit(mul, 3, 4).result(TIMEOUT) == 12
    for ex in (first, second):  # each on fakes of its own (`Fakes.connect`)
        lay, store = ex._ctx.services.layout, ex._ctx.services.shared_store
        assert ex._ctx.services.store.container_name == lay.container
        assert store.containers[lay.container] == {CONTAINER_JOB_KEY: ex.job_id}
        mine = {n for n, c in store.container_of.items() if c == lay.container}
        assert {lay.worker_blob(), lay.outputs_blob(0)} <= mine
        task = next(iter(ex._ctx.services.batch.client.tasks[ex.job_id].values()))["body"]
        urls = [o["destination"]["container"]["containerUrl"] for o in task["outputFiles"]]
        assert {urlsplit(u).path for u in urls} == {f"/{lay.container}"}
    assert first._ctx.services.layout.container != second._ctx.services.layout.container


def test_shutdown_with_retention_zero_deletes_the_container(fakes, make_executor) -> None:
    ex = make_executor(blob_retention=0)
    assert ex.submit(mul, 3, 3).result(TIMEOUT) == 9
    container = ex._ctx.services.layout.container
    ex.shutdown()
    assert container not in fakes.store.containers
    assert container not in fakes.store.container_of.values()
    assert ex.request_counts()["blob.container_delete"] == 1  # one request, not a listing
    assert not fakes.store.blob_names(C.EXPIRY_PREFIX)


def test_shutdown_marks_the_container_in_the_shared_one(fakes, make_executor) -> None:
    ex = make_executor(blob_retention=3600)
    assert ex.submit(mul, 3, 3).result(TIMEOUT) == 9
    ex.shutdown()
    lay = ex._ctx.services.layout
    assert lay.container in fakes.store.containers  # kept for the retention
    (marker,) = fakes.store.blob_names(C.EXPIRY_PREFIX)
    assert marker.endswith("/" + ex.job_id)
    assert fakes.store.container_of[marker] == C.DEFAULT_CONTAINER_NAME
