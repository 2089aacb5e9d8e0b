"""What an executor leaves behind, and its usage record (on the SDK and blob fakes)."""

from __future__ import annotations

import logging

import pytest

from azure_batch_executor import ConfigurationError, Usage
from azure_batch_executor import constants as C

TIMEOUT = 60


def mul(a, b):
    return a * b


def task_bodies(fakes, ex) -> list[dict]:
    return [t["body"] for t in fakes.client.tasks[ex.job_id].values()]


@pytest.mark.parametrize(("settings", "retention"), [({}, "PT1H"),
                                                     ({"task_retention": 90}, "PT1M30S")])
def test_every_task_sets_its_retention_time(fakes, make_executor, settings, retention) -> None:
    ex = make_executor(keep_job=True, **settings)
    assert ex.submit(mul, 2, 3).result(TIMEOUT) == 6
    assert list(ex.map(mul, [1], [2], timeout=TIMEOUT)) == [2]
    bodies = task_bodies(fakes, ex)
    assert len(bodies) == 2
    assert {b["constraints"]["retentionTime"] for b in bodies} == {retention}


def test_usage_counts_the_tasks_bytes_and_requests(fakes, make_executor, caplog) -> None:
    caplog.set_level(logging.INFO, logger="azure_batch_executor")
    ex = make_executor(node_hour_price=0.5)
    assert list(ex.map(mul, range(5), range(5), chunksize=1)) == [0, 1, 4, 9, 16]
    live = ex.usage()
    assert isinstance(live, Usage) and live.job_id == ex.job_id and live.tasks == 5
    ex.shutdown()
    u = ex.usage()
    assert (u.tasks, u.failed_tasks, u.retries, u.requeues) == (5, 0, 0, 0)
    assert u.bytes_uploaded > 0  # the map function
    outputs = [fakes.store.blobs[ex._ctx.services.layout.outputs_blob(i)] for i in range(5)]
    assert u.bytes_downloaded == sum(len(o) for o in outputs)
    assert u.requests["batch.add"] >= 1 and u.requests["batch.delete_job"] == 1
    assert u.requests["blob.get"] == 5
    assert u.node_hour_price == 0.5 and u.estimated_cost == u.node_hours * 0.5
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("usage of job")]
    assert lines == [str(u)]
    assert f"usage of job {ex.job_id}: 5 tasks (0 failed" in lines[0]
    assert "estimated cost" in lines[0]


def test_blob_retention_zero_deletes_the_jobs_blobs_at_shutdown(fakes, make_executor) -> None:
    ex = make_executor(blob_retention=0)
    assert ex.submit(mul, 3, 3).result(TIMEOUT) == 9
    ex.shutdown()
    assert not [n for n in fakes.store.blobs if n.startswith(ex.job_id + "/")]
    assert not fakes.store.blob_names(C.EXPIRY_PREFIX)


def test_blob_retention_marks_the_prefix_for_later_executors(fakes, make_executor) -> None:
    ex = make_executor(blob_retention=3600)
    assert ex.submit(mul, 3, 3).result(TIMEOUT) == 9
    ex.shutdown()
    assert [n for n in fakes.store.blobs if n.startswith(ex.job_id + "/")]  # kept for now
    (marker,) = fakes.store.blob_names(C.EXPIRY_PREFIX)  # the start's marker replaced
    assert marker.endswith("/" + ex.job_id)


@pytest.mark.parametrize(("setting", "value", "match"), [
    ("task_retention", -1, "seconds >= 0"),
    ("task_retention", float("inf"), "seconds >= 0"),
    ("blob_retention", "7d", r"math.inf: never"),
    ("node_hour_price", -0.1, "price of one node-hour"),
    ("keep_job", "yes", "True or False"),
])
def test_bad_settings_name_the_setting(make_executor, setting, value, match) -> None:
    with pytest.raises(ConfigurationError, match=f"{setting}=.*{match}"):
        make_executor(**{setting: value})
