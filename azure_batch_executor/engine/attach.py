"""Reattach: the results of a job whose client is gone, and the list of this package's jobs.

Role: what `AzureBatchExecutor.attach(job_id)` and `AzureBatchExecutor.jobs()` do. Every
task the executor adds says in its ``displayName`` what its future resolves to
(`cloud.taskdef.CALL_DISPLAY`: one submit() call; `CHUNK_DISPLAY`: a chunk of a map()), and
in its id its place in the submission order (``task-000042``, `wire.layout`); its outcome
is a blob of a fixed name in the job's own container (`wire.layout.JobLayout.container`).
So another process, which never saw the calls, rebuilds their
futures from one listing of the job's tasks, with no record kept on the client::

  attach_job   the job (none: ConfigurationError naming the fix), then one listing of its
    │          tasks (id, state, displayName, executionInfo): a `lifecycle.WorkItem` per
    │          task, in task index order; an `AttachedJob` holds their futures
    ▼
  _Watch       a thread: the tasks completed already at once, then the others as a
    │          `watch.Watcher` finds them (one count per idle tick, a listing when it
    │          moved), each outcome downloaded and settled as the manager thread does
    │          (`manager.fetch_outcome`, `lifecycle.settle`); the job or its pool gone
    │          meanwhile, or a job that is over with tasks left: every future left fails
    │          with BrokenBatchExecutor (never a future that hangs)
    ▼
  shutdown     once every future is resolved (at once with ``cancel_futures``: the job
               terminated, what is left ends), the job is deleted (terminated with
               ``keep_job``) and its blobs deleted or marked to expire
               (`cleanup.BlobCleanup`), as at the end of an executor

`list_jobs` is the read behind ``jobs()``: the account's jobs whose id this package made
(`made_here`, shared with the CLI's ``jobs`` command), with their task counts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import re
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

from .. import constants as C
from ..cloud.codes import ENDED_CODES, NotFound, error_code, is_gone
from ..cloud.ports import BatchPort, BlobPort, CompletedTask, Connect, ListedTask, TaskCounts
from ..cloud.retry import RequestStats, RetryPolicy
from ..cloud.taskdef import CALL_DISPLAY, CHUNK_DISPLAY
from ..config import Settings, first_line
from ..errors import BrokenBatchExecutor, ConfigurationError, TaskFailedError, TaskTerminatedError
from ..wire.layout import JobLayout
from .accounts import with_local_stack
from .cleanup import BlobCleanup
from .lifecycle import WorkItem, broken, end, fail, notify_cancelled, settle, start
from .manager import fetch_outcome
from .output import TaskOutput, echo
from .output import decode as decode_output
from .watch import Watcher

log = logging.getLogger(__name__)

COUNT_THREADS = 8  # task-count requests in flight at once (`list_jobs`)
# Batch job states in which a job may still run tasks (anything but completed/deleting).
LIVE_JOB_STATES = frozenset({"active", "disabling", "disabled", "enabling", "terminating"})
_JOB_STAMP = re.compile(r"-(\d{8}-\d{6})-[0-9a-f]{8}$")
_TASK_ID = re.compile(r"task-\d{6,}")
_OLDEST = dt.datetime.min.replace(tzinfo=dt.timezone.utc)


def made_here(job_id: str, job_id_prefix: str) -> bool:
    """Whether a job id (or the name of a blob prefix) is one the executor makes with this
    `job_id_prefix` (``<prefix>-<UTC stamp>-<hex>``, `wire.layout.new_job_id`)."""
    return job_id.startswith(job_id_prefix + "-") and bool(_JOB_STAMP.search(job_id))


def stamped(job_id: str) -> dt.datetime | None:
    """The creation time the executor wrote into a job id, or None."""
    m = _JOB_STAMP.search(job_id)
    if m is None:
        return None
    return dt.datetime.strptime(m.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=dt.timezone.utc)


@dataclasses.dataclass(frozen=True)
class JobInfo:
    """One of this package's jobs, as `AzureBatchExecutor.jobs()` lists them: Batch's state
    (``active``: its client may be gone, `AzureBatchExecutor.attach` gets its results;
    ``terminating``, ``completed`` (``keep_job``), ``deleting``), its creation time and
    pool, and its tasks by state (`failed`: among `completed`, those that failed)."""

    id: str
    state: str
    created: dt.datetime | None
    pool_id: str | None
    active: int
    running: int
    completed: int
    failed: int

    @property
    def tasks(self) -> int:
        """Every task of the job: active, running and completed."""
        return self.active + self.running + self.completed


def resolve_settings(settings: Mapping[str, Any]) -> Settings:
    """The settings resolved as the executor's constructor resolves them (keywords, then
    variables, then defaults), completed by the local stack when no account is set."""
    resolved = Settings.resolve(**settings)
    return with_local_stack(resolved) if resolved.local else resolved


def list_jobs(connect: Connect, settings: Mapping[str, Any]) -> list[JobInfo]:
    """This package's jobs on the account of `settings`, newest first: one listing, then
    one task-count request per job (a few at a time); a job deleted meanwhile is left out."""
    resolved = resolve_settings(settings)
    store, batch = connect(resolved, RequestStats(), RetryPolicy())
    try:
        ours = [j for j in batch.list_jobs() if made_here(j.job_id, resolved.job_id_prefix)]
        with ThreadPoolExecutor(COUNT_THREADS, thread_name_prefix="abx-jobs") as pool:
            counts = list(pool.map(lambda job_id: _counts(batch, job_id),
                                   [j.job_id for j in ours]))
    finally:
        _close(store, batch)
    found = [JobInfo(j.job_id, j.state, j.created, j.pool_id, c.active, c.running,
                     c.completed, c.failed)
             for j, c in zip(ours, counts, strict=True) if c is not None]
    return sorted(found, key=lambda j: (j.created is not None, j.created or _OLDEST, j.id),
                  reverse=True)


def _counts(batch: BatchPort, job_id: str) -> TaskCounts | None:
    try:
        return batch.job_task_counts(job_id)
    except NotFound:
        return None


def attach_job(connect: Connect, job_id: str, settings: Mapping[str, Any]) -> AttachedJob:
    """The futures of job `job_id` (`AzureBatchExecutor.attach`): the job read, its tasks
    listed, then an `AttachedJob` whose thread resolves them."""
    resolved = resolve_settings(settings)
    shared, batch = connect(resolved, RequestStats(), RetryPolicy())
    try:
        record = batch.job_record(job_id)
        if record is None:
            raise ConfigurationError(_not_found(job_id, resolved))
        if record.pool_id and record.pool_id != resolved.pool_id:  # its health checks
            _close(shared, batch)  # look at the job's own pool
            resolved = dataclasses.replace(resolved, pool_id=record.pool_id)
            shared, batch = connect(resolved, RequestStats(), RetryPolicy())
        listed = batch.list_job_tasks(job_id)
    except BaseException:
        _close(shared, batch)
        raise
    return AttachedJob(_Watch(resolved, JobLayout(job_id), shared, batch, record.state,
                              listed))


def _not_found(job_id: str, settings: Settings) -> str:
    where = ("the local stack of this process" if settings.local
             else f"Batch account {settings.batch_account_name or settings.batch_account_url}")
    text = (f"no job {job_id!r} on {where} (JobNotFound): check the id and the account "
            "settings (the same as the executor's); AzureBatchExecutor.jobs() or the CLI's "
            "`azure-batch-executor jobs` lists this package's jobs")
    if settings.local:
        text += ("; a local stack's jobs live as long as the process that started it: to "
                 "reattach from another process, give both the stack's settings")
    return text


def _close(store: BlobPort, batch: BatchPort) -> None:
    for closer in (batch.close, store.close):
        with contextlib.suppress(Exception):  # closing is best effort
            closer()


class AttachedJob:
    """The results of a job an executor started, in a process that did not submit its
    calls (`AzureBatchExecutor.attach`).

    `futures`: one per task, in submission order (the task index order): a submit()'s
    resolves to its call's result or exception; a map() chunk's to the list of its calls'
    results (its first failed call's exception if one failed). `results()` yields every
    call's result in submission order, raising a call's exception in its place, as the
    iterator of map() does. `task_ids[i]` is the task of `futures[i]`.

    The futures resolve as the tasks complete, checked by a thread of this object. Leaving
    ``with`` (or `shutdown()`) waits for them, then deletes the job and its blobs as an
    executor's end does (the job is terminated and kept with ``keep_job=True``).
    """

    def __init__(self, watch: _Watch) -> None:
        self._watch = watch
        self.job_id = watch.layout.job_id
        self.task_ids = [item.task_id for item in watch.items]
        self.futures = [item.future if not item.chunked and item.task_id not in watch.unknown
                        else _chunk_future(item) for item in watch.items]
        self._finalizer = weakref.finalize(self, watch.release)
        self._finalizer.atexit = False  # a process that exits leaves the job, as a crash
        watch.start()

    def results(self, timeout: float | None = None) -> Iterator[Any]:
        """Every call's result in submission order (a chunk's calls in their order); a call
        that raised raises here, in its place, and ends the iteration, as map()'s iterator
        does. `timeout`: seconds for all of them (TimeoutError when over)."""
        end_time = None if timeout is None else time.monotonic() + timeout
        for item in self._watch.items:
            left = None if end_time is None else max(0.0, end_time - time.monotonic())
            value = item.future.result(left)
            if not item.chunked:
                yield value
                continue
            for ok, result in value:
                if not ok:
                    raise result
                yield result

    def task_output(self, position: int) -> TaskOutput:
        """The whole stdout and stderr of the task of ``futures[position]``, read from
        their blobs (one request each)."""
        item = self._watch.items[position]
        store, lay = self._watch.store, self._watch.layout
        return TaskOutput(decode_output(store.download(lay.stdout_blob(item.index))),
                          decode_output(store.download(lay.stderr_blob(item.index))))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False,
                 delete_job: bool | None = None) -> None:
        """End the job once every future is resolved: delete it (`delete_job=None`: unless
        the ``keep_job`` setting; True: delete; False: terminate it and keep it), and its
        blobs by the ``blob_retention`` setting. `cancel_futures`: do not wait for the
        tasks: the job is terminated now (its running tasks killed, the others never
        started), their futures cancelled or failed with TaskTerminatedError. `wait`:
        return once all that is done."""
        self._watch.release(cancel=cancel_futures, delete_job=delete_job)
        if wait and threading.current_thread() is not self._watch:
            self._watch.join()

    def __enter__(self) -> AttachedJob:
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> Literal[False]:
        """Leaving ``with``: `shutdown()`; an interrupt (KeyboardInterrupt, SystemExit)
        ends the job's work at once, as it does an executor's (``cancel_futures=True``)."""
        interrupted = exc_val is not None and not isinstance(exc_val, (Exception,
                                                                       GeneratorExit))
        self.shutdown(wait=True, cancel_futures=interrupted)
        return False

    def __repr__(self) -> str:
        done = sum(f.done() for f in self.futures)
        return f"AttachedJob(job_id={self.job_id!r}, tasks={len(self.futures)}, done={done})"


def _chunk_future(item: WorkItem) -> Future[Any]:
    """The future of a chunk (or of a task whose kind only its outcome tells, `item.chunked`
    set then): the list of its calls' results, or its first failed call's exception."""
    outer: Future[Any] = Future()

    def copy(inner: Future[Any]) -> None:
        try:
            if inner.cancelled():
                outer.cancel()
                notify_cancelled(outer)
                return
            exc = inner.exception()
            if exc is not None:
                outer.set_exception(exc)
            elif not item.chunked:
                outer.set_result(inner.result())
            else:
                errors = [value for ok, value in inner.result() if not ok]
                if errors:
                    outer.set_exception(errors[0])
                else:
                    outer.set_result([value for _, value in inner.result()])
        except Exception:  # noqa: BLE001 - the user cancelled `outer` first: nothing to tell
            notify_cancelled(outer)

    def cancel_inner(future: Future[Any]) -> None:
        if future.cancelled():
            item.future.cancel()

    item.future.add_done_callback(copy)
    outer.add_done_callback(cancel_inner)
    return outer


class _Watch(threading.Thread):
    """The thread of an `AttachedJob`: resolves its work items as their tasks complete,
    then ends the job when released (`release`)."""

    def __init__(self, settings: Settings, layout: JobLayout, shared: BlobPort,
                 batch: BatchPort, state: str, listed: list[ListedTask]) -> None:
        super().__init__(name=f"abx-attach-{layout.job_id}", daemon=True)
        self.settings, self.layout, self.shared, self.batch = settings, layout, shared, batch
        self.store = shared.for_container(layout.container)  # the job's own container
        self.state = state
        tasks = sorted((t for t in listed if _TASK_ID.fullmatch(t.task_id)),
                       key=lambda t: layout.task_index(t.task_id))
        self.items = [WorkItem(Future(), layout.task_index(t.task_id), b"",
                               chunked=t.display_name == CHUNK_DISPLAY, task_id=t.task_id)
                      for t in tasks]
        # tasks of no executor of this version: a call or a chunk, as their outcome shows
        self.unknown = {t.task_id for t in tasks
                        if t.display_name not in (CALL_DISPLAY, CHUNK_DISPLAY)}
        self.first = tasks  # the tasks as listed: the completed ones are resolved first
        self.pending = {item.task_id: item for item in self.items}
        self.watcher = Watcher.for_settings(batch, layout.job_id, settings)
        self.wakeup = threading.Event()
        self.lock = threading.Lock()
        self.released = False
        self.cancel = False
        self.delete_job: bool | None = None

    def release(self, cancel: bool = False, delete_job: bool | None = None) -> None:
        """Shut down: end the job once every future is resolved (at once with `cancel`)."""
        with self.lock:
            self.released = True
            self.cancel = self.cancel or cancel
            if delete_job is not None:
                self.delete_job = delete_job
        self.wakeup.set()

    def run(self) -> None:
        io = ThreadPoolExecutor(C.IO_THREADS, thread_name_prefix="abx-io")
        try:
            self.collect(io, [t for t in self.first if t.state == "completed"])
            for t in self.first:
                if t.state == "running" and t.task_id in self.pending:
                    start(self.pending[t.task_id])
            if self.pending and self.state not in LIVE_JOB_STATES:
                raise BrokenBatchExecutor(
                    f"job {self.layout.job_id} is {self.state}: its {len(self.pending)} "
                    "task(s) not completed will never run")
            while self.pending and not self.cancel:
                self.wakeup.wait(self.watcher.due_in())
                self.wakeup.clear()
                if self.cancel or self.watcher.due_in() > 0:
                    continue
                self.collect(io, self.watcher.poll(started=True))
                for task_id in self.watcher.take_started():
                    if task_id in self.pending:
                        start(self.pending[task_id])
                if self.pending:
                    self.watcher.check_health()  # every few seconds: job and pool there
            if self.cancel:
                self.terminate()
            while not self.released:
                self.wakeup.wait()
                self.wakeup.clear()
            self.finish()
        except BaseException as exc:  # noqa: BLE001 - every future must resolve
            self.broken(exc)
        finally:
            io.shutdown(wait=False)
            _close(self.shared, self.batch)

    def collect(self, io: ThreadPoolExecutor, tasks: Sequence[CompletedTask]) -> None:
        """Resolve the work items of these completed tasks from their outcomes, downloaded
        in parallel; raise what means the job is gone."""
        fetches = []
        for t in tasks:
            item = self.pending.get(t.task_id)
            if item is None:  # resolved already (a listing's overlap)
                continue
            if not start(item):  # the user cancelled its future: nothing to tell
                del self.pending[t.task_id]
                continue
            fetches.append((item, io.submit(fetch_outcome, self.store, self.layout, t,
                                            item.index)))
        fatal: BaseException | None = None
        for item, fut in fetches:
            fatal = self.resolve(item, fut) or fatal
            del self.pending[item.task_id]  # resolved: what is left fails in `broken`
        if fatal is not None:
            raise fatal

    def resolve(self, item: WorkItem, fut: Future[Any]) -> BaseException | None:
        """Resolve one work item from its task's outcome (`fetch_outcome`), as the manager
        thread does; return the error that means the job is gone."""
        exc = fut.exception()
        if exc is not None:
            fail(item, broken("the outputs could not be read", exc) if is_gone(exc) else exc)
            return exc if is_gone(exc) else None
        outcome = fut.result()
        if isinstance(outcome, TaskFailedError):
            fail(item, outcome)
            return None
        if item.task_id in self.unknown:  # no displayName of ours: its rows tell
            item.chunked = len(outcome.results) != 1
        if outcome.output and self.settings.echo_output:
            echo(item.task_id, outcome.output)
        settle(item, outcome, lambda _: None)
        return None

    def terminate(self) -> None:
        """shutdown(cancel_futures=True): terminate the job (one request), then end every
        future left: cancelled if its call never started, else TaskTerminatedError."""
        job_id = self.layout.job_id
        try:
            self.batch.terminate_job(job_id, "ExecutorTerminated")
        except Exception as exc:  # noqa: BLE001 - best effort: logged unless already over
            if error_code(exc) not in ENDED_CODES:
                log.warning("could not terminate job %s: %s", job_id, first_line(exc))
        for item in self.pending.values():
            end(item, TaskTerminatedError(f"task {item.task_id} of job {job_id} was "
                                          "terminated by shutdown(cancel_futures=True)"))
        self.pending.clear()

    def finish(self) -> None:
        """Every future is resolved: delete the job (terminate it with ``keep_job``), then
        delete its blobs or mark them to expire, as an executor's end does."""
        job_id = self.layout.job_id
        keep = self.settings.keep_job if self.delete_job is None else not self.delete_job
        try:
            if keep:
                self.batch.terminate_job(job_id, "AllWorkDone")
            else:
                self.batch.delete_job(job_id)
        except Exception as exc:  # noqa: BLE001 - every future is resolved: only log it
            if error_code(exc) not in ENDED_CODES:
                log.warning("could not end job %s: %s", job_id, first_line(exc))
        BlobCleanup(self.shared, self.store, self.layout, self.settings.blob_retention,
                    keep=keep).finished()

    def broken(self, cause: BaseException) -> None:
        """Fail every future left with BrokenBatchExecutor (cause chained)."""
        error = cause if isinstance(cause, BrokenBatchExecutor) else broken(
            f"job {self.layout.job_id} cannot be watched anymore: {type(cause).__name__}: "
            f"{first_line(cause)}", cause)
        if self.pending:
            log.error("%s", error)
        for item in self.pending.values():
            fail(item, error)
        self.pending.clear()

