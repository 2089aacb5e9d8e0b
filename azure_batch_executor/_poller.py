"""The poller: the one background thread per executor that talks to Batch after submit().

Role: like CPython's ``_ExecutorManagerThread``. It holds only a weakref to the
executor and shares a `JobContext` with it; it wakes on an Event (a submit, a
cancel, shutdown) or when its poll interval is up, and its `run()` reads as a
list of verbs:

    dispatch pending work items  uploads in a bounded thread pool, then
                                 create_task_collection (<= 100 tasks per call, in parallel);
                                 accepted futures go PENDING -> RUNNING
    collect completed tasks      batch.CompletionFeed: one request per idle tick (the job's
                                 task counts), a listing of the tasks completed since a
                                 watermark when the count moved; then download outputs in
                                 parallel and resolve each future exactly once
    check health                 every few seconds: the job still active, the pool still there

Ticks follow submitit's watcher: right after the first tasks go out they come
fast, doubling up to the `poll_interval` cap; while results flow a tick is one
listing every `poll_interval` (the count is skipped), otherwise one count. If
the job or pool disappears or credentials are revoked, `terminate_broken` fails
every pending future with `BrokenBatchExecutor` (cause chained). When the executor is shut down (or
garbage collected) and nothing is left in flight, the thread terminates the job
(and deletes the pool if asked) and exits.

Imports: the standard library, and `constants`, `errors`, `config`, `layout`,
`_wire`, `_retry`, `storage`, `batch` (never `executor`).
"""

from __future__ import annotations

import base64
import collections
import logging
import threading
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import HttpResponseError

from . import constants as C
from ._retry import RequestStats, is_transient
from ._wire import SharedPayload, WorkItem, broken, decode_outcome, fail, settle
from .batch import (
    AddResult,
    BatchService,
    CompletedTask,
    CompletionFeed,
    JobGone,
    TaskFactory,
    error_code,
    is_gone,
)
from .config import Settings, mask_secrets
from .errors import (
    BrokenBatchExecutor,
    TaskFailedError,
    TaskRejectedError,
)
from .layout import JobLayout
from .storage import BlobStore

log = logging.getLogger(__name__)

MAX_DISPATCH = 5000  # work items per tick, so polling goes on during a long burst
MAX_POLL_FAILURES = 8  # consecutive failed ticks before the executor counts as broken

_global_shutdown = False
_contexts: weakref.WeakSet[JobContext] = weakref.WeakSet()


@dataclass(eq=False)
class JobContext:
    """State shared by an executor and its poller (the executor's lock guards `pending`)."""

    settings: Settings
    layout: JobLayout
    store: BlobStore
    batch: BatchService
    stats: RequestStats
    max_workers: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    wakeup: threading.Event = field(default_factory=threading.Event)
    pending: collections.deque[WorkItem] = field(default_factory=collections.deque)
    shared: dict[int, SharedPayload] = field(default_factory=dict)
    shutdown: bool = False
    broken: BrokenBatchExecutor | None = None
    cancelled: bool = False  # a pending future was cancelled: sweep the queue
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


def python_exit() -> None:
    """At interpreter exit: let every poller finish its in-flight work, then join them."""
    global _global_shutdown
    _global_shutdown = True
    for ctx in list(_contexts):
        ctx.wakeup.set()
    for thread in threading.enumerate():
        if isinstance(thread, Poller):
            thread.join()


