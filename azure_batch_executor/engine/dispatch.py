"""Dispatch: pending work items into Batch tasks, the first verb of the poller's loop.

Role: one `Dispatcher` per executor. It runs on the manager thread (it has no thread
of its own) and moves work items through the manager's `lifecycle.WorkTable`. A tick:

    sweep cancelled         cancelled futures leave the submit queue; QUEUED items whose
                            future was cancelled leave the table and their tasks are
                            terminated (Batch then never runs them)
    harvest finished adds   accepted: ADDING -> QUEUED, the Future stays PENDING until its
                            task is seen running (a future cancelled during the add: its
                            task is terminated); server errors: back to PENDING, queued
                            again after a pause; refused: the future fails with
                            TaskRejectedError
    take pending items      PENDING -> ADDING while fewer than `JobContext.queue_limit`
                            (max_workers + queue_depth) are in the table, at most
                            MAX_DISPATCH per tick

Queue ahead: tasks are added to Batch beyond the free slots (`queue_depth`, default one
per slot), so that a slot that frees finds its next task already in Batch's queue
instead of waiting for add -> schedule (seconds on Azure; docs/how-it-works.md, "Queue
ahead"). `max_workers` still bounds the calls running at once: the pool's slots do, and
an explicit `max_workers` becomes the job's ``maxParallelTasks``.
    upload their inputs     map payloads and large arguments once, task specs > 6 KB as
                            blobs, in parallel in the manager's bounded I/O pool (the
                            bytes are counted in the usage record); a large argument is
                            no resource file: its URL is in the spec and each node
                            downloads it once (`wire.worker`)
    add their tasks         `taskdef` builds each definition; every collection
                            (<= 100 tasks, < 1 MiB) goes out in parallel as soon as it
                            is full, and its reply is harvested on a later tick
"""

from __future__ import annotations

import base64
import collections
import logging
import re
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .. import constants as C
from ..cloud.codes import ServiceError, error_code, is_gone, is_transient
from ..cloud.ports import AddResult
from ..cloud.taskdef import CALL_DISPLAY, CHUNK_DISPLAY, TaskFactory, group_collections
from ..config import first_line, mask_secrets
from ..errors import TaskRejectedError
from .autochunk import MapStream
from .lifecycle import WorkItem, WorkTable, drop_if_cancelled, fail
from .state import JobContext
from .usage import UsageMeter

log = logging.getLogger(__name__)

MAX_DISPATCH = 5000  # work items per tick, so polling goes on during a long burst

Group = list[tuple[WorkItem, str]]  # work items and their task definitions (JSON text)


