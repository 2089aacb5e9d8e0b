"""The state an executor shares with its manager thread, split by kind.

Role: one `JobContext` per executor, made of
- `Services`: what the executor talks to (settings, job layout, the job's blob container
  and the shared one, Batch service, request counts); fixed for its life;
- `SubmitQueue`: what callers hand the manager thread: work items in `pending` (appended by
  `submit()`/`map()`, taken by dispatch), the map payloads and large arguments they need;
- `Flags`: why the manager must stop or end things (shutdown, terminate, interrupted, the
  error that broke the executor), as loky's ``_ExecutorFlags``.
`JobContext.lock` guards `queue` and `flags`; callers set `wakeup` after a change. The
work items the manager has taken are in its own table (`lifecycle.WorkTable`). Nothing
here talks to the network.
"""

from __future__ import annotations

import collections
import threading
import weakref
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ..cloud.ports import BatchPort, BlobPort
from ..cloud.retry import RequestStats
from ..config import Settings
from ..errors import BrokenBatchExecutor
from ..wire.codec import SharedObject, SharedPayload
from ..wire.layout import JobLayout
from .lifecycle import WorkItem


@dataclass(frozen=True, eq=False)
class Services:
    """What an executor talks to, fixed for its life."""

    settings: Settings
    layout: JobLayout
    store: BlobPort  # the job's own container (`layout.container`): all of its blobs
    batch: BatchPort
    stats: RequestStats
    config_inline: bool = False  # config.pickle travels in the job's environment, not a blob
    env_id: str | None = None  # the environment a job preparation task makes on each node
    pool_created: bool = False  # this executor created its pool (delete_pool_when_done)
    # the shared container (`container_name`): node environments, expiry markers; None:
    # the shared container of `store`'s account, `store.for_container(container_name)`
    shared: BlobPort | None = None

    @property
    def shared_store(self) -> BlobPort:
        """The shared container (node environments, the expiry markers of every job)."""
        if self.shared is not None:
            return self.shared
        return self.store.for_container(self.settings.container_name)

    def object_url(self, digest: str) -> str:
        """Where nodes download a large argument (`wire.codec.Divert`): its blob's read URL,
        signed even with a pool identity (the worker downloads it without one)."""
        return self.store.download_url(self.layout.shared_blob(digest))


@dataclass(eq=False)
class SubmitQueue:
    """Work handed from callers to the manager thread (under `JobContext.lock`)."""

    pending: collections.deque[WorkItem] = field(default_factory=collections.deque)
    cancelled: bool = False  # a pending future was cancelled: sweep `pending`
    shared: dict[int, SharedPayload] = field(default_factory=dict)  # map() functions, by id
    objects: dict[str, SharedObject] = field(default_factory=dict)  # large args, by sha256
    task_index: weakref.WeakKeyDictionary[Future[Any], int] = field(
        default_factory=weakref.WeakKeyDictionary)  # submit() futures -> task index
    streams: list[Any] = field(default_factory=list)  # auto-chunked maps (`autochunk`)
    counter: int = 0

    def next_index(self) -> int:
        index = self.counter
        self.counter += 1
        return index


@dataclass(eq=False)
class Flags:
    """Why the manager thread must stop or end things (under `JobContext.lock`)."""

    shutdown: bool = False
    terminate: bool = False  # terminate(): end the job's tasks, fail what is in flight
    broken: BrokenBatchExecutor | None = None  # why the executor cannot go on
    interrupted: str | None = None  # an interrupt ended the work (its name), for the log line
    cancelled_by_shutdown: int = 0  # pending futures shutdown(cancel_futures=True) cancelled
    cancel_queued: bool = False  # shutdown(cancel_futures=True): cancel the queued tasks too


@dataclass(eq=False)
class JobContext:
    """State shared by an executor and its manager thread."""

    services: Services
    max_workers: int  # the most calls running at once (the job's maxParallelTasks if asked)
    queue_depth: int = 0  # tasks added to Batch's queue ahead of free slots (`dispatch`)
    lock: threading.Lock = field(default_factory=threading.Lock)
    wakeup: threading.Event = field(default_factory=threading.Event)
    queue: SubmitQueue = field(default_factory=SubmitQueue)
    flags: Flags = field(default_factory=Flags)

    def enqueue(self, spec: bytes, shared_id: int | None, *, chunked: bool,
                objects: dict[str, bytes], sizer: Any = None) -> Future[Any]:
        """A new work item for `spec` in the submit queue (PENDING); its future. The caller
        checked that the executor takes work (`AzureBatchExecutor._enqueue`), or makes a
        chunk of a map() it took already (`autochunk.MapStream`)."""
        future: Future[Any] = Future()
        with self.lock:
            for digest, data in objects.items():  # uploaded once per executor
                if digest not in self.queue.objects:
                    self.queue.objects[digest] = SharedObject(data)
            index = self.queue.next_index()
            item = WorkItem(future, index, spec, shared_id, chunked,
                            self.services.layout.task_id(index), tuple(objects), sizer=sizer)
            self.queue.pending.append(item)
            self.queue.task_index[future] = index
        future.add_done_callback(self.on_cancel)
        if not self.wakeup.is_set():  # the manager clears it before it looks at `pending`
            self.wakeup.set()
        return future

    @property
    def queue_limit(self) -> int:
        """The most work items the manager keeps at Batch (adding, queued or running)."""
        return self.max_workers + self.queue_depth

    def on_cancel(self, future: Future[Any]) -> None:
        if future.cancelled():
            self.queue.cancelled = True
            self.wakeup.set()
