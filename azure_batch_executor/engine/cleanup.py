"""Cleanup: when a job's blobs go, without counting on the client to live that long.

Role: the blob side of an executor's end (the Batch side, deleting the job or, with
``keep_job``, terminating it, is the manager's `Manager.end_job`). Every job's blobs live
in its own container (`wire.layout.JobLayout.container`); the expiry markers live in the
shared container (the `container_name` setting). Per executor, by its `blob_retention`
setting:

    first tasks    when the executor sends its first tasks, in the background: an expiry
                   marker at now + the job's wall-clock limit + blob_retention, so that
                   the blobs of a client that dies before its shutdown expire too; then a
                   sweep of the shared container's markers: the containers of the expired
                   jobs (SWEEP_LIMIT at most) deleted with their markers
    at shutdown    blob_retention == 0: the job's container deleted now (one request) with
                   its marker (with ``keep_job``, kept for a reattach: the first marker
                   stays); otherwise a marker at now + blob_retention replaces the first
    math.inf       no marker ever: the blobs stay until deleted by hand

A marker is an empty blob ``_expires/<UTC deadline>/<job id>``
(`wire.layout.JobLayout.expiry_marker`), so one listing of ``_expires/`` finds every
expired job without reading a blob. A job made before containers per job has its blobs
under ``<job id>/`` in the shared container: when it has no container of its own, the
sweep deletes that prefix instead. Any executor of this package on the shared container
sweeps when it sends its first tasks, and the ``cleanup`` command does the same (and
more). Every request here is best effort: a failure is logged, never raised.
docs/cost.md#cleanup is the user's side of this.
"""

from __future__ import annotations

import datetime as dt
import logging
import math

from .. import constants as C
from ..cloud.ports import BlobPort
from ..config import first_line
from ..wire.layout import JobLayout

log = logging.getLogger(__name__)

_CENTURY = 100 * 365.25 * 86400.0  # seconds


class BlobCleanup:
    """The expiry of one job's container (`job`), by `retention` seconds; its markers go in
    the shared container (`shared`). `keep`: the job is kept (``keep_job``), and so are
    its blobs at a retention of 0, until the first marker's deadline."""

    def __init__(self, shared: BlobPort, job: BlobPort, layout: JobLayout, retention: float,
                 keep: bool = False) -> None:
        self.shared = shared
        self.job = job
        self.layout = layout
        # a century or more: never (a date that far would not even be representable)
        self.retention = retention if retention < _CENTURY else math.inf
        self.keep = keep
        self.marker: str | None = None  # this job's expiry marker, once written

    def started(self, now: dt.datetime | None = None) -> None:
        """When the first tasks go out: mark the job for expiry, then sweep expired ones."""
        now = now or dt.datetime.now(dt.timezone.utc)
        if math.isfinite(self.retention):
            lifetime = dt.timedelta(days=C.JOB_MAX_WALL_CLOCK_DAYS, seconds=self.retention)
            self.marker = self._mark(now + lifetime)
        sweep_expired(self.shared, now)

    def finished(self, now: dt.datetime | None = None) -> None:
        """At the executor's end: delete the job's container now (retention 0) or mark it
        for deletion after the retention."""
        now = now or dt.datetime.now(dt.timezone.utc)
        if not math.isfinite(self.retention):
            return
        old, new = self.marker, None
        try:
            if self.retention == 0 and self.keep:
                log.info("kept the blobs of job %s with the job (keep_job=True): they "
                         "expire with its wall-clock limit", self.layout.job_id)
                return
            if self.retention == 0:
                self.job.delete_container()
                log.info("deleted the container %s of job %s (blob_retention=0)",
                         self.job.container_name, self.layout.job_id)
            else:
                new = self._mark(now + dt.timedelta(seconds=self.retention))
                if new is None:  # the first marker still expires them, later
                    return
            if old is not None:
                self.shared.delete_prefix(old)
            self.marker = new
        except Exception as exc:  # noqa: BLE001 - best effort: a later sweep deletes them
            log.warning("could not clean up the blobs of job %s: %s", self.layout.job_id,
                        first_line(exc))

    def _mark(self, deadline: dt.datetime) -> str | None:
        marker = self.layout.expiry_marker(deadline)
        try:
            self.shared.upload_creating_container(marker, b"")
        except Exception as exc:  # noqa: BLE001 - best effort: the blobs stay, said once
            log.warning("could not mark the blobs of job %s for deletion after %s (they "
                        "stay until deleted by hand): %s", self.layout.job_id,
                        deadline.isoformat(timespec="seconds"), first_line(exc))
            return None
        return marker


def delete_job_blobs(shared: BlobPort, job_id: str) -> str:
    """Delete the blobs of job `job_id`: its container (one request), or, for a job made
    before containers per job (no container of its own), its prefix ``<job id>/`` in the
    shared container. Returns what went: the container's name or the prefix."""
    layout = JobLayout(job_id)
    if layout.container != shared.container_name \
            and shared.for_container(layout.container).delete_container():
        return layout.container
    shared.delete_prefix(layout.prefix)
    return layout.prefix


def sweep_expired(store: BlobPort, now: dt.datetime | None = None,
                  limit: int = C.SWEEP_LIMIT) -> list[str]:
    """Delete the blobs of the jobs whose expiry marker (in `store`, the shared container)
    is past `now` (the `limit` oldest), then their markers; return their job ids. One
    listing when nothing expired."""
    now = now or dt.datetime.now(dt.timezone.utc)
    try:
        names = store.blob_names(C.EXPIRY_PREFIX)
    except Exception as exc:  # noqa: BLE001 - best effort: the next executor sweeps
        log.warning("could not list the expired jobs' blobs: %s", first_line(exc))
        return []
    expired = sorted((marker, name) for name in names
                     if (marker := JobLayout.read_expiry_marker(name)) and marker[0] <= now)
    done: list[str] = []
    for (_, job_id), name in expired[:limit]:
        try:
            delete_job_blobs(store, job_id)
            store.delete_prefix(name)
        except Exception as exc:  # noqa: BLE001 - left for the next sweep
            log.warning("could not delete the expired blobs of job %s: %s", job_id,
                        first_line(exc))
            continue
        done.append(job_id)
    if done:
        log.info("deleted the expired blobs of %d earlier job(s): %s", len(done),
                 ", ".join(done))
    return done
