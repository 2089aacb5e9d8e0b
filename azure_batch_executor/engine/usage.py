"""Usage: what one executor used, added up as it goes and reported when it ends.

Role: one `UsageMeter` per executor, fed by its manager thread (and the I/O pool it
downloads outputs on, hence a lock) from what the executor sees anyway, at no request of
its own:

    each completed task    its listing (`ports.CompletedTask`): the task, whether it failed,
                           Batch's retry and requeue counts, its last attempt's start and
                           end times and its node (``executionInfo``, ``nodeInfo``)
    each outcome           what the worker reported in outputs.pickle: the large arguments
                           it downloaded into its node's shared directory, and their bytes
    dispatch and collect   the bytes of task data uploaded (inputs, map functions, large
                           arguments) and downloaded (outputs)
    the request counters   `cloud.retry.RequestStats`, by kind

`snapshot()` makes a `Usage`, the frozen record ``AzureBatchExecutor.usage()`` returns;
its ``str()`` is the INFO line the manager logs when the executor ends. Task time is the
sum of the tasks' run times; node time counts, for each node, the span from the first
start to the last end of this executor's tasks there (what the executor kept the node
busy for; tasks sharing a node's slots count once). Only the last attempt of a task is
in its execution info. docs/cost.md#usage is the user's side of this.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import threading
from collections.abc import Mapping
from typing import Any

from ..cloud.ports import CompletedTask
from ..cloud.retry import RequestStats


@dataclasses.dataclass(frozen=True)
class Usage:
    """What an executor used so far (``AzureBatchExecutor.usage()``); see docs/cost.md#usage."""

    job_id: str
    tasks: int = 0  # Batch tasks completed and collected (a map chunk is one task)
    failed_tasks: int = 0  # of which Batch reports a failure (a crash, a timeout, ...)
    retries: int = 0  # Batch retries after a crash (executionInfo.retryCount, summed)
    requeues: int = 0  # tasks put back in the queue by Batch (executionInfo.requeueCount)
    task_seconds: float = 0.0  # the tasks' run times, summed
    node_seconds: float = 0.0  # per node, first start to last end of the tasks there
    nodes: int = 0  # nodes that ran the tasks
    bytes_uploaded: int = 0  # task data: inputs, map functions, large arguments
    bytes_downloaded: int = 0  # task data: outputs
    node_downloads: int = 0  # large arguments downloaded by nodes (once per node each)
    node_download_bytes: int = 0
    requests: Mapping[str, int] = dataclasses.field(default_factory=dict)  # by kind
    node_hour_price: float | None = None  # the `node_hour_price` setting
    estimated_cost: float | None = None  # node hours x node_hour_price

    @property
    def node_hours(self) -> float:
        return self.node_seconds / 3600.0

    def __str__(self) -> str:
        """One line: ``usage of job abx-...: 50 tasks (0 failed, 0 retries, 0 requeues),
        task time 1m 40s, node time 52.3s on 2 nodes; task data 5.2 MB up, 3.1 kB down;
        large arguments downloaded by nodes: 2 (10.5 MB); 57 requests (blob.get 50, ...);
        estimated cost 0.0014 at 0.096 per node-hour``."""
        line = (f"usage of job {self.job_id}: {self.tasks} task{_s(self.tasks)} "
                f"({self.failed_tasks} failed, {self.retries} retr"
                f"{'y' if self.retries == 1 else 'ies'}, {self.requeues} requeue"
                f"{_s(self.requeues)}), task time {_duration(self.task_seconds)}, node time "
                f"{_duration(self.node_seconds)} on {self.nodes} node{_s(self.nodes)}; task "
                f"data {_bytes(self.bytes_uploaded)} up, {_bytes(self.bytes_downloaded)} down")
        if self.node_downloads:
            line += (f"; large arguments downloaded by nodes: {self.node_downloads} "
                     f"({_bytes(self.node_download_bytes)})")
        kinds = ", ".join(f"{kind} {n}" for kind, n in
                          sorted(self.requests.items(), key=lambda kv: (-kv[1], kv[0])))
        total = sum(self.requests.values())
        line += f"; {total} request{_s(total)}" + (f" ({kinds})" if kinds else "")
        if self.estimated_cost is not None:
            line += (f"; estimated cost {self.estimated_cost:.4g} at "
                     f"{self.node_hour_price:g} per node-hour")
        return line


class UsageMeter:
    """Adds up one executor's usage (see the module docstring); thread-safe."""

    def __init__(self, stats: RequestStats, job_id: str = "",
                 node_hour_price: float | None = None) -> None:
        self._stats = stats
        self._job_id = job_id
        self._price = node_hour_price
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()
        self._task_seconds = 0.0
        self._spans: dict[str, tuple[dt.datetime, dt.datetime]] = {}  # node -> first, last
        self._unplaced_seconds = 0.0  # run time of tasks whose node is unknown

    def task_completed(self, task: CompletedTask) -> None:
        """A completed task of this executor, as its listing described it."""
        start, end = task.start_time, task.end_time
        seconds = max(0.0, (end - start).total_seconds()) if start and end else 0.0
        with self._lock:
            self._counts["tasks"] += 1
            self._counts["failed_tasks"] += task.result == "failure"
            self._counts["retries"] += task.retry_count
            self._counts["requeues"] += task.requeue_count
            self._task_seconds += seconds
            if not (start and end):
                return
            if task.node_id:
                first, last = self._spans.get(task.node_id, (start, end))
                self._spans[task.node_id] = (min(first, start), max(last, end))
            else:
                self._unplaced_seconds += seconds

    def worker_report(self, node: Mapping[str, Any]) -> None:
        """What a worker reported of its node (`wire.outcome.Outcome.node`)."""
        fetched, nbytes = node.get("fetched"), node.get("fetched_bytes")
        if isinstance(fetched, int) and isinstance(nbytes, int):
            with self._lock:
                self._counts["node_downloads"] += fetched
                self._counts["node_download_bytes"] += nbytes

    def uploaded(self, nbytes: int) -> None:
        with self._lock:
            self._counts["bytes_uploaded"] += nbytes

    def downloaded(self, nbytes: int) -> None:
        with self._lock:
            self._counts["bytes_downloaded"] += nbytes

    def snapshot(self) -> Usage:
        with self._lock:
            counts = dict(self._counts)
            node_seconds = self._unplaced_seconds + sum(
                (last - first).total_seconds() for first, last in self._spans.values())
            task_seconds, nodes = self._task_seconds, len(self._spans)
        price = self._price
        return Usage(
            job_id=self._job_id, tasks=counts.get("tasks", 0),
            failed_tasks=counts.get("failed_tasks", 0), retries=counts.get("retries", 0),
            requeues=counts.get("requeues", 0), task_seconds=task_seconds,
            node_seconds=node_seconds, nodes=nodes,
            bytes_uploaded=counts.get("bytes_uploaded", 0),
            bytes_downloaded=counts.get("bytes_downloaded", 0),
            node_downloads=counts.get("node_downloads", 0),
            node_download_bytes=counts.get("node_download_bytes", 0),
            requests=self._stats.snapshot(), node_hour_price=price,
            estimated_cost=None if price is None else node_seconds / 3600.0 * price)


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _duration(seconds: float) -> str:
    """12.3s, 4m 05s, 2h 03m."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _bytes(n: int) -> str:
    """0 B, 812 B, 3.1 kB, 5.2 MB, 1.0 GB (powers of 1000)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
