"""The manager: the one background thread per executor that talks to Batch after submit().

Role: like CPython's ``_ExecutorManagerThread``. It holds only a weakref to the
executor and shares a `state.JobContext` with it; it owns the `lifecycle.WorkTable` of
the work items it took from the submit queue; it wakes on an Event (a submit, a cancel,
shutdown) or when its poll interval is up, and its `run()` reads as a list of verbs:

    dispatch pending work items  `dispatch.Dispatcher`: uploads in a bounded thread pool,
                                 create_task_collection (<= 100 tasks per call, in
                                 parallel), ahead of free slots; accepted items are QUEUED
                                 (futures PENDING, cancellable: their tasks terminated)
    collect completed tasks      batch.CompletionFeed: one request per idle tick (the job's
                                 task counts), a listing of the tasks completed since a
                                 watermark when the count moved (with the tasks that
                                 started running while some are QUEUED: futures RUNNING);
                                 then download outputs in parallel and settle each future
                                 (`lifecycle.settle`)
    check health                 every few seconds: the job still active, the pool still there
                                 (not while listings find completed tasks: that shows both)

Ticks follow submitit's watcher: right after the first tasks go out they come
fast, doubling up to the `poll_interval` cap; while results flow a tick is one
listing every `poll_interval` (the count is skipped), otherwise one count. If
the job or pool disappears or credentials are revoked, `terminate_broken` fails
every pending future with `BrokenBatchExecutor` (cause chained). When the executor
is shut down (or garbage collected) and nothing is left in flight, the thread
deletes the job (terminates it with ``keep_job``), deletes the pool if asked, deletes
the job's blob container or marks it for expiry (`cleanup.BlobCleanup`, whose marker and sweep
start with the first dispatch), logs the usage record (`usage.UsageMeter`, fed by
collect and dispatch) and exits. After `terminate()` it does not wait for the tasks:
`terminate_all` terminates the job in one request and resolves every future.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor, wait
from typing import Any

from .. import constants as C
from ..cloud.codes import ENDED_CODES, error_code, is_gone, is_service_error
from ..cloud.ports import BlobPort, CompletedTask
from ..config import first_line, mask_secrets
from ..errors import BrokenBatchExecutor, TaskFailedError, TaskTerminatedError
from ..nodeenv.jobprep import preparation_error
from ..wire.layout import JobLayout
from ..wire.outcome import Outcome, decode_outcome
from .cleanup import BlobCleanup
from .dispatch import Dispatcher
from .lifecycle import WorkItem, WorkTable, broken, end, fail, settle
from .output import echo
from .pools import PoolWatcher
from .progress import Progress
from .state import JobContext
from .usage import UsageMeter
from .watch import Watcher

log = logging.getLogger(__name__)


_global_shutdown = False
_contexts: weakref.WeakSet[JobContext] = weakref.WeakSet()


def python_exit() -> None:
    """At interpreter exit: let every poller finish its in-flight work, then join them."""
    global _global_shutdown
    _global_shutdown = True
    last = getattr(sys, "last_value", None)  # the exception the interpreter is exiting with
    interrupted = isinstance(last, BaseException) and not isinstance(last, Exception)
    for ctx in list(_contexts):
        if interrupted or ctx.flags.interrupted:  # never leave the interrupted work running
            ctx.flags.interrupted = ctx.flags.interrupted or type(last).__name__
            ctx.flags.terminate = True
        ctx.wakeup.set()
    for thread in threading.enumerate():
        if isinstance(thread, Manager):
            thread.join()


class Manager(threading.Thread):
    """Turns pending work items into Batch tasks (through its `Dispatcher`), and completed
    tasks into resolved futures."""

    def __init__(self, executor: Any, ctx: JobContext) -> None:
        super().__init__(name=f"abx-manager-{ctx.services.layout.job_id}", daemon=True)
        self.ctx = ctx
        self.executor_ref = weakref.ref(executor, lambda _: ctx.wakeup.set())
        self.table = WorkTable()  # the items taken from the queue: ADDING, QUEUED or RUNNING
        self.watcher = Watcher.for_settings(ctx.services.batch, ctx.services.layout.job_id,
                                            ctx.services.settings)
        self.pools = PoolWatcher(ctx.services.batch, ctx.services.settings,
                                 ctx.services.layout.job_id, attempt=self.watcher.attempt)
        self.io = ThreadPoolExecutor(C.IO_THREADS, thread_name_prefix="abx-io")
        settings = ctx.services.settings
        self.usage = UsageMeter(ctx.services.stats, ctx.services.layout.job_id,
                                settings.node_hour_price)
        self.dispatcher = Dispatcher(ctx, self.io, self.table, self.usage)
        self.cleanup = BlobCleanup(ctx.services.shared_store, ctx.services.store,
                                   ctx.services.layout, settings.blob_retention,
                                   keep=settings.keep_job)
        self.cleanup_started: Future[None] | None = None
        self.resolved = 0  # futures this thread resolved from completed tasks
        self.progress = Progress.start(settings.progress, ctx.services.layout.job_id)
        _contexts.add(ctx)

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        try:
            while True:
                self.wait_for_work()
                if self.ctx.flags.terminate:
                    self.terminate_all()
                    return
                self.dispatch_pending()
                self.collect_completed()
                self.check_health()
                self.show_progress()
                if self.done():
                    break
            self.finish_job()
        except BaseException as exc:  # noqa: BLE001 - every future must resolve
            self.terminate_broken(exc)
        finally:
            self.io.shutdown(wait=False)
            self.close_progress()

    def wait_for_work(self) -> None:
        ctx = self.ctx
        ctx.wakeup.clear()
        if self.done() or ctx.flags.terminate:
            return
        waits = [self.dispatcher.due_in()]
        if self.table.in_flight():
            waits.append(self.watcher.due_in())
            waits.append(self.pools.due_in())  # a wait for nodes is looked at on time
        if ctx.queue.cancelled or ctx.flags.cancel_queued:
            waits.append(0.0)
        timeout = min((w for w in waits if w is not None), default=None)
        if timeout is None or timeout > 0:
            ctx.wakeup.wait(timeout)

    def done(self) -> bool:
        ctx = self.ctx
        stopping = ctx.flags.shutdown or _global_shutdown or self.executor_ref() is None
        return (stopping and not ctx.queue.pending and not self.table
                and not self.dispatcher.adds and not self.dispatcher.streams())

    def dispatch_pending(self) -> None:
        dispatcher, ctx = self.dispatcher, self.ctx
        if ctx.flags.cancel_queued:  # shutdown(cancel_futures=True): queued tasks too
            with ctx.lock:
                ctx.flags.cancel_queued = False
                ctx.queue.cancelled = True
            ctx.flags.cancelled_by_shutdown += self.table.cancel_queued()
        dispatcher.sweep_cancelled()
        dispatcher.harvest_adds()
        dispatcher.make_chunks()
        idle = not self.table
        if dispatcher.send_pending() and idle:  # the first tasks: poll soon, then back off
            self.watcher.restart()
            if self.cleanup_started is None:  # mark the job's blobs for expiry, sweep
                self.cleanup_started = self.io.submit(self.cleanup.started)  # expired ones

    # ------------------------------------------------------------------ poll and collect
    def collect_completed(self) -> None:
        """When a tick is due: find newly completed tasks (one request while idle), fetch
        their outcomes in parallel, resolve their futures."""
        table = self.table
        mine = list(table.harvest_early())  # completed before their add reply was harvested
        if table.in_flight() and not self.watcher.due_in():
            for t in self.watcher.poll(started=bool(table.queued)):
                item = table.completed(t)
                if item is not None:
                    mine.append((t, item))
            for task_id in self.watcher.take_started():  # QUEUED -> RUNNING
                cancelled = table.started(task_id)
                if cancelled is not None:  # cancelled before it was seen running: end it
                    self.io.submit(self.dispatcher.terminate_task, task_id)
            if not table.in_flight():
                self.watcher.drained()
        fatal: BaseException | None = None
        for task, _ in mine:
            self.usage.task_completed(task)
        self.resolved += len(mine)
        for (task, item), fut in [(pair, self.io.submit(self.fetch_outcome, *pair))
                                  for pair in mine]:
            fatal = self.resolve(item, task, fut) or fatal
        if fatal is not None:
            raise fatal

    def fetch_outcome(self, task: CompletedTask, item: WorkItem) -> Any:
        """The decoded outcome of a completed task, or a TaskFailedError when it left none."""
        return fetch_outcome(self.ctx.services.store, self.ctx.services.layout, task,
                             item.index, self.usage.downloaded)

    def resolve(self, item: WorkItem, task: CompletedTask, fut: Future[Any]
                ) -> BaseException | None:
        """Resolve one work item's future exactly once; return an executor-breaking error."""
        exc = fut.exception()
        if exc is not None:
            if is_gone(exc):
                fail(item, broken("the outputs could not be read", exc))
                return exc
            fail(item, exc)
            return None
        outcome = fut.result()
        if isinstance(outcome, TaskFailedError):
            fail(item, outcome)
            return None
        self.usage.worker_report(outcome.node)
        if item.sizer is not None:  # map(chunksize=None): what its calls took
            item.sizer.observe(len(outcome.results), outcome.node.get("calls_seconds"))
        if outcome.output and self.ctx.services.settings.echo_output:
            echo(item.task_id, outcome.output)
        return settle(item, outcome, self.mark_broken)

    def mark_broken(self, exc: BrokenBatchExecutor) -> None:
        with self.ctx.lock:  # from now on submit() raises
            self.ctx.flags.broken = self.ctx.flags.broken or exc

    def check_health(self) -> None:
        """While tasks are in flight and nothing completes: the job and pool still there,
        and (with an environment to prepare) no node that failed to prepare it; and never
        a silent wait for nodes (`pools.PoolWatcher`: status lines, its errors)."""
        if self.table.in_flight():
            self.pools.check(self.table.in_flight())
        if self.table.in_flight() and self.watcher.check_health():
            env_id = self.ctx.services.env_id
            if env_id is not None:
                failures = self.watcher.attempt(  # a passing failure: None, checked later
                    self.ctx.services.batch.preparation_failures, self.ctx.services.layout.job_id)
                if failures:  # the same lock fails alike on every node: fail it all now
                    raise preparation_error(env_id, failures[0])

    def show_progress(self) -> None:
        """Redraw the progress bar (`progress.Progress`), if there is one: the futures
        resolved of the work items submitted so far, the pool's wait in its postfix."""
        if self.progress is not None:
            with contextlib.suppress(Exception):  # a bar never fails the executor
                self.progress.show(self.resolved, self.ctx.queue.counter, self.pools.postfix)

    def close_progress(self) -> None:
        if self.progress is not None:
            self.show_progress()
            with contextlib.suppress(Exception):  # a bar never fails the executor
                self.progress.close()
            self.progress = None

    # ------------------------------------------------------------------ endings
    def finish_job(self) -> None:
        """Every result is collected: end the job (`end_job`), delete the pool if asked, let
        the blobs expire (`cleanup`), log the usage."""
        ctx = self.ctx
        try:
            self.end_job("AllWorkDone")
            self.delete_pool_if_asked()
        except Exception as exc:  # noqa: BLE001 - every future is resolved: only log it
            log.warning("could not end job %s: %s", ctx.services.layout.job_id, first_line(exc))
        self.clean_up_blobs()
        self.report_usage()
        self.close_clients()

    def end_job(self, reason: str) -> None:
        """One request: delete the job (its tasks' records and directories on the nodes go
        with it), or, with ``keep_job``, terminate it (kept for a reattach)."""
        ctx, job_id = self.ctx, self.ctx.services.layout.job_id
        if ctx.services.settings.keep_job:
            ctx.services.batch.terminate_job(job_id, reason)
            log.debug("terminated job %s (keep_job=True)", job_id)
        else:
            ctx.services.batch.delete_job(job_id)
            log.debug("deleted job %s", job_id)

    def terminate_all(self) -> None:
        """terminate(): wait for the adds under way, terminate the job (one request, however
        many tasks: Batch kills its running tasks and never schedules its active ones), then
        resolve every future: cancelled when Batch never had its task, else failed with
        TaskTerminatedError. The job is kept, terminated, for inspection."""
        ctx, job_id = self.ctx, self.ctx.services.layout.job_id
        with ctx.lock:
            queued = list(ctx.queue.pending)
            ctx.queue.pending.clear()
        self.dispatcher.end_streams(CancelledError())
        wait(list(self.dispatcher.adds))  # their tasks may be in the job: end them too
        self.dispatcher.adds.clear()
        items = self.table.clear()
        if ctx.flags.interrupted:  # the user pressed Ctrl-C: say what is being ended, visibly
            log.warning("%s: terminating Batch job %s: %d task(s) in flight ended, "
                        "%d queued call(s) cancelled", ctx.flags.interrupted, job_id, len(items),
                        len(queued) + ctx.flags.cancelled_by_shutdown)
        else:
            log.info("terminating job %s (%d task(s) in flight)", job_id, len(items))
        try:  # "Job - Terminate" (REST): running tasks are terminated, and active ones "will
            # remain in the active state ... [and] will not be scheduled": no request per task
            ctx.services.batch.terminate_job(job_id, "ExecutorTerminated")
        except Exception as exc:  # noqa: BLE001 - best effort: logged unless already over
            if error_code(exc) not in ENDED_CODES:
                log.warning("could not terminate job %s: %s", job_id, first_line(exc))
        for item in queued + items:
            end(item, TaskTerminatedError(
                f"task {item.task_id} of job {job_id} was terminated by terminate()"))
        if ctx.services.settings.delete_pool_when_done:
            try:
                self.delete_pool_if_asked()
            except Exception as exc:  # noqa: BLE001 - best effort: logged
                log.warning("could not delete pool %s: %s", ctx.services.settings.pool_id,
                            first_line(exc))
        self.clean_up_blobs()
        self.report_usage()
        self.close_clients()

    def clean_up_blobs(self) -> None:
        """The job's blobs: deleted now or marked to expire (`cleanup.BlobCleanup`), once the
        marker and sweep of the first dispatch are done."""
        if self.cleanup_started is not None:
            wait([self.cleanup_started])
        self.cleanup.finished()

    def report_usage(self) -> None:
        """The usage record in one INFO line (`usage.Usage`)."""
        log.info("%s", self.usage.snapshot())

    def delete_pool_if_asked(self) -> None:
        """`delete_pool_when_done`: delete the pool if this executor created it; a pool it
        found is used by others, and kept."""
        services = self.ctx.services
        if not services.settings.delete_pool_when_done:
            return
        if not services.pool_created:
            log.info("pool %s kept: this executor did not create it (delete_pool_when_done "
                     "deletes only a pool the executor created)", services.settings.pool_id)
            return
        services.batch.delete_pool()
        log.info("deleting pool %s (delete_pool_when_done=True)", services.settings.pool_id)

    def close_clients(self) -> None:
        for closer in (self.ctx.services.batch.close, self.ctx.services.store.close):
            with contextlib.suppress(Exception):  # closing is best effort
                closer()

    def terminate_broken(self, cause: BaseException) -> None:
        """Fail every pending and in-flight future with BrokenBatchExecutor (cause chained)."""
        ctx = self.ctx
        reason = _reason(cause)
        log.error("executor for job %s is broken: %s", ctx.services.layout.job_id, reason)
        with ctx.lock:
            if ctx.flags.broken is None:
                ctx.flags.broken = cause if isinstance(cause, BrokenBatchExecutor) else broken(
                    reason, cause)
            items = list(ctx.queue.pending) + self.table.clear()
            ctx.queue.pending.clear()
        self.dispatcher.adds.clear()
        error = cause if isinstance(cause, BrokenBatchExecutor) else broken(reason, cause)
        self.dispatcher.end_streams(error)
        for item in items:  # one error for all, of its own type, as CPython's pools do
            fail(item, error)
        with contextlib.suppress(Exception):  # best effort: the job may well be gone
            ctx.services.batch.terminate_job(ctx.services.layout.job_id, "ExecutorBroken")
        with contextlib.suppress(Exception):  # best effort, as on a normal end
            self.delete_pool_if_asked()
        with contextlib.suppress(Exception):  # its blobs expire by the first marker
            self.report_usage()
        self.close_clients()


