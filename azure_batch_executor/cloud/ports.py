"""The ports: what the engine and the SuperBatch client need of Batch and of Blob storage.

Role: two `typing.Protocol`s, `BatchPort` (pool, job, task collections, task counts and
completions, the pool's nodes) and `BlobPort` (the job's blobs and their SAS URLs), with
the value types they exchange (`AddResult`, `CompletedTask`, `EnsuredPool`, `PoolStatus`,
`JobRecord`, `ListedTask`, ...). `batch.BatchService` and
`storage.BlobStore` implement them against Azure (or the local stack); tests pass fakes
of them through the constructors (`AzureBatchExecutor.connect`, `superbatch.client.connect`),
and a test checks that fakes and real classes both satisfy these protocols.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..config import Settings
from .retry import RequestStats, RetryPolicy


@dataclass(frozen=True)
class AddResult:
    """Batch's answer for one task of a collection add."""

    task_id: str
    accepted: bool
    retry: bool  # a server-side error: add it again later
    code: str = ""
    message: str = ""


@dataclass(frozen=True)
class CompletedTask:
    """What the manager thread needs of a completed task."""

    task_id: str
    transition_time: dt.datetime | None
    result: str  # "success" | "failure" | ""
    exit_code: int | None
    failure_code: str | None
    failure_message: str | None
    # its last attempt's execution info and node, for the usage record (engine/usage.py)
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    retry_count: int = 0  # Batch retries after a non-zero exit
    requeue_count: int = 0  # put back in the queue by Batch (a node removed or preempted)
    node_id: str | None = None
    state: str = "completed"  # "running" in `BatchPort.transitions_since`'s answers


@dataclass(frozen=True)
class ListedTask(CompletedTask):
    """A task of a job's full listing (`BatchPort.list_job_tasks`), in any state
    (``active``, ``preparing``, ``running``, ``completed``), with its ``displayName``: what
    the executor wrote there (`taskdef.CALL_DISPLAY`, `taskdef.CHUNK_DISPLAY`)."""

    display_name: str = ""


@dataclass(frozen=True)
class JobRecord:
    """A job as Batch reports it (`BatchPort.job_record`, `BatchPort.list_jobs`); `state`
    lowercase: ``active``, ``disabling``, ``disabled``, ``enabling``, ``terminating``,
    ``completed`` or ``deleting``."""

    job_id: str
    state: str
    created: dt.datetime | None = None
    pool_id: str | None = None


@dataclass(frozen=True)
class TaskCounts:
    """A job's tasks by state (`BatchPort.job_task_counts`); `succeeded` and `failed` are
    among the `completed`."""

    active: int = 0
    running: int = 0
    completed: int = 0
    succeeded: int = 0
    failed: int = 0


@dataclass(frozen=True)
class PreparationFailure:
    """A node whose job preparation task failed for a job, as Batch reports it."""

    node_id: str
    exit_code: int | None
    failure_code: str | None
    failure_message: str | None
    stderr_tail: str


@dataclass(frozen=True)
class EnsuredPool:
    """What `BatchPort.ensure_pool` found or made: the pool's task-slot capacity (its
    most nodes x slots) and whether this call created it."""

    capacity: int
    created: bool


@dataclass(frozen=True)
class ResizeError:
    """One entry of a pool's ``resizeErrors``, as Batch reports it."""

    code: str
    message: str
    values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PoolStatus:
    """A pool's nodes as Batch reports them (`BatchPort.pool_status`). `nodes`: node counts
    by state (the REST states, lowercase: ``idle``, ``starting``, ``starttaskfailed``, ...),
    dedicated and Spot together. The pool's own fields are read only by a full status."""

    pool_id: str
    nodes: Mapping[str, int]
    full: bool = False
    allocation_state: str = ""
    target_dedicated: int = 0
    target_spot: int = 0
    autoscale: bool = False
    autoscale_error: str = ""  # the last autoscale run's error, "code: message"
    resize_errors: tuple[ResizeError, ...] = ()
    vm_size: str = ""

    @property
    def usable(self) -> int:
        """Nodes that can run tasks (idle or running)."""
        return self.nodes.get("idle", 0) + self.nodes.get("running", 0)

    @property
    def total(self) -> int:
        return sum(self.nodes.values())


