"""Cleanup (issue 13, item 6): the job deleted once its results are collected (kept with
`keep_job`), its blob container deleted or marked for expiry by `blob_retention`, expired
jobs' containers (and the prefixes of jobs made before containers per job) swept by a
later executor, and `terminate()` one request for the job.

Checked through the official SDKs, as a user's tools would see it.
"""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import wait

import pytest
from azure.core.exceptions import ResourceNotFoundError
from support.waiting import wait_until

from azure_batch_executor import TaskTerminatedError
from azure_batch_executor import constants as C
from azure_batch_executor.wire.layout import JobLayout


def job_state(batch_client, job_id: str) -> str | None:
    """The job's state, or None once it is gone."""
    try:
        return str(batch_client.get_job(job_id, select=["id", "state"]).state).lower()
    except ResourceNotFoundError:
        return None


def blob_names(container, prefix: str) -> list[str]:
    return sorted(container.list_blob_names(name_starts_with=prefix))


def test_the_job_is_deleted_after_its_results_are_collected(make_batch_executor,
                                                            batch_client) -> None:
    with make_batch_executor(max_workers=2) as ex:
        assert list(ex.map(pow, [2, 3], [3, 3], timeout=300)) == [8, 27]
    def gone() -> bool:  # deleting, then gone
        state = job_state(batch_client, ex.job_id)
        assert state is None or state.endswith("deleting")
        return state is None

    wait_until(gone, "the job to be deleted")
    counts = ex.usage().requests
    assert counts["batch.delete_job"] == 1 and "batch.terminate_job" not in counts


def test_keep_job_keeps_it_terminated(make_batch_executor, batch_client) -> None:
    with make_batch_executor(max_workers=2, keep_job=True) as ex:
        assert ex.submit(pow, 2, 3).result(timeout=300) == 8
    wait_until(lambda: job_state(batch_client, ex.job_id).endswith("completed"),
               "the job to be terminated")
    job = batch_client.get_job(ex.job_id)
    assert job.execution_info.termination_reason == "AllWorkDone"
    assert [t.id for t in batch_client.list_tasks(ex.job_id)] == ["task-000000"]


def job_container(container, job_id: str):
    """The client of job `job_id`'s own container, beside the shared `container`."""
    return container._get_blob_service_client().get_container_client(
        JobLayout(job_id).container)


def test_blob_retention_zero_deletes_the_container_at_shutdown(make_batch_executor,
                                                              container) -> None:
    with make_batch_executor(max_workers=2, blob_retention=0) as ex:
        assert ex.submit(pow, 2, 3).result(timeout=300) == 8
        own = job_container(container, ex.job_id)
        assert blob_names(own, ex.job_id + "/")  # worker, outputs, logs
    assert not own.exists()
    assert ex.usage().requests["blob.container_delete"] == 1
    assert not [n for n in blob_names(container, C.EXPIRY_PREFIX) if n.endswith(ex.job_id)]


def test_blobs_are_kept_for_the_retention_and_marked(make_batch_executor, container) -> None:
    start = dt.datetime.now(dt.timezone.utc)
    with make_batch_executor(max_workers=2, blob_retention=3600) as ex:
        assert ex.submit(pow, 2, 3).result(timeout=300) == 8
    own = job_container(container, ex.job_id)
    assert f"{ex.job_id}/iter_0_outputs.pickle" in blob_names(own, ex.job_id + "/")
    mine = [n for n in blob_names(container, C.EXPIRY_PREFIX) if n.endswith("/" + ex.job_id)]
    assert len(mine) == 1  # the start's marker was replaced by the shutdown's
    deadline, job_id = JobLayout.read_expiry_marker(mine[0])
    assert job_id == ex.job_id
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    assert start + dt.timedelta(minutes=59) <= deadline <= later


def test_a_later_executor_deletes_expired_jobs_blobs(make_batch_executor, container) -> None:
    old = JobLayout("abx-20200101-000000-0badf00d")  # made before containers per job
    for name in (old.worker_blob(), old.outputs_blob(0), old.stderr_blob(0)):
        container.upload_blob(name, b"old", overwrite=True)
    expired = JobLayout("abx-20200101-000000-deadbeef")  # a job of its own container
    own = job_container(container, expired.job_id)
    own.create_container()
    own.upload_blob(expired.outputs_blob(0), b"old")
    markers = [lay.expiry_marker(dt.datetime(2020, 1, 8, tzinfo=dt.timezone.utc))
               for lay in (old, expired)]
    for marker in markers:
        container.upload_blob(marker, b"", overwrite=True)
    with make_batch_executor(max_workers=1) as ex:  # its start sweeps, in the background
        assert ex.submit(pow, 2, 2).result(timeout=300) == 4
    assert blob_names(container, old.prefix) == []
    assert not own.exists()
    assert not set(markers) & set(blob_names(container, C.EXPIRY_PREFIX))
    assert ex.usage().requests["blob.list"] >= 1


def test_terminate_is_one_request_for_the_job(make_batch_executor, batch_client) -> None:
    ex = make_batch_executor(max_workers=4)
    futures = [ex.submit(time.sleep, 120) for _ in range(6)]  # 4 run, 2 queued at Batch
    start = time.monotonic()
    while not all(f.running() for f in futures[:4]):  # the first four run
        assert time.monotonic() - start < 60, "tasks were not added"
        wait(futures, timeout=0.05)
    ex.terminate(wait=True)
    assert all(f.cancelled() for f in futures[4:])  # queued, never started: cancelled
    for f in futures[:4]:
        with pytest.raises(TaskTerminatedError):
            f.result(timeout=0)
    counts = ex.usage().requests
    assert counts["batch.terminate_job"] == 1
    assert "batch.terminate_task" not in counts and "batch.delete_job" not in counts
    assert job_state(batch_client, ex.job_id).endswith(("terminating", "completed"))
    # running tasks were terminated; an active one stays active but is never scheduled:
    # once the job is completed, the emulator schedules none of its tasks again
    wait_until(lambda: job_state(batch_client, ex.job_id).endswith("completed"),
               "the job to be terminated")
    states = {t.id: str(t.state).lower() for t in batch_client.list_tasks(ex.job_id)}
    assert len(states) == 6  # the two queued ones were added too, never run
    assert not [s for s in states.values() if s.endswith(("running", "preparing"))], states
