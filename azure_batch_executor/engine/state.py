"""The state one executor shares with its poller thread.

Role: one `JobContext` per executor. The caller's thread (`executor`) appends work
items to `pending` under `lock` and sets `wakeup`; the poller thread takes them
(`_dispatch`), resolves their futures (`_poller`), and records in `broken` why the
executor cannot go on (then submit() raises it). Nothing here talks to the network.
"""

from __future__ import annotations

import collections
import threading
import weakref
from concurrent.futures import Future
from dataclasses import dataclass, field

from ..cloud.batch import BatchService
from ..cloud.retry import RequestStats
from ..cloud.storage import BlobStore
from ..config import Settings
from ..errors import BrokenBatchExecutor
from ..wire.codec import SharedObject, SharedPayload, WorkItem
from ..wire.layout import JobLayout


@dataclass(eq=False)
class JobContext:
    """State shared by an executor and its poller (the executor's lock guards `pending`)."""

    settings: Settings
    layout: JobLayout
    store: BlobStore
    batch: BatchService
    stats: RequestStats
    max_workers: int
    config_inline: bool = False  # config.pickle travels in the job's environment, not a blob
    lock: threading.Lock = field(default_factory=threading.Lock)
    wakeup: threading.Event = field(default_factory=threading.Event)
    pending: collections.deque[WorkItem] = field(default_factory=collections.deque)
    shared: dict[int, SharedPayload] = field(default_factory=dict)
    objects: dict[str, SharedObject] = field(default_factory=dict)  # large args, by sha256
    shutdown: bool = False
    terminate: bool = False  # terminate(): end the job's tasks, fail what is in flight
    broken: BrokenBatchExecutor | None = None
    cancelled: bool = False  # a pending future was cancelled: sweep the queue
    cancelled_by_shutdown: int = 0  # pending futures shutdown(cancel_futures=True) cancelled
    interrupted: str | None = None  # an interrupt ended the work (its name), for the log line
    task_index: weakref.WeakKeyDictionary[Future, int] = field(
        default_factory=weakref.WeakKeyDictionary)  # submit() futures -> task index
    counter: int = 0
    ticks: int = 0  # poll ticks (task-count requests), for tests and benchmarks

    def next_index(self) -> int:
        index = self.counter
        self.counter += 1
        return index

    def on_cancel(self, future: Future) -> None:
        if future.cancelled():
            self.cancelled = True
            self.wakeup.set()