def fetch_outcome(store: BlobPort, layout: JobLayout, task: CompletedTask, index: int,
                  downloaded: Callable[[int], None] | None = None) -> Outcome | TaskFailedError:
    """The decoded outcome of completed task `index` (its outputs blob; `downloaded` is told
    its size), or a TaskFailedError when it left none (`task_failed`). The manager thread's,
    and a reattached job's (`attach`)."""
    data = store.download(layout.outputs_blob(index))
    if data is not None:
        if downloaded is not None:
            downloaded(len(data))
        return decode_outcome(data)
    return task_failed(store, layout, task, index)


def task_failed(store: BlobPort, layout: JobLayout, task: CompletedTask, index: int
                ) -> TaskFailedError:
    """Why task `index` left no outcome: Batch's exit code and failure info, and the tail of
    its stderr blob (secrets masked)."""
    stderr_blob = layout.stderr_blob(index)
    error = TaskFailedError.describe(
        task_id=task.task_id, job_id=layout.job_id, exit_code=task.exit_code,
        result=task.result, failure_code=task.failure_code,
        failure_message=task.failure_message, stderr_tail=store.tail(stderr_blob),
        stdout_blob=layout.stdout_blob(index), stderr_blob=stderr_blob,
        container_url=store.container_url,
    )
    error.args = (mask_secrets(error.args[0]),)
    return error


def _reason(cause: BaseException) -> str:
    """What broke the executor, as it happened: the service's answer, or our own failure."""
    if isinstance(cause, BrokenBatchExecutor):
        return str(cause)
    if is_gone(cause):
        return ("the Batch job or pool is gone or the credentials were revoked: "
                f"{type(cause).__name__}: {first_line(cause)}")
    if is_service_error(cause):
        return (f"the Batch or Storage service kept failing: {type(cause).__name__}: "
                f"{first_line(cause)}")
    return ("an internal error of azure-batch-executor (please report it with this text): "
            f"{type(cause).__name__}: {first_line(cause)}")
