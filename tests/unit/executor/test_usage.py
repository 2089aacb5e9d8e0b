"""The usage record: what the meter adds up, and the one line it prints."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import pytest

from azure_batch_executor import Usage
from azure_batch_executor.cloud.ports import CompletedTask
from azure_batch_executor.cloud.retry import RequestStats
from azure_batch_executor.engine.usage import UsageMeter

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)


def task(task_id: str, start: float | None, end: float | None, node: str | None = "n1", *,
         result: str = "success", retries: int = 0, requeues: int = 0) -> CompletedTask:
    def at(s: float | None) -> dt.datetime | None:
        return None if s is None else T0 + dt.timedelta(seconds=s)

    return CompletedTask(task_id=task_id, transition_time=at(end), result=result,
                         exit_code=0, failure_code=None, failure_message=None,
                         start_time=at(start), end_time=at(end), retry_count=retries,
                         requeue_count=requeues, node_id=node)


def test_tasks_retries_requeues_and_times() -> None:
    stats = RequestStats()
    stats.add("batch.add", 2)
    stats.add("blob.get", 5)
    meter = UsageMeter(stats, "job-1", node_hour_price=0.5)
    meter.task_completed(task("t0", 0, 60, "n1"))
    meter.task_completed(task("t1", 30, 90, "n1", retries=2))  # shares n1's slots with t0
    meter.task_completed(task("t2", 0, 120, "n2", result="failure", requeues=1))
    meter.task_completed(task("t3", None, None, None, result="failure"))  # never started
    meter.uploaded(1000)
    meter.uploaded(24)
    meter.downloaded(512)
    meter.worker_report({"fetched": 1, "fetched_bytes": 300_000})
    meter.worker_report({"fetched": 0, "fetched_bytes": 0})
    meter.worker_report({})  # a worker of another version, or the fake's
    u = meter.snapshot()
    assert (u.job_id, u.tasks, u.failed_tasks, u.retries, u.requeues) == ("job-1", 4, 2, 2, 1)
    assert u.task_seconds == 60 + 60 + 120
    assert u.node_seconds == 90 + 120  # n1 from 0 to 90 s, n2 from 0 to 120 s
    assert u.nodes == 2 and u.node_hours == pytest.approx(210 / 3600)
    assert (u.bytes_uploaded, u.bytes_downloaded) == (1024, 512)
    assert (u.node_downloads, u.node_download_bytes) == (1, 300_000)
    assert u.requests == {"batch.add": 2, "blob.get": 5}
    assert u.node_hour_price == 0.5
    assert u.estimated_cost == pytest.approx(210 / 3600 * 0.5)


def test_the_line() -> None:
    u = Usage(job_id="abx-1", tasks=50, failed_tasks=1, retries=1, requeues=0,
              task_seconds=100.4, node_seconds=3725.0, nodes=2, bytes_uploaded=5_242_880,
              bytes_downloaded=3100, node_downloads=2, node_download_bytes=10_485_760,
              requests={"blob.get": 50, "batch.add": 1, "batch.list": 3},
              node_hour_price=0.096, estimated_cost=3725.0 / 3600 * 0.096)
    assert str(u) == (
        "usage of job abx-1: 50 tasks (1 failed, 1 retry, 0 requeues), task time 1m 40s, "
        "node time 1h 02m on 2 nodes; task data 5.2 MB up, 3.1 kB down; large arguments "
        "downloaded by nodes: 2 (10.5 MB); 54 requests (blob.get 50, batch.list 3, "
        "batch.add 1); estimated cost 0.09933 at 0.096 per node-hour")
    bare = str(Usage(job_id="abx-2"))
    assert bare == ("usage of job abx-2: 0 tasks (0 failed, 0 retries, 0 requeues), task time "
                    "0.0s, node time 0.0s on 0 nodes; task data 0 B up, 0 B down; 0 requests")


def test_a_snapshot_is_frozen_and_the_meter_thread_safe() -> None:
    meter = UsageMeter(RequestStats(), "job")

    def download() -> None:
        for _ in range(1000):
            meter.downloaded(1)

    threads = [threading.Thread(target=download) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    u = meter.snapshot()
    assert u.bytes_downloaded == 8000 and u.estimated_cost is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        u.tasks = 3  # type: ignore[misc]
