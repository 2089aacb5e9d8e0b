"""What is in an account, as the commands see it: jobs, blob prefixes, expiry markers, pools.

Role: the reads that `jobs`, `status`, `logs`, `cleanup` and `pools` share, each one
listing (or one request) through `accounts.Account.call`, turned into plain values. What
this package made is recognised the way the executor names it: a job (and its blob prefix
``<job id>/``) by its id, ``<job_id_prefix>-<UTC stamp>-<hex>`` (`wire.layout.new_job_id`);
a pool by its metadata entry `constants.POOL_CREATOR`; the expiry of a job's blobs by its
marker ``_expires/<UTC deadline>/<job id>`` (`wire.layout.JobLayout.read_expiry_marker`);
a shared node environment by its prefix ``_environments/<id>/``.

Imports: `accounts` (the account), `cloud.codes` (what a 404 is), `cloud.batch`
(`pool_metadata`), `wire.layout`, `constants`; `engine.attach` for what it shares with
`AzureBatchExecutor.jobs()`: which jobs are ours (`made_here`, `stamped`), the live job
states, and the task-count read (`BatchService.job_task_counts`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import constants as C
from ..cloud.codes import NotFound
from ..cloud.pools import pool_metadata
from ..engine.attach import LIVE_JOB_STATES as LIVE_JOB_STATES
from ..engine.attach import made_here as made_here
from ..engine.attach import stamped as stamped
from ..wire.layout import JobLayout
from .accounts import Account, iso, state

_ENVIRONMENT_URL = re.compile(re.escape("/" + C.ENVIRONMENTS_PREFIX) + r"([^/?]+)/")


@dataclass(frozen=True)
class Job:
    """A Batch job, or (state ``deleted``) a job of which only the blob prefix is left."""

    id: str
    state: str  # Batch's job state, lowercase, or "deleted"
    pool_id: str | None = None
    created: dt.datetime | None = None
    ended: dt.datetime | None = None  # executionInfo.endTime: when it completed
    environments: frozenset[str] = frozenset()  # node environments its preparation installs

    @property
    def live(self) -> bool:
        return self.state in LIVE_JOB_STATES


@dataclass(frozen=True)
class Prefix:
    """The blobs under one prefix: how many, and when the newest was written."""

    name: str
    count: int = 0
    newest: dt.datetime | None = None


@dataclass
class Markers:
    """The expiry markers of a container: job id -> [(deadline, marker blob)]."""

    by_job: dict[str, list[tuple[dt.datetime, str]]] = field(default_factory=dict)

    def deadline(self, job_id: str) -> dt.datetime | None:
        """When the job's blobs may be deleted (the latest of its markers), or None."""
        marks = self.by_job.get(job_id)
        return max(d for d, _ in marks) if marks else None

    def names(self, job_id: str) -> list[str]:
        return [name for _, name in self.by_job.get(job_id, [])]


# ---------------------------------------------------------------------------- Batch
def jobs(account: Account) -> list[Job]:
    """Every job of the Batch account (one listing)."""
    client = account.client
    listed = account.call("batch.list_jobs", lambda: list(client.list_jobs(select=[
        "id", "state", "creationTime", "executionInfo", "poolInfo", "jobPreparationTask"])))
    return sorted((_job(j) for j in listed), key=lambda j: (j.created is None, j.created, j.id))


def job(account: Account, job_id: str) -> Job | None:
    """One job, or None when the Batch account has none of that id."""
    client = account.client
    try:
        return _job(account.call("batch.get_job", client.get_job, job_id))
    except NotFound:
        return None


def _job(j: Any) -> Job:
    info = j.execution_info
    pool = (j.pool_info.pool_id if j.pool_info else None) or (info.pool_id if info else None)
    prep = j.job_preparation_task
    urls = [r.http_url or r.storage_container_url or "" for r in
            (prep.resource_files or [] if prep else [])]
    return Job(id=j.id, state=state(j.state), pool_id=pool, created=j.creation_time,
               ended=info.end_time if info else None,
               environments=frozenset(m.group(1) for u in urls
                                      if (m := _ENVIRONMENT_URL.search(u))))


def task_counts(account: Account, job_id: str) -> dict[str, int] | None:
    """The job's task counts: active, running, completed, succeeded, failed (one request);
    None when the job is gone meanwhile."""
    try:
        with account.naming_fixes(blob=False):  # the executor's read, the command's retries
            counts = account.batch.job_task_counts(job_id)
    except NotFound:
        return None
    return dataclasses.asdict(counts)


def tasks(account: Account, job_id: str) -> list[Any]:
    """The job's tasks (the SDK's models), in id order (one listing, paged)."""
    client = account.client
    listed = account.call("batch.list_tasks", lambda: list(client.list_tasks(
        job_id, select=["id", "state", "stateTransitionTime", "executionInfo", "nodeInfo"],
        max_results=C.LIST_PAGE_SIZE)))
    return sorted(listed, key=lambda t: str(t.id))