class Dispatcher:
    """Turns pending work items into Batch tasks, moving them through `table`."""

    def __init__(self, ctx: JobContext, io: ThreadPoolExecutor, table: WorkTable,
                 usage: UsageMeter | None = None) -> None:
        self.ctx = ctx
        self.io = io
        self.table = table  # the manager's: the items taken from the queue
        self.usage = usage if usage is not None else UsageMeter(ctx.services.stats)
        self.adds: dict[Future[Any], list[WorkItem]] = {}  # collection adds under way
        self.dispatch_after = 0.0  # after server errors on adds, dispatch again from then on
        lay, store = ctx.services.layout, ctx.services.store
        common = [(store.read_url(lay.worker_blob()), C.WORKER_SCRIPT_FILE)]
        if not ctx.services.config_inline:
            common.append((store.read_url(lay.config_blob()), C.GLOBAL_CONFIG_FILE))
        self.factory = TaskFactory(ctx.services.settings, common, store.output_container_url(),
                                   registry=ctx.services.settings.registry)
        # The definition of a task with an inline spec and nothing shared (one submit()
        # call): the text `factory.body` builds for it, cut around its task id, index (3
        # times) and spec.
        task_id, index, spec = "@ABX-TASK-ID@", "@ABX-INDEX@", "@ABX-SPEC@"
        mark: Any = index  # the layout formats it like an int
        sample = self.factory.body(
            task_id, [], [(C.WORKER_OUTPUTS_FILE, lay.outputs_blob(mark)), *lay.log_files(mark)],
            spec, display=CALL_DISPLAY)
        self.plain = re.split(f"{task_id}|{index}|{spec}", sample)
        marks = re.findall(f"{task_id}|{index}|{spec}", sample)
        if marks != [task_id, index, index, index, spec]:  # the builder changed its order
            raise AssertionError(f"unexpected task definition layout: {marks}")

    # ------------------------------------------------------------------ for the manager
    def due_in(self) -> float | None:
        """Seconds until there is dispatch work to do (0: now), None while there is none."""
        if any(f.done() for f in self.adds):
            return 0.0
        if self.ctx.queue.pending and len(self.table) < self.ctx.queue_limit:
            return max(0.0, self.dispatch_after - time.monotonic())
        if self.room() > 0 and self.streams():
            return 0.0
        return None

    # ------------------------------------------------------------------ auto-chunked maps
    def room(self) -> int:
        """Work items the queue can take before `JobContext.queue_limit` is reached."""
        return self.ctx.queue_limit - len(self.table) - len(self.ctx.queue.pending)

    def streams(self) -> list[MapStream]:
        """The auto-chunked maps with calls left to make into chunks."""
        with self.ctx.lock:
            self.ctx.queue.streams = [s for s in self.ctx.queue.streams if s.wants()]
            return list(self.ctx.queue.streams)

    def make_chunks(self) -> None:
        """Make chunks of the auto-chunked maps while the queue has room, one stream after
        another, so each chunk is sized by every duration measured until then."""
        streams = self.streams() if self.room() > 0 else []
        while streams:
            for stream in streams:
                if self.room() <= 0:
                    return
                stream.produce()
            streams = self.streams()

    def end_streams(self, reason: BaseException) -> None:
        """No more chunks (terminate, broken): their callers get `reason`."""
        for stream in self.streams():
            stream.end(reason)

    # ------------------------------------------------------------------ a tick
    def harvest_adds(self) -> None:
        """Handle the replies of finished collection adds: accepted items are QUEUED,
        server errors are queued again (after a pause), refusals fail their futures."""
        retry: list[WorkItem] = []
        for fut in [f for f in self.adds if f.done()]:
            del self.adds[fut]
            for item, result in fut.result():  # job gone / auth revoked: raises, breaks
                if result.accepted:
                    item.spec = b""  # Batch has it now: keep no copy of large inputs
                    if not self.table.accepted(item):  # cancelled while being added
                        self.io.submit(self.terminate_task, item.task_id)
                elif result.retry:
                    self.table.leave(item)
                    retry.append(item)
                else:
                    self.table.leave(item)
                    fail(item, TaskRejectedError(
                        f"Batch refused task {item.task_id}: {result.code}: "
                        f"{mask_secrets(result.message)}"))
        if retry:
            with self.ctx.lock:
                self.ctx.queue.pending.extendleft(reversed(retry))
            self.dispatch_after = time.monotonic() + self.ctx.services.settings.poll_interval

    def send_pending(self) -> bool:
        """Take pending work items, upload their inputs, start adding their tasks; return
        whether any were taken."""
        if time.monotonic() < self.dispatch_after:
            return False
        items = self.take_pending()
        if items:
            self.add_tasks(self.upload_inputs(items))
        return bool(items)

    def sweep_cancelled(self) -> None:
        """Cancelled futures out of the submit queue, and out of the table with their queued
        tasks terminated (one request each, in the I/O pool)."""
        ctx = self.ctx
        with ctx.lock:
            if not ctx.queue.cancelled:
                return
            ctx.queue.cancelled = False  # one pass: each item is kept or dropped, never both
            ctx.queue.pending = collections.deque(
                item for item in ctx.queue.pending if not drop_if_cancelled(item))
        for item in self.table.cancelled():
            self.io.submit(self.terminate_task, item.task_id)

    def take_pending(self) -> list[WorkItem]:
        ctx = self.ctx
        items: list[WorkItem] = []
        with ctx.lock:
            room = min(MAX_DISPATCH, ctx.queue_limit - len(self.table))
            while ctx.queue.pending and len(items) < room:
                item = ctx.queue.pending.popleft()
                if not drop_if_cancelled(item):
                    items.append(item)
        self.table.take(items)
        return items

    def upload_inputs(self, items: list[WorkItem]) -> list[WorkItem]:
        """Upload the map payloads and the large specs these items need; return those ready."""
        ctx = self.ctx
        jobs: list[tuple[str, bytes, list[WorkItem]]] = []
        for payload_id in {i.shared_id for i in items if i.shared_id is not None}:
            payload = ctx.queue.shared[payload_id]
            if not payload.uploaded:
                users = [i for i in items if i.shared_id == payload_id]
                jobs.append((ctx.services.layout.shared_blob(payload_id), payload.data, users))
        for digest in {d for i in items for d in i.objects}:
            if not ctx.queue.objects[digest].uploaded:
                users = [i for i in items if digest in i.objects]
                jobs.append((ctx.services.layout.shared_blob(digest),
                             ctx.queue.objects[digest].data, users))
        for item in items:
            if len(item.spec) > C.INLINE_THRESHOLD:
                jobs.append((ctx.services.layout.inputs_blob(item.index), item.spec, [item]))
        if not jobs:
            return items
        failed: set[int] = set()
        futures = [(self.io.submit(ctx.services.store.upload, name, data), users)
                   for name, data, users in jobs]
        for (fut, users), (_, data, _) in zip(futures, jobs, strict=True):
            exc = fut.exception()
            if exc is None:
                self.usage.uploaded(len(data))
                continue
            if is_gone(exc):
                raise exc
            for item in users:
                if id(item) not in failed:
                    failed.add(id(item))
                    self.table.leave(item)
                    fail(item, exc)
        for payload_id in {i.shared_id for i in items if i.shared_id is not None}:
            if not any(id(i) in failed for i in items if i.shared_id == payload_id):
                ctx.queue.shared[payload_id].uploaded = True
                ctx.queue.shared[payload_id].data = b""  # uploaded: keep no copy
        for digest in {d for i in items for d in i.objects}:
            if not any(id(i) in failed for i in items if digest in i.objects):
                ctx.queue.objects[digest].uploaded = True
                ctx.queue.objects[digest].data = b""  # uploaded: keep no copy
        return [i for i in items if id(i) not in failed]

    def task_definition(self, item: WorkItem) -> str:
        if item.shared_id is None and len(item.spec) <= C.INLINE_THRESHOLD and not item.chunked:
            # the common case, large arguments too (their URLs are in the spec): one join
            index = str(item.index)
            parts = self.plain
            return "".join((parts[0], item.task_id, parts[1], index, parts[2], index, parts[3],
                            index, parts[4], base64.b64encode(item.spec).decode("ascii"),
                            parts[5]))
        lay, store = self.ctx.services.layout, self.ctx.services.store
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
                   *lay.log_files(item.index)]
        return self.factory.body(item.task_id, resources, outputs, inline,
                                 display=CHUNK_DISPLAY if item.chunked else CALL_DISPLAY)

    def terminate_task(self, task_id: str) -> None:
        try:
            self.ctx.services.batch.terminate_task(self.ctx.services.layout.job_id, task_id)
        except Exception as exc:  # noqa: BLE001 - best effort: the job's end ends it too
            log.warning("could not terminate cancelled task %s: %s", task_id,
                        first_line(exc))

    def add_tasks(self, items: list[WorkItem]) -> None:
        """Build the task definitions and send each collection as soon as it is full; the
        collections go in parallel and their replies are harvested later, so building,
        adding and new submissions overlap."""
        def definitions() -> Iterator[tuple[tuple[WorkItem, str], int]]:
            for item in items:
                body = self.task_definition(item)
                yield (item, body), len(body) + 1

        for group in group_collections(definitions()):
            self.send(group)

    def send(self, group: Group) -> None:
        fut = self.io.submit(self.add_group, group)
        self.adds[fut] = [item for item, _ in group]
        fut.add_done_callback(lambda _: self.ctx.wakeup.set())

    def add_group(self, group: Group) -> list[tuple[WorkItem, AddResult]]:
        job_id = self.ctx.services.layout.job_id
        try:
            results = self.ctx.services.batch.add_collection(job_id, [body for _, body in group])
        except ServiceError as exc:
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
