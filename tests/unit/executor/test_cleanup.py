"""Blob retention: expiry markers (in the shared container), and the sweep that deletes the
containers of expired jobs (the prefixes of jobs made before containers per job)."""

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


def job_blobs(store: MemoryBlobStore, job_id: str, n: int = 3, own: bool = True
              ) -> JobLayout:
    """`n` outputs of job `job_id`, in its own container (`own`), or (a job made before
    containers per job) under its prefix in the shared container `store`."""
    lay = JobLayout(job_id)
    into = store.for_container(lay.container) if own else store
    for i in range(n):
        into.upload_creating_container(lay.outputs_blob(i), b"x")
    return lay


def cleanup_of(store: MemoryBlobStore, lay: JobLayout, retention: float,
               keep: bool = False) -> BlobCleanup:
    return BlobCleanup(store, store.for_container(lay.container), lay, retention, keep=keep)


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
    cleanup = cleanup_of(store, lay, retention=DAY)
    cleanup.started(NOW)  # a client that dies now: its blobs go after the job's limit + 1 day
    life = dt.timedelta(days=C.JOB_MAX_WALL_CLOCK_DAYS, seconds=DAY)
    assert markers(store) == [lay.expiry_marker(NOW + life)]
    end = NOW + dt.timedelta(hours=2)
    cleanup.finished(end)
    assert markers(store) == [lay.expiry_marker(end + dt.timedelta(seconds=DAY))]
    assert len(store.blob_names(lay.prefix)) == 3  # kept for the retention


def test_retention_zero_deletes_the_container_and_its_marker_at_the_end() -> None:
    store = MemoryBlobStore()
    lay = job_blobs(store, "job-a")
    other = job_blobs(store, "job-ab")  # a prefix of the name, not of the prefix
    cleanup = cleanup_of(store, lay, retention=0)
    cleanup.started(NOW)
    assert len(markers(store)) == 1
    cleanup.finished(NOW)
    assert store.blob_names(lay.prefix) == [] and markers(store) == []
    assert lay.container not in store.containers  # one request: the container
    assert len(store.blob_names(other.prefix)) == 3


def test_keep_job_keeps_the_container_at_retention_zero() -> None:
    store = MemoryBlobStore()
    lay = job_blobs(store, "job-a")
    cleanup = cleanup_of(store, lay, retention=0, keep=True)
    cleanup.started(NOW)
    (first,) = markers(store)
    cleanup.finished(NOW)  # kept with the job: it expires by the first marker
    assert markers(store) == [first] and len(store.blob_names(lay.prefix)) == 3
    assert sweep_expired(store, NOW + dt.timedelta(days=C.JOB_MAX_WALL_CLOCK_DAYS,
                                                   seconds=1)) == ["job-a"]
    assert store.blobs == {}


def test_the_sweep_deletes_a_job_made_before_containers_by_its_prefix() -> None:
    store = MemoryBlobStore()
    old = job_blobs(store, "abx-20200101-000000-deadbeef", own=False)
    new = job_blobs(store, "abx-20200101-000000-0badf00d")
    for lay in (old, new):
        store.upload(lay.expiry_marker(NOW), b"")
    assert sweep_expired(store, NOW) == [new.job_id, old.job_id]
    assert store.blobs == {} and new.container not in store.containers


@pytest.mark.parametrize("retention", [math.inf, 1e300])
def test_infinite_retention_marks_nothing(retention) -> None:
    store = MemoryBlobStore()
    lay = job_blobs(store, "job-a")
    cleanup = cleanup_of(store, lay, retention=retention)
    cleanup.started(NOW)
    cleanup.finished(NOW)
    assert markers(store) == [] and len(store.blob_names(lay.prefix)) == 3


def test_a_later_executor_sweeps_the_expired_prefixes_only() -> None:
    store = MemoryBlobStore()
    old, young, crashed = (job_blobs(store, j) for j in ("job-old", "job-young", "job-crashed"))
    ended = cleanup_of(store, old, retention=DAY)
    ended.started(NOW)
    ended.finished(NOW)  # expires NOW + 1 day
    cleanup_of(store, young, retention=7 * DAY).started(NOW)  # expires in 13 days
    cleanup_of(store, crashed, retention=0).started(NOW)  # died: expires in 6 days
    later = NOW + dt.timedelta(days=2)
    new = cleanup_of(store, job_blobs(store, "job-new"), retention=DAY)
    new.started(later)
    assert store.blob_names(old.prefix) == []
    assert len(store.blob_names(young.prefix)) == len(store.blob_names(crashed.prefix)) == 3
    assert sweep_expired(store, NOW + dt.timedelta(days=6, seconds=1)) == ["job-crashed"]
    assert sweep_expired(store, NOW + dt.timedelta(days=30)) == ["job-new", "job-young"]
    assert markers(store) == [] and store.blobs == {}


def test_the_sweep_is_bounded_oldest_first() -> None:
    store = MemoryBlobStore()
    for i in range(5):
        cleanup_of(store, job_blobs(store, f"job-{i}"), retention=0).started(NOW)
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
    cleanup = cleanup_of(store, JobLayout("job-a"), retention=DAY)
    cleanup.started(NOW)
    cleanup.finished(NOW)
    assert "could not mark the blobs of job job-a" in caplog.text
    assert "could not list the expired jobs' blobs" in caplog.text
