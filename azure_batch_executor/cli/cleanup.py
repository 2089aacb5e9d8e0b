"""The `azure-batch-executor cleanup` command: what this package made and left behind.

Role: plan, then (unless ``--dry-run``) delete, item by item, reporting each:

    container    a job's own blob container (`wire.layout.JobLayout.container`) whose
                 expiry marker is past (whatever its job id prefix, as an executor's own
                 sweep: engine/cleanup.py), deleted in one request with its markers; with
                 --older-than D, also one made for a job of this package (its metadata
                 names the job) whose newest blob (or, empty, its creation) is older than
                 D and whose job is no longer live (completed, or gone)
    blobs        the same for a job made before containers per job: its prefix ``<job>/``
                 in the shared container
    marker       an expiry marker past its deadline whose blobs are already gone
    job          a completed job of this package whose blobs' marker is past; with
                 --older-than D, also one completed more than D ago, and an active one
                 with no task waiting or running since more than D (its client died)
    pool         only with --older-than D: a pool this package created (its metadata)
                 with no live job, unused for more than D (its nodes idle, no job created
                 or ended on it, no resize, for that long)
    environment  only with --environments: a shared node environment ``_environments/<id>/``
                 that no live job installs (and, with --older-than D, written more than D
                 ago)

A live job (active, terminating, disabled, ...) is never touched except as said, and
nothing outside the job id prefix, the container and pool metadata and the markers is. A failed
deletion is reported and the others go on; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from .. import constants as C
from ..cloud.codes import NotFound, error_code
from ..config import first_line, human_duration
from ..wire.layout import JobLayout
from . import accounts, inventory, jobblobs
from .accounts import Account
from .serving import CommandError

EXIT_PARTIAL = 1  # some deletions failed (each one reported)
_GONE = ("jobnotfound", "jobbeingdeleted", "poolnotfound", "poolbeingdeleted")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `cleanup` on the CLI's subparsers; `run` is its handler."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "cleanup", help="delete the jobs, blobs and pools this package left behind",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=accounts.describe(
            "Delete what the executor made and left: jobs' blob containers past their "
            "expiry (blob_retention) and their completed jobs; with --older-than, also jobs "
            "completed (or idle) that long ago, their blobs, and pools this package created "
            "that no job used for that long; with --environments, the shared node "
            "environments no live job uses. Live jobs are left alone. --dry-run only says "
            "what would go.",
            "cleanup --dry-run", "cleanup --older-than 7d",
            "cleanup --older-than 12h --environments --output json"))
    parser.add_argument("--older-than", metavar="DURATION",
                        help="also what was last used more than DURATION ago (90s, 30m, "
                             "12h, 7d, 1d12h); without it only what expired is deleted")
    parser.add_argument("--dry-run", action="store_true",
                        help="list what would be deleted, delete nothing")
    parser.add_argument("--environments", action="store_true",
                        help=f"also the shared node environments ({C.ENVIRONMENTS_PREFIX}) "
                             "that no live job uses")
    accounts.add_options(parser, job_id_prefix=True)
    parser.set_defaults(handler=run)
    return parser


@dataclass
class Item:
    """One thing to delete, why, and how it went."""

    kind: str  # job | container | blobs | marker | pool | environment
    name: str
    reason: str
    delete: Callable[[], object]
    blob: bool  # a Blob request (else a Batch one): which credentials a refusal names
    status: str = "planned"  # planned | deleted | failed
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "reason": self.reason,
                "status": self.status, "error": self.error}


def run(args: argparse.Namespace) -> int:
    older = None if args.older_than is None else accounts.parse_duration(args.older_than)
    with accounts.session(args) as account:
        now = dt.datetime.now(dt.timezone.utc)
        items = Planner(account, now, older).plan(environments=args.environments)
        if not args.dry_run:
            for item in items:
                _delete(account, item)
    failed = sum(item.status == "failed" for item in items)
    accounts.emit(args, {"dry_run": args.dry_run, "older_than": older,
                         "items": [item.as_json() for item in items]},
                  ["KIND", "NAME", "REASON", "RESULT"],
                  [[i.kind, i.name, i.reason,
                    {"planned": "would delete", "deleted": "deleted"}.get(
                        i.status, f"failed: {i.error}")] for i in items])
    if not items:
        accounts.note(args, "nothing to clean up" + (
            "" if older is not None else " (pools, and jobs or blobs that never expire, "
                                         "only go with --older-than)"))
    elif args.dry_run:
        accounts.note(args, f"dry run: nothing was deleted ({len(items)} item(s) would be)")
    return EXIT_PARTIAL if failed else 0


def _delete(account: Account, item: Item) -> None:
    """Run one deletion; a refused credential stops the command, anything else is noted."""
    try:
        with account.naming_fixes(item.blob):
            item.delete()
    except CommandError:
        raise
    except NotFound:
        item.status = "deleted"  # gone meanwhile
    except Exception as exc:  # noqa: BLE001 - reported in its row; the others go on
        if error_code(exc) in _GONE:
            item.status = "deleted"
            return
        item.status, item.error = "failed", first_line(exc)
    else:
        item.status = "deleted"


class Planner:
    """What to delete in one account at `now`; `older`: the --older-than seconds, or None."""

    def __init__(self, account: Account, now: dt.datetime, older: float | None) -> None:
        self.account = account
        self.now = now
        self.cutoff = None if older is None else now - dt.timedelta(seconds=older)
        self.prefix = account.settings.job_id_prefix
        self.jobs = {j.id: j for j in inventory.jobs(account)}
        self.markers = inventory.markers(account)
        self.doomed: set[str] = set()  # the jobs this plan deletes

    def plan(self, environments: bool) -> list[Item]:
        items = self._jobs()
        items += self._blobs()
        if environments:
            items += self._environments()
        if self.cutoff is not None:
            items += self._pools(self.cutoff)
        return items

    # ------------------------------------------------------------------ jobs
    def _jobs(self) -> list[Item]:
        items = []
        for job in self.jobs.values():
            if not inventory.made_here(job.id, self.prefix):
                continue
            reason = self._job_reason(job)
            if reason is not None:
                items.append(Item("job", job.id, reason, self._deleting_job(job.id), False))
                self.doomed.add(job.id)
        return items

    def _job_reason(self, job: inventory.Job) -> str | None:
        deadline = self.markers.deadline(job.id)
        if job.state == "completed":
            if deadline is not None and deadline <= self.now:
                return f"completed, its blobs expired {accounts.iso(deadline)}"
            ended = job.ended or job.created
            if self.cutoff is not None and ended is not None and ended <= self.cutoff:
                return f"completed {self._age(ended)} ago"
        elif job.state == "active" and self.cutoff is not None:
            idle = self._idle_since(job, self.cutoff)
            if idle is not None:
                return (f"active but idle for {self._age(idle)}: no task waiting or "
                        "running (its client is gone?)")
        return None

    def _idle_since(self, job: inventory.Job, cutoff: dt.datetime) -> dt.datetime | None:
        """When the job's last task changed state (its creation if it has none), if that
        is before `cutoff` and no task waits or runs; else None."""
        if job.created is None or job.created > cutoff:
            return None
        counts = inventory.task_counts(self.account, job.id)
        if counts is None or counts["active"] or counts["running"]:
            return None
        times = [t.state_transition_time for t in inventory.tasks(self.account, job.id)]
        last = max([job.created, *(t for t in times if t is not None)])
        return last if last <= cutoff else None

    def _deleting_job(self, job_id: str) -> Callable[[], object]:
        return partial(self._retried, "batch.delete_job", self.account.client.begin_delete_job,
                       job_id)

    def _retried(self, kind: str, begin: Callable[..., object], resource: str) -> object:
        """A Batch deletion (a long-running operation, not waited for), retried."""
        return self.account.retry.call(self.account.stats, kind, begin, resource,
                                       polling_interval=1)

    # ------------------------------------------------------------------ blobs
    def _blobs(self) -> list[Item]:
        stored = {n for n in inventory.prefixes(self.account)
                  if inventory.made_here(n, self.prefix)}  # jobs made before containers
        containers = jobblobs.job_containers(self.account)
        mine = {j for j in containers if inventory.made_here(j, self.prefix)}
        items = []
        for job_id in sorted(stored | mine | set(self.markers.by_job)):
            job = self.jobs.get(job_id)
            if job is not None and job.live and job_id not in self.doomed:
                continue
            if job_id in containers or (job_id not in stored and self._has_container(job_id)):
                blobs: jobblobs.JobBlobs | None = jobblobs.own_container(self.account, job_id)
            else:
                blobs = jobblobs.JobBlobs(job_id, self.account, False) \
                    if job_id in stored else None
            info = containers.get(job_id)
            reason = self._blob_reason(job_id, job, blobs,
                                       info.last_modified if info is not None else None)
            if reason is None:
                continue
            if blobs is None:
                kind, name = "marker", ", ".join(self.markers.names(job_id))
            elif blobs.own:
                kind, name = "container", blobs.container
            else:
                kind, name = "blobs", blobs.prefix
            items.append(Item(kind, name, reason, self._deleting_blobs(job_id, blobs), True))
        return items

    def _has_container(self, job_id: str) -> bool:
        """Whether job `job_id` (of an expiry marker) has a container of its own (one
        request: a container without this package's metadata is not listed as a job's)."""
        name = JobLayout(job_id).container
        if name == self.account.settings.container_name:
            return False
        own = jobblobs.own_container(self.account, job_id)
        return bool(self.account.call("blob.container_head", own.account.container.exists))

    def _blob_reason(self, job_id: str, job: inventory.Job | None,
                     blobs: jobblobs.JobBlobs | None, created: dt.datetime | None
                     ) -> str | None:
        deadline = self.markers.deadline(job_id)
        if deadline is not None and deadline <= self.now:
            return f"expired {accounts.iso(deadline)}"
        if self.cutoff is None or blobs is None or not inventory.made_here(job_id, self.prefix):
            return None
        newest = inventory.prefix(blobs.account, blobs.prefix).newest or (
            created if blobs.own else None)
        if newest is None or newest > self.cutoff:
            return None
        whose = ("its job is gone" if job is None else
                 "its job is deleted too" if job_id in self.doomed else f"its job is {job.state}")
        return f"last written {self._age(newest)} ago, {whose}"

    def _deleting_blobs(self, job_id: str, blobs: jobblobs.JobBlobs | None
                        ) -> Callable[[], object]:
        store, markers = self.account.store, self.markers.names(job_id)

        def delete() -> None:
            if blobs is not None:
                blobs.delete()
            for marker in markers:
                store.delete_prefix(marker)

        return delete

    # ------------------------------------------------------------------ environments
    def _environments(self) -> list[Item]:
        used = {env for j in self.jobs.values() if j.live and j.id not in self.doomed
                for env in j.environments}
        items = []
        for env in inventory.prefixes(self.account, C.ENVIRONMENTS_PREFIX):
            if env in used:
                continue
            name = f"{C.ENVIRONMENTS_PREFIX}{env}/"
            reason = "no live job installs it"
            if self.cutoff is not None:
                newest = inventory.prefix(self.account, name).newest
                if newest is None or newest > self.cutoff:
                    continue
                reason += f", written {self._age(newest)} ago"
            items.append(Item("environment", name, reason,
                              partial(self.account.store.delete_prefix, name), True))
        return items

    # ------------------------------------------------------------------ pools
    def _pools(self, cutoff: dt.datetime) -> list[Item]:
        items = []
        for pool in inventory.pools(self.account):
            if not inventory.created_here(pool):
                continue
            on_it = [j for j in self.jobs.values() if j.pool_id == pool.id]
            if any(j.live and j.id not in self.doomed for j in on_it):
                continue
            last = self._last_use(pool, on_it)
            if last > cutoff:
                continue
            items.append(Item(
                "pool", pool.id, f"created by this package, no live job, unused for "
                                 f"{self._age(last)}",
                partial(self._retried, "batch.delete_pool",
                        self.account.client.begin_delete_pool, pool.id), False))
        return items

    def _last_use(self, pool: Any, jobs: list[inventory.Job]) -> dt.datetime:
        """The latest of: the pool's creation and last resize, its nodes' last state
        change, and the creation and end of the jobs still listed on it."""
        times = [pool.creation_time, pool.allocation_state_transition_time,
                 *(t for j in jobs for t in (j.created, j.ended))]
        with contextlib.suppress(NotFound):  # deleted meanwhile: its own times decide
            times += [n.state_transition_time for n in inventory.nodes(self.account, pool.id)]
        return max((t for t in times if t is not None), default=self.now)

    def _age(self, when: dt.datetime) -> str:
        seconds = max(0.0, (self.now - when).total_seconds())
        days, rest = divmod(int(seconds), 86400)
        return f"{days}d{rest // 3600:02d}h" if days else human_duration(seconds)
