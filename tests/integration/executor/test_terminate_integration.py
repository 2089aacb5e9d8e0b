"""terminate(): the tasks already added are ended on Batch and every future resolves."""

from __future__ import annotations

import time
from concurrent.futures import wait

import pytest
from support.waiting import wait_until

from azure_batch_executor import TaskTerminatedError


@pytest.fixture
def batch_client(local_stack):
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    client = BatchClient(local_stack.batch_account_url, AzureNamedKeyCredential(
        local_stack.batch_account_name, local_stack.batch_account_key))
    yield client
    client.close()


def _live_tasks(batch_client, job_id: str) -> list[str]:
    """The job's tasks still running. terminate() is one request for the job ("Job -
    Terminate", REST): Batch terminates its running tasks, and its active ones "will remain
    in the active state" but "will not be scheduled" once the job is terminated."""
    job = str(batch_client.get_job(job_id, select=["id", "state"]).state).lower()
    assert job.endswith(("terminating", "completed")), job
    # once the job is completed its tasks are never scheduled again: wait for that
    wait_until(lambda: str(batch_client.get_job(job_id, select=["id", "state"]).state)
               .lower().endswith("completed"), "the job to be terminated")
    states = {t.id: str(t.state).lower() for t in batch_client.list_tasks(
        job_id, select=["id", "state"])}
    return [i for i, s in states.items() if s.endswith(("running", "preparing"))]


@pytest.mark.parametrize("how", ["terminate", "shutdown"])
def test_terminate_ends_the_tasks_in_flight_and_resolves_every_future(
    make_batch_executor, batch_client, how: str
) -> None:
    ex = make_batch_executor(max_workers=3)
    futures = [ex.submit(time.sleep, 120) for _ in range(6)]  # 3 added, 3 queued
    start = time.monotonic()
    while not all(f.running() for f in futures[:3]):  # Batch accepted the first three
        assert time.monotonic() - start < 60, "tasks were not added"
        wait(futures, timeout=0.05)
    if how == "terminate":
        ex.terminate()
    else:
        ex.shutdown(wait=False, cancel_futures=True, terminate=True)
    _, not_done = wait(futures, timeout=30)
    assert not not_done and time.monotonic() - start < 60
    assert all(f.cancelled() for f in futures[3:])
    for f in futures[:3]:
        with pytest.raises(TaskTerminatedError, match="terminated"):
            f.result()
    assert _live_tasks(batch_client, ex.job_id) == []
    ex.shutdown(wait=True)  # the poller is gone already; nothing left to wait for
    with pytest.raises(RuntimeError):
        ex.submit(pow, 2, 2)


def test_terminate_with_nothing_in_flight(make_batch_executor) -> None:
    ex = make_batch_executor(max_workers=2)
    assert ex.submit(pow, 2, 5).result(timeout=60) == 32
    ex.terminate(wait=True)
    assert ex.shut_down