@dataclass(frozen=True)
class StartTaskFailure:
    """A node whose start task failed (the pool's, not the job's), as Batch reports it."""

    node_id: str
    exit_code: int | None
    failure_code: str | None
    failure_message: str | None
    stderr_tail: str


@runtime_checkable
class BatchPort(Protocol):
    """A Batch account as the engine uses it: one pool (from the settings), jobs, tasks."""

    def pool_exists(self, pool_id: str | None = None) -> bool: ...
    def ensure_pool(self, registries: Sequence[Mapping[str, Any]] = ()) -> EnsuredPool: ...
    def pool_status(self, full: bool = True) -> PoolStatus | None: ...
    def start_task_failure(self) -> StartTaskFailure | None: ...
    def nodes_elsewhere(self, dedicated: bool) -> int: ...
    def create_job(self, job_id: str, environment: Mapping[str, str] | None = None,
                   preparation: Mapping[str, Any] | None = None,
                   max_parallel_tasks: int | None = None) -> None: ...
    def terminate_job(self, job_id: str, reason: str = "UserTerminate") -> None: ...
    def terminate_task(self, job_id: str, task_id: str) -> None: ...
    def delete_job(self, job_id: str) -> None: ...
    def delete_pool(self) -> None: ...
    def check_alive(self, job_id: str) -> None: ...
    def add_collection(self, job_id: str, tasks: Sequence[str]) -> list[AddResult]: ...
    def task_counts(self, job_id: str) -> tuple[int, int, int]: ...
    def completed_since(self, job_id: str, since: dt.datetime | None
                        ) -> list[CompletedTask]: ...
    def transitions_since(self, job_id: str, since: dt.datetime | None
                          ) -> list[CompletedTask]: ...
    def preparation_failures(self, job_id: str) -> list[PreparationFailure]: ...
    def job_record(self, job_id: str) -> JobRecord | None: ...
    def list_jobs(self) -> list[JobRecord]: ...
    def job_task_counts(self, job_id: str) -> TaskCounts: ...
    def list_job_tasks(self, job_id: str) -> list[ListedTask]: ...
    def close(self) -> None: ...


@runtime_checkable
class BlobPort(Protocol):
    """One blob container (a job's own, or the shared one), and the SAS URLs tasks get
    for it; `for_container` reaches another container of the same account."""

    @property
    def container_url(self) -> str: ...
    @property
    def container_name(self) -> str: ...
    def for_container(self, name: str, metadata: Mapping[str, str] | None = None
                      ) -> BlobPort: ...
    def delete_container(self) -> bool: ...
    def ensure_container(self) -> None: ...
    def sign(self) -> None: ...
    def read_url(self, blob_name: str) -> str: ...
    def download_url(self, blob_name: str) -> str: ...
    def output_container_url(self) -> str: ...
    def upload(self, blob_name: str, data: bytes) -> None: ...
    def upload_creating_container(self, blob_name: str, data: bytes) -> None: ...
    def upload_file(self, path: str | os.PathLike[str], blob_name: str) -> None: ...
    def download(self, blob_name: str) -> bytes | None: ...
    def tail(self, blob_name: str, nbytes: int = ...) -> str: ...
    def blob_names(self, prefix: str) -> list[str]: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def close(self) -> None: ...


# How an executor or a SuperBatch client reaches its account: (settings, request counters,
# retry policy) -> (the blob side, the Batch side). No request is sent yet.
Connect = Callable[[Settings, RequestStats, RetryPolicy], "tuple[BlobPort, BatchPort]"]
