"""Cleanup: when a job's blobs go, without counting on the client to live that long.

Role: the blob side of an executor's end (the Batch side, deleting the job or, with
``keep_job``, terminating it, is the manager's `Manager.end_job`). Per executor, by its
`blob_retention` setting:

    first tasks    when the executor sends its first tasks, in the background: an expiry
                   marker at now + the job's wall-clock limit + blob_retention, so that
                   the blobs of a client that dies before its shutdown expire too; then a
                   sweep of the container: the expired prefixes (SWEEP_LIMIT at most)
                   deleted with their markers
    at shutdown    blob_retention == 0: the prefix and the marker deleted now; otherwise a
                   marker at now + blob_retention replaces the first one
    math.inf       no marker ever: the blobs stay until deleted by hand

A marker is an empty blob ``_expires/<UTC deadline>/<job id>``
(`wire.layout.JobLayout.expiry_marker`), so one listing of ``_expires/`` finds every
expired prefix of the container without reading a blob. Any executor of this package on
the container sweeps them when it sends its first tasks, and `sweep_expired` is what a ``cleanup``
command runs. Every request here is best effort: a failure is logged, never raised.
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
    """The expiry of one job's blob prefix (`layout.prefix`), by `retention` seconds."""

    def __init__(self, store: BlobPort, layout: JobLayout, retention: float) -> None:
        self.store = store
        self.layout = layout
        # a century or more: never (a date that far would not even be representable)
        self.retention = retention if retention < _CENTURY else math.inf
        self.marker: str | None = None  # this job's expiry marker, once written

    def started(self, now: dt.datetime | None = None) -> None:
        """When the first tasks go out: mark the prefix for expiry, then sweep expired ones."""
        now = now or dt.datetime.now(dt.timezone.utc)
        if math.isfinite(self.retention):
            lifetime = dt.timedelta(days=C.JOB_MAX_WALL_CLOCK_DAYS, seconds=self.retention)
            self.marker = self._mark(now + lifetime)
        sweep_expired(self.store, now)

    def finished(self, now: dt.datetime | None = None) -> None:
        """At the executor's end: delete the prefix now (retention 0) or mark it for
        deletion after the retention."""
        now = now or dt.datetime.now(dt.timezone.utc)
        if not math.isfinite(self.retention):
            return
        old, new = self.marker, None
        try:
            if self.retention == 0:
                n = self.store.delete_prefix(self.layout.prefix)
                log.info("deleted the %d blobs of job %s (blob_retention=0)", n,
                         self.layout.job_id)
            else:
                new = self._mark(now + dt.timedelta(seconds=self.retention))
                if new is None:  # the first marker still expires them, later
                    return
            if old is not None:
                self.store.delete_prefix(old)
            self.marker = new
        except Exception as exc:  # noqa: BLE001 - best effort: a later sweep deletes them
            log.warning("could not clean up the blobs of job %s: %s", self.layout.job_id,
                        first_line(exc))

    def _mark(self, deadline: dt.datetime) -> str | None:
        marker = self.layout.expiry_marker(deadline)
        try:
            self.store.upload(marker, b"")
        except Exception as exc:  # noqa: BLE001 - best effort: the blobs stay, said once
            log.warning("could not mark the blobs of job %s for deletion after %s (they "
                        "stay until deleted by hand): %s", self.layout.job_id,
                        deadline.isoformat(timespec="seconds"), first_line(exc))
            return None
        return marker


def sweep_expired(store: BlobPort, now: dt.datetime | None = None,
                  limit: int = C.SWEEP_LIMIT) -> list[str]:
    """Delete the blob prefixes whose expiry marker is past `now` (the `limit` oldest), then
    their markers; return their job ids. One listing when nothing expired."""
    now = now or dt.datetime.now(dt.timezone.utc)
    try:
        names = store.blob_names(C.EXPIRY_PREFIX)
    except Exception as exc:  # noqa: BLE001 - best effort: the next executor sweeps
        log.warning("could not list the expired job prefixes: %s", first_line(exc))
        return []
    expired = sorted((marker, name) for name in names
                     if (marker := JobLayout.read_expiry_marker(name)) and marker[0] <= now)
    done: list[str] = []
    for (_, job_id), name in expired[:limit]:
        try:
            store.delete_prefix(JobLayout(job_id).prefix)
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