def pools(account: Account) -> list[Any]:
    """Every pool of the Batch account (the SDK's models; one listing)."""
    client = account.client
    return sorted(account.call("batch.list_pools", lambda: list(client.list_pools())),
                  key=lambda p: str(p.id))


def created_here(pool: Any) -> bool:
    """Whether the executor created this pool (its metadata says so)."""
    name, value = C.POOL_CREATOR
    return pool_metadata(pool).get(name) == value


def node_counts(account: Account, pool_id: str | None = None) -> dict[str, dict[str, int]]:
    """Pool id -> its nodes by state (dedicated and Spot together; states with none left
    out), one request for every pool of the account, or for `pool_id`."""
    client = account.client
    flt = f"poolId eq '{pool_id}'" if pool_id else None
    rows = account.call("batch.node_counts",
                        lambda: list(client.list_pool_node_counts(filter=flt)))
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        nodes: dict[str, int] = {}
        for kind in (row.dedicated, row.low_priority):
            for name, count in (kind or {}).items():
                if name != "total" and count:
                    nodes[name.lower()] = nodes.get(name.lower(), 0) + int(count)
        out[str(row.pool_id)] = dict(sorted(nodes.items()))
    return out


def nodes(account: Account, pool_id: str) -> list[Any]:
    """The pool's nodes (the SDK's models; one listing)."""
    client = account.client
    return account.call("batch.list_nodes", lambda: list(client.list_nodes(
        pool_id, select=["id", "state", "stateTransitionTime", "runningTasksCount"])))


# ---------------------------------------------------------------------------- Blob
def prefixes(account: Account, under: str = "") -> list[str]:
    """The names of the prefixes one level below `under` (``abx-.../``, ``_expires/``,
    ...), without the trailing slash; none when the container does not exist."""
    container = account.container

    def walk() -> list[str]:
        return [str(item.name)[len(under):].rstrip("/")
                for item in container.walk_blobs(name_starts_with=under or None,
                                                 delimiter="/")
                if getattr(item, "prefix", None) is not None]

    try:
        return sorted(account.call("blob.list", walk))
    except NotFound:  # no container: nothing was ever stored
        return []


def prefix(account: Account, name: str) -> Prefix:
    """How many blobs are under `name` and when the newest was written (one listing)."""
    container = account.container

    def listing() -> list[Any]:
        return list(container.list_blobs(name_starts_with=name))

    try:
        blobs = account.call("blob.list", listing)
    except NotFound:
        blobs = []
    return Prefix(name, len(blobs), max((b.last_modified for b in blobs), default=None))


def blob_sizes(account: Account, under: str) -> dict[str, int]:
    """Blob name (without `under`) -> size, for the blobs under `under` (one listing)."""
    container = account.container

    def listing() -> dict[str, int]:
        return {str(b.name)[len(under):]: int(b.size or 0)
                for b in container.list_blobs(name_starts_with=under)}

    try:
        return account.call("blob.list", listing)
    except NotFound:
        return {}


def markers(account: Account) -> Markers:
    """Every expiry marker of the container (one listing)."""
    found = Markers()
    for name in _names(account, C.EXPIRY_PREFIX):
        read = JobLayout.read_expiry_marker(name)
        if read is not None:
            found.by_job.setdefault(read[1], []).append((read[0], name))
    return found


def _names(account: Account, under: str) -> Iterable[str]:
    try:
        return account.call("blob.list", account.store.blob_names, under)
    except NotFound:
        return []


def exists(account: Account, blob_name: str) -> bool:
    client = account.container.get_blob_client(blob_name)
    return bool(account.call("blob.head", client.exists))


def pool_summary(pool: Any, nodes_by_state: dict[str, int] | None) -> dict[str, Any]:
    """What `status` and `pools` say of a pool (JSON-ready, stable keys)."""
    run_error = getattr(pool.auto_scale_run, "error", None) if pool.auto_scale_run else None
    return {
        "id": pool.id,
        "created_by_package": created_here(pool),
        "state": state(pool.state),
        "allocation_state": state(pool.allocation_state),
        "vm_size": pool.vm_size,
        "autoscale": bool(pool.enable_auto_scale),
        "dedicated": {"current": pool.current_dedicated_nodes or 0,
                      "target": pool.target_dedicated_nodes or 0},
        "spot": {"current": pool.current_low_priority_nodes or 0,
                 "target": pool.target_low_priority_nodes or 0},
        "task_slots_per_node": pool.task_slots_per_node or 1,
        "nodes": nodes_by_state or {},
        "resize_errors": [{"code": e.code, "message": e.message}
                          for e in pool.resize_errors or []],
        "autoscale_error": f"{run_error.code}: {run_error.message}" if run_error else None,
        "created": iso(pool.creation_time),
    }


def pool(account: Account, pool_id: str) -> Any:
    """One pool (the SDK's model), or None when there is none of that id."""
    try:
        return account.call("batch.get_pool", account.client.get_pool, pool_id)
    except NotFound:
        return None
