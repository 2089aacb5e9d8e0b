"""Blob retention: expiry markers, and the sweep that deletes expired job prefixes."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from support.memory_store import MemoryBlobStore

from azure_batch_executor import constants as C
from azure_batch_executor.engine.cleanup import BlobCleanup, sweep_expired
from azure_batch_executor.wire.layout import JobLayout

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
DAY = 86400.0


def job_blobs(store: MemoryBlobStore, job_id: str, n: int = 3) -> JobLayout:
    lay = JobLayout(job_id)
    for i in range(n):
        store.upload(lay.outputs_blob(i), b"x")
    return lay


def markers(store: MemoryBlobStore) -> list[str]:
    return sorted(store.blob_names(C.EXPIRY_PREFIX))


def test_marker_names_round_trip() -> None:
    lay = JobLayout("abx-20260301-120000-0011aabb")
    name = lay.expiry_marker(NOW + dt.timedelta(days=7))
    assert name == "_expires/20260308T120000Z/abx-20260301-120000-0011aabb"
    assert JobLayout.read_expiry_marker(name) == (NOW + dt.timedelta(days=7), lay.job_id)
    for other in ("_expires/garbage/job", "_expires/20260308T120000Z/", "job/x",
                  "_expires/20260308T120000Z/a/b"):
        assert JobLayout.read_expiry_marker(other) is None


def test_start_marks_for_the_jobs_whole_life_and_the_end_for_the_retention() -> None:
    store = MemoryBlobStore()
    lay = job_blobs(store, "job-a")
    cleanup = BlobCleanup(store, lay, retention=DAY)
    cleanup.started(NOW)  # a client that dies now: its blobs go after the job's limit + 1 day
    life = dt.timedelta(days=C.JOB_MAX_WALL_CLOCK_DAYS, seconds=DAY)
    assert markers(store) == [lay.expiry_marker(NOW + life)]
    end = NOW + dt.timedelta(hours=2)
    cleanup.finished(end)
    assert markers(store) == [lay.expiry_marker(end + dt.timedelta(seconds=DAY))]
    assert len(store.blob_names(lay.prefix)) == 3  # kept for the retention


def test_retention_zero_deletes_the_prefix_and_its_marker_at_the_end() -> None:
    store = MemoryBlobStore()
    lay = job_blobs(store, "job-a")
    other = job_blobs(store, "job-ab")  # a prefix of the name, not of the prefix
    cleanup = BlobCleanup(store, lay, retention=0)
    cleanup.started(NOW)
    assert len(markers(store)) == 1
    cleanup.finished(NOW)
    assert store.blob_names(lay.prefix) == [] and markers(store) == []
    assert len(store.blob_names(other.prefix)) == 3


@pytest.mark.parametrize("retention", [math.inf, 1e300])
def test_infinite_retention_marks_nothing(retention) -> None:
    store = MemoryBlobStore()
    lay = job_blobs(store, "job-a")
    cleanup = BlobCleanup(store, lay, retention=retention)
    cleanup.started(NOW)
    cleanup.finished(NOW)
    assert markers(store) == [] and len(store.blob_names(lay.prefix)) == 3


def test_a_later_executor_sweeps_the_expired_prefixes_only() -> None:
    store = MemoryBlobStore()
    old, young, crashed = (job_blobs(store, j) for j in ("job-old", "job-young", "job-crashed"))
    ended = BlobCleanup(store, old, retention=DAY)
    ended.started(NOW)
    ended.finished(NOW)  # expires NOW + 1 day
    BlobCleanup(store, young, retention=7 * DAY).started(NOW)  # expires in 13 days
    BlobCleanup(store, crashed, retention=0).started(NOW)  # died: expires in 6 days
    later = NOW + dt.timedelta(days=2)
    new = BlobCleanup(store, job_blobs(store, "job-new"), retention=DAY)
    new.started(later)
    assert store.blob_names(old.prefix) == []
    assert len(store.blob_names(young.prefix)) == len(store.blob_names(crashed.prefix)) == 3
    assert sweep_expired(store, NOW + dt.timedelta(days=6, seconds=1)) == ["job-crashed"]
    assert sweep_expired(store, NOW + dt.timedelta(days=30)) == ["job-new", "job-young"]
    assert markers(store) == [] and store.blobs == {}


def test_the_sweep_is_bounded_oldest_first() -> None:
    store = MemoryBlobStore()
    for i in range(5):
        BlobCleanup(store, job_blobs(store, f"job-{i}"), retention=0).started(NOW)
    later = NOW + dt.timedelta(days=7)
    assert sweep_expired(store, later, limit=2) == ["job-0", "job-1"]
    assert sweep_expired(store, later, limit=2) == ["job-2", "job-3"]
    assert sweep_expired(store, later) == ["job-4"]
    assert sweep_expired(store, later) == []


class Refusing(MemoryBlobStore):
    def upload(self, blob_name: str, data: bytes) -> None:
        raise OSError("storage said no")

    def blob_names(self, prefix: str) -> list[str]:
        raise OSError("storage said no")


def test_failures_are_logged_never_raised(caplog) -> None:
    store = Refusing()
    cleanup = BlobCleanup(store, JobLayout("job-a"), retention=DAY)
    cleanup.started(NOW)
    cleanup.finished(NOW)
    assert "could not mark the blobs of job job-a" in caplog.text
    assert "could not list the expired job prefixes" in caplog.text