class Poller(threading.Thread):
    """Turns pending work items into Batch tasks, and completed tasks into resolved futures."""

    def __init__(self, executor: Any, ctx: JobContext) -> None:
        super().__init__(name=f"abx-poller-{ctx.layout.job_id}", daemon=True)
        self.ctx = ctx
        self.executor_ref = weakref.ref(executor, lambda _: ctx.wakeup.set())
        self.in_flight: dict[str, WorkItem] = {}  # accepted by Batch, not completed yet
        self.adding: dict[Future, list[WorkItem]] = {}  # collection adds under way
        self.early: dict[str, CompletedTask] = {}  # completed before their add was harvested
        self.feed = CompletionFeed(ctx.batch, ctx.layout.job_id)
        self.dispatch_after = 0.0  # after server errors on adds, dispatch again from then on
        self.interval = C.MIN_POLL_INTERVAL
        self.next_poll = 0.0
        self.next_health = time.monotonic() + C.HEALTH_CHECK_INTERVAL
        self.failures = 0
        self.io = ThreadPoolExecutor(C.IO_THREADS, thread_name_prefix="abx-io")
        lay, store = ctx.layout, ctx.store
        self.factory = TaskFactory(
            ctx.settings,
            [(store.read_url(lay.worker_blob()), C.WORKER_SCRIPT_FILE),
             (store.read_url(lay.config_blob()), C.GLOBAL_CONFIG_FILE)],
            store.output_container_url(),
        )
        _contexts.add(ctx)

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        try:
            while True:
                self.wait_for_work()
                self.dispatch_pending()
                self.collect_completed()
                self.check_health()
                if self.done():
                    break
            self.finish_job()
        except BaseException as exc:  # noqa: BLE001 - every future must resolve
            self.terminate_broken(exc)
        finally:
            self.io.shutdown(wait=False)

    def wait_for_work(self) -> None:
        ctx = self.ctx
        ctx.wakeup.clear()
        if self.done():
            return
        timeout: float | None = None
        if self.in_flight:
            timeout = max(0.0, self.next_poll - time.monotonic())
        if any(f.done() for f in self.adding):
            timeout = 0.0
        if ctx.pending and self.busy() < ctx.max_workers:
            wait = max(0.0, self.dispatch_after - time.monotonic())
            timeout = wait if timeout is None else min(timeout, wait)
        if ctx.cancelled:
            timeout = 0.0
        if timeout is None or timeout > 0:
            ctx.wakeup.wait(timeout)

    def busy(self) -> int:
        """Tasks counted against max_workers: accepted, or in a collection add under way."""
        return len(self.in_flight) + sum(len(group) for group in self.adding.values())

    def done(self) -> bool:
        ctx = self.ctx
        stopping = ctx.shutdown or _global_shutdown or self.executor_ref() is None
        return stopping and not ctx.pending and not self.in_flight and not self.adding

    # ------------------------------------------------------------------ dispatch
    def dispatch_pending(self) -> None:
        self.harvest_adds()
        if time.monotonic() < self.dispatch_after:
            return
        items = self.take_pending()
        if not items:
            return
        if not self.in_flight and not self.adding:  # the first tasks: poll soon, then back off
            self.interval = C.MIN_POLL_INTERVAL
            self.next_poll = time.monotonic() + self.interval
        self.add_tasks(self.upload_inputs(items))

    def harvest_adds(self) -> None:
        """Handle the replies of finished collection adds: accepted futures go RUNNING,
        server errors are queued again (after a pause), refusals fail their futures."""
        retry: list[WorkItem] = []
        for fut in [f for f in self.adding if f.done()]:
            del self.adding[fut]
            for item, result in fut.result():  # job gone / auth revoked: raises, breaks
                if result.accepted:
                    item.spec = b""  # Batch has it now: keep no copy of large inputs
                    self.in_flight[item.task_id] = item
                    item.future.set_running_or_notify_cancel()
                elif result.retry:
                    retry.append(item)
                else:
                    fail(item.future, TaskRejectedError(
                        f"Batch refused task {item.task_id}: {result.code}: "
                        f"{mask_secrets(result.message)}"))
        if retry:
            with self.ctx.lock:
                self.ctx.pending.extendleft(reversed(retry))
            self.dispatch_after = time.monotonic() + self.ctx.settings.poll_interval

    def take_pending(self) -> list[WorkItem]:
        ctx = self.ctx
        items: list[WorkItem] = []
        with ctx.lock:
            if ctx.cancelled:
                ctx.cancelled = False
                keep = [i for i in ctx.pending if not i.future.cancelled()]
                dropped = [i for i in ctx.pending if i.future.cancelled()]
                ctx.pending = collections.deque(keep)
                for item in dropped:
                    item.future.set_running_or_notify_cancel()
            room = min(MAX_DISPATCH, ctx.max_workers - self.busy())
            while ctx.pending and len(items) < room:
                item = ctx.pending.popleft()
                if item.future.cancelled():
                    item.future.set_running_or_notify_cancel()
                    continue
                items.append(item)
        return items

    def upload_inputs(self, items: list[WorkItem]) -> list[WorkItem]:
        """Upload the map payloads and the large specs these items need; return those ready."""
        ctx = self.ctx
        jobs: list[tuple[str, bytes, list[WorkItem]]] = []
        for payload_id in {i.shared_id for i in items if i.shared_id is not None}:
            payload = ctx.shared[payload_id]
            if not payload.uploaded:
                users = [i for i in items if i.shared_id == payload_id]
                jobs.append((ctx.layout.shared_blob(payload_id), payload.data, users))
        for item in items:
            if len(item.spec) > C.INLINE_THRESHOLD:
                jobs.append((ctx.layout.inputs_blob(item.index), item.spec, [item]))
        if not jobs:
            return items
        failed: set[int] = set()
        futures = [(self.io.submit(ctx.store.upload, name, data), users)
                   for name, data, users in jobs]
        for fut, users in futures:
            exc = fut.exception()
            if exc is None:
                continue
            if is_gone(exc):
                raise exc
            for item in users:
                failed.add(id(item))
                fail(item.future, exc)
        for payload_id in {i.shared_id for i in items if i.shared_id is not None}:
            if not any(id(i) in failed for i in items if i.shared_id == payload_id):
                ctx.shared[payload_id].uploaded = True
                ctx.shared[payload_id].data = b""  # uploaded: keep no copy
        return [i for i in items if id(i) not in failed]

    def task_definition(self, item: WorkItem) -> tuple[dict[str, Any], int]:
        lay, store = self.ctx.layout, self.ctx.store
        resources = []
        inline = None
        if len(item.spec) > C.INLINE_THRESHOLD:
            resources.append((store.read_url(lay.inputs_blob(item.index)), C.WORKER_INPUTS_FILE))
        else:
            inline = base64.b64encode(item.spec).decode("ascii")
        if item.shared_id is not None:
            resources.append((store.read_url(lay.shared_blob(item.shared_id)),
                              lay.shared_file(item.shared_id)))
        outputs = [(C.WORKER_OUTPUTS_FILE, lay.outputs_blob(item.index)),
                   ("../stdout.txt", lay.stdout_blob(item.index)),
                   ("../stderr.txt", lay.stderr_blob(item.index))]
        return self.factory.body(item.task_id, resources, outputs, inline)

    def add_tasks(self, items: list[WorkItem]) -> None:
        """Build the task bodies and send each collection (<= 100 tasks, < 1 MiB) as soon as
        it is full; collections go in parallel and their replies are harvested later, so
        building, adding and new submissions overlap."""
        group: list[tuple[WorkItem, dict[str, Any]]] = []
        size = 0
        for item in items:
            body, n = self.task_definition(item)
            if group and (len(group) >= C.MAX_TASKS_PER_COLLECTION
                          or size + n > C.MAX_COLLECTION_BODY):
                self.send(group)
                group, size = [], 0
            group.append((item, body))
            size += n
        if group:
            self.send(group)

    def send(self, group: list[tuple[WorkItem, dict[str, Any]]]) -> None:
        fut = self.io.submit(self.add_group, group)
        self.adding[fut] = [item for item, _ in group]
        fut.add_done_callback(lambda _: self.ctx.wakeup.set())

    def add_group(
        self, group: list[tuple[WorkItem, dict[str, Any]]]
    ) -> list[tuple[WorkItem, AddResult]]:
        job_id = self.ctx.layout.job_id
        try:
            results = self.ctx.batch.add_collection(job_id, [body for _, body in group])
        except HttpResponseError as exc:
            if error_code(exc) == "requestbodytoolarge" and len(group) > 1:
                half = len(group) // 2
                return self.add_group(group[:half]) + self.add_group(group[half:])
            if is_gone(exc):
                raise
            if is_transient(exc):  # retries exhausted: try again on a later tick
                return [(item, AddResult(item.task_id, False, True)) for item, _ in group]
            return [(item, AddResult(item.task_id, False, False, error_code(exc), str(exc)))
                    for item, _ in group]
        by_id = {r.task_id: r for r in results}
        missing = AddResult("", False, True)  # not in the reply: add it again
        return [(item, by_id.get(item.task_id, missing)) for item, _ in group]

    # ------------------------------------------------------------------ poll and collect
    def collect_completed(self) -> None:
        """When a tick is due: find newly completed tasks (one request while idle), fetch
        their outcomes in parallel, resolve their futures."""
        mine = [(self.early.pop(t), self.in_flight[t]) for t in list(self.early)
                if t in self.in_flight]  # completed before their add reply was harvested
        if self.in_flight and time.monotonic() >= self.next_poll:
            self.ctx.ticks += 1
            try:
                new = self.feed.poll()
            except Exception as exc:
                self.poll_failed(exc)
                new = []
            else:
                self.failures = 0
                self.back_off(moved=bool(new))
            adding = {i.task_id for group in self.adding.values() for i in group} if new else ()
            for t in new:
                if t.task_id in self.in_flight:
                    mine.append((t, self.in_flight[t.task_id]))
                elif t.task_id in adding:
                    self.early[t.task_id] = t
            if len(mine) == len(self.in_flight):
                self.feed.flowing = False  # nothing left to flow: count first next time
        fatal: BaseException | None = None
        for (task, item), fut in [(pair, self.io.submit(self.fetch_outcome, *pair))
                                  for pair in mine]:
            del self.in_flight[task.task_id]
            fatal = self.resolve(item, task, fut) or fatal
        if fatal is not None:
            raise fatal

    def poll_failed(self, exc: Exception) -> None:
        if is_gone(exc):
            raise exc
        self.failures += 1
        log.warning("poll of job %s failed (%d in a row): %s", self.ctx.layout.job_id,
                    self.failures, _first_line(exc))
        if self.failures >= MAX_POLL_FAILURES:
            raise exc
        self.feed.flowing = False
        self.back_off(moved=False)

    def back_off(self, moved: bool) -> None:
        """Next tick: one poll interval after results flowed, else doubling up to it."""
        cap = self.ctx.settings.poll_interval
        self.interval = cap if moved else min(cap, self.interval * 2)
        self.next_poll = time.monotonic() + self.interval

    def fetch_outcome(self, task: CompletedTask, item: WorkItem) -> Any:
        """The decoded outcome of a completed task, or a TaskFailedError when it left none."""
        data = self.ctx.store.download(self.ctx.layout.outputs_blob(item.index))
        if data is not None:
            return decode_outcome(data)
        return self.task_failed(task, item)

    def task_failed(self, task: CompletedTask, item: WorkItem) -> TaskFailedError:
        lay = self.ctx.layout
        stderr_blob = lay.stderr_blob(item.index)
        error = TaskFailedError.describe(
            task_id=task.task_id, job_id=lay.job_id, exit_code=task.exit_code,
            result=task.result, failure_code=task.failure_code,
            failure_message=task.failure_message, stderr_tail=self.ctx.store.tail(stderr_blob),
            stdout_blob=lay.stdout_blob(item.index), stderr_blob=stderr_blob,
            container_url=self.ctx.store.container_url,
        )
        error.args = (mask_secrets(error.args[0]),)
        return error

    def resolve(self, item: WorkItem, task: CompletedTask, fut: Future) -> BaseException | None:
        """Resolve one work item's future exactly once; return an executor-breaking error."""
        exc = fut.exception()
        if exc is not None:
            if is_gone(exc):
                fail(item.future, broken("the outputs could not be read", exc))
                return exc
            fail(item.future, exc)
            return None
        outcome = fut.result()
        if isinstance(outcome, TaskFailedError):
            fail(item.future, outcome)
            return None
        return settle(item, outcome, self.mark_broken)

    def mark_broken(self, exc: BrokenBatchExecutor) -> None:
        with self.ctx.lock:  # from now on submit() raises
            self.ctx.broken = self.ctx.broken or exc

    def check_health(self) -> None:
        if not self.in_flight or time.monotonic() < self.next_health:
            return
        self.next_health = time.monotonic() + C.HEALTH_CHECK_INTERVAL
        try:
            self.ctx.batch.check_alive(self.ctx.layout.job_id)
        except JobGone:
            raise
        except Exception as exc:
            self.poll_failed(exc)

    # ------------------------------------------------------------------ endings
    def finish_job(self) -> None:
        ctx = self.ctx
        try:
            ctx.batch.terminate_job(ctx.layout.job_id, "AllWorkDone")
            if ctx.settings.delete_pool_when_done:
                ctx.batch.delete_pool()
                log.info("deleting pool %s (delete_pool_when_done=True)", ctx.settings.pool_id)
        except Exception as exc:
            log.warning("could not end job %s: %s", ctx.layout.job_id, _first_line(exc))
        self.close_clients()

    def close_clients(self) -> None:
        for closer in (self.ctx.batch.close, self.ctx.store.close):
            try:
                closer()
            except Exception:  # noqa: S110 - closing is best effort
                pass

    def terminate_broken(self, cause: BaseException) -> None:
        """Fail every pending and in-flight future with BrokenBatchExecutor (cause chained)."""
        ctx = self.ctx
        reason = _reason(cause)
        log.error("executor for job %s is broken: %s", ctx.layout.job_id, reason)
        with ctx.lock:
            if ctx.broken is None:
                ctx.broken = cause if isinstance(cause, BrokenBatchExecutor) else broken(
                    reason, cause)
            items = list(ctx.pending) + list(self.in_flight.values())
            items += [item for group in self.adding.values() for item in group]
            ctx.pending.clear()
            self.in_flight.clear()
            self.adding.clear()
        for item in items:
            fail(item.future, broken(reason, cause))
        try:
            ctx.batch.terminate_job(ctx.layout.job_id, "ExecutorBroken")
        except Exception:  # noqa: S110 - best effort: the job may well be gone
            pass
        self.close_clients()


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return mask_secrets(text.splitlines()[0] if text else type(exc).__name__)


def _reason(cause: BaseException) -> str:
    if isinstance(cause, BrokenBatchExecutor):
        return str(cause)
    return ("the Batch job or pool is gone or the credentials were revoked: "
            f"{type(cause).__name__}: {_first_line(cause)}")
