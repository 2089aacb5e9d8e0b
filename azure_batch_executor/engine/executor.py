"""AzureBatchExecutor: a concurrent.futures.Executor whose workers are Azure Batch tasks.

Data flow (one executor = one Batch job, one blob container of its own, blobs ``<job_id>/...``)::

  submit(fn, *args) / map(fn, *its, chunksize=k, buffersize=b)
    │  wire.codec: cloudpickle (user modules by value) ──► lifecycle.WorkItem (PENDING,
    ▼                                                      Future PENDING) in queue.pending
  manager thread ── dispatch.py ──────────► spec <= 6 KB: inline in the task definition
    │  (PENDING -> ADDING)                  spec >  6 KB: blob <job>/iter_<i>_inputs.pickle
    │                                       map fn: blob <job>/shared_<n>.pickle, once per map
    │                                       an argument >= 64 KiB pickled (array, bytes,
    │                                       DataFrame): blob <job>/shared_<sha256>.pickle,
    │                                       once per executor, a persistent id in the spec
    │                                       create_task_collection (<= 100 tasks per request)
    │                                       accepted: IN_FLIGHT, Future RUNNING
  job: config.pickle <= 6 KB (initializer, versions): base64 in the job's environment;
       larger: blob <job>/config.pickle, a resource file of every task
  Batch node: resource files ─► abx_worker.py: config.pickle + inputs.pickle ─► call(s)
    │                          ─► outputs.pickle ─► <job>/iter_<i>_outputs.pickle (+ stdout/stderr)
    ▼
  manager thread ── watch.py: get_job_task_counts (1 request per idle tick) ─► when the
                   completed count moved: list tasks completed since the watermark
                   ─► download outputs in parallel (wire.outcome)
                   ─► lifecycle.settle: result or exception (remote traceback as __cause__),
                      what the task printed echoed first (output.py); DONE

Threads: the caller's thread pickles and enqueues under `JobContext.lock` and
sets the wakeup Event; it never waits on the network (construction does: it
checks the credentials, creates the job's blob container and uploads the worker, creates
the pool if absent (an autoscaling one on an account), and the job; if it fails, it
deletes what it created: `startup.Made`).
The manager thread (`manager.Manager`) owns everything after that, holding only a
weakref to the executor. `shutdown()` (or leaving ``with``) waits for the futures, then
the manager ends the job and, if `delete_pool_when_done`, deletes the pool if this
executor created it.
`terminate()` does not wait for the tasks: the manager terminates the job at once
and fails the futures in flight with `TaskTerminatedError`; an interrupt leaving ``with``
or ``map()``'s iterator does the same (docs/dev/interrupts.md).
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError, Executor, Future
from pathlib import Path
from typing import Any, ClassVar, Literal

from .. import constants as C
from ..cloud.ports import Connect
from ..cloud.retry import RequestStats, RetryPolicy
from ..config import Settings, nested_task
from ..errors import (
    BrokenBatchExecutor,
    ForkedExecutorError,
    NestedExecutorError,
    TaskPicklingError,
)
from ..nodeenv.jobprep import preparation_task, upload_environment, worker_command
from ..nodeenv.lock import make_lock
from ..wire import worker
from ..wire.codec import (
    Divert,
    SharedPayload,
    encode_call,
    encode_config,
    encode_shared,
    ship_user_modules,
)
from ..wire.layout import JobLayout, new_job_id
from . import accounts, manager
from . import logs as _logs
from .accounts import with_local_stack
from .attach import AttachedJob, JobInfo, attach_job, list_jobs
from .autochunk import ChunkSizer, MapStream
from .lifecycle import cancel
from .mapping import (
    ChunkSubmitter,
    chunk_maker,
    chunks,
    failed,
    result_iterator,
    stream_results,
)
from .output import TaskOutput
from .output import decode as decode_output
from .startup import Made
from .state import JobContext, Services
from .usage import Usage

log = logging.getLogger(__name__)

threading._register_atexit(manager.python_exit)  # type: ignore[attr-defined]


class AzureBatchExecutor(Executor):
    """Runs calls as Azure Batch tasks (or on the local stack when no account is configured).

    ``AzureBatchExecutor(max_workers=None, initializer=None, initargs=(), **settings)``:
    `max_workers` bounds the calls running at once (default: the pool's task slots; when
    given, the job's ``maxParallelTasks``); up to `queue_depth` more tasks wait in Batch's
    queue so that a freed slot starts its next task at once;
    `initializer(*initargs)` runs on the node before the calls of each task; the
    settings are keyword-only (see docs/configuration.md), each falling back to its
    environment variable and then to a default.
    """

    #: How an executor reaches its account (`ports.Connect`): the Blob and Batch sides of
    #: its resolved settings. A subclass may replace it (the unit tests' fakes do).
    connect: ClassVar[Connect] = staticmethod(accounts.connect)

    def __init__(
        self,
        max_workers: int | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        **settings: Any,
    ) -> None:
        task = nested_task()
        if task is not None:  # user code on a node: never a second cloud job by accident
            raise NestedExecutorError(task)
        self._pid = os.getpid()  # in another process (os.fork()), _check_open() raises
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        resolved = Settings.resolve(**settings)
        if resolved.local:
            resolved = with_local_stack(resolved)
        lock = make_lock(resolved)  # what the nodes must install (None: their image has it)
        if lock is not None:
            resolved = dataclasses.replace(resolved, python_command=worker_command(lock.env_id))
        self._settings = resolved
        self._shutdown = False
        self._shutdown_lock = threading.Lock()
        ship_user_modules()
        if _tqdm_lock(initializer):  # tqdm's contrib.concurrent: a lock for local processes
            initializer, initargs = None, ()
        config_blob = encode_config(initializer, initargs)
        stats = RequestStats()
        shared, batch = type(self).connect(resolved, stats, RetryPolicy())
        layout = JobLayout(new_job_id(resolved.job_id_prefix))
        made = Made(shared, batch, layout, resolved)  # undone if construction fails
        try:
            shared.sign()  # its key signs the job container's SAS too (`for_container`)
            # the job's own container (docs/security.md): its tasks' output SAS reaches no
            # other job's blobs; a new name, so created at once, then the worker uploaded
            store = shared.for_container(layout.container, layout.container_metadata())
            store.ensure_container()
            made.blobs = True
            store.upload(layout.worker_blob(), _worker_source())
            preparation = None
            if lock is not None:
                upload_environment(lock, shared, store, layout)
                preparation = preparation_task(lock, shared, store, layout,
                                               local=resolved.local,
                                               pool_identity=resolved.pool_identity)
            registry = resolved.registry
            pool = batch.ensure_pool(registries=[registry] if registry else [])
            made.pool = pool.created
            config_inline = len(config_blob) <= C.INLINE_THRESHOLD
            # max_workers asked: the job's maxParallelTasks (tasks are queued ahead of free
            # slots, and Batch still never runs more than that many at once)
            if config_inline:  # in the job's environment: no upload, no download per task
                batch.create_job(layout.job_id, {
                    C.INLINE_CONFIG_ENV: base64.b64encode(config_blob).decode("ascii")},
                    preparation=preparation, max_parallel_tasks=max_workers)
            else:
                store.upload(layout.config_blob(), config_blob)
                batch.create_job(layout.job_id, preparation=preparation,
                                 max_parallel_tasks=max_workers)
            made.job = True
            self._max_workers = max_workers or pool.capacity
            services = Services(settings=resolved, layout=layout, store=store, batch=batch,
                                stats=stats, config_inline=config_inline,
                                env_id=lock.env_id if lock is not None else None,
                                pool_created=pool.created, shared=shared)
            depth = resolved.queue_depth
            self._ctx = JobContext(services, self._max_workers, C.QUEUE_DEPTH_PER_WORKER
                                   * self._max_workers if depth is None else depth)
            self._payload_ids = itertools.count()
            self._manager = manager.Manager(self, self._ctx)
            self._manager.start()  # from here on the manager thread owns the job and pool
        except BaseException:
            made.undo()
            raise
        _logs.announce(log, _logs.where_it_runs(
            local=resolved.local, account_url=resolved.batch_account_url,
            account_name=resolved.batch_account_name, pool_id=resolved.pool_id,
            job_id=layout.job_id, max_workers=self._max_workers))

    # ------------------------------------------------------------------ public surface
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Schedule ``fn(*args, **kwargs)`` as one Batch task; returns a Future at once.

        An argument that cannot be pickled fails the returned future with
        TaskPicklingError naming it.
        """
        self._check_open()
        if not callable(fn):  # as the stdlib's future would fail, but before any task
            return failed(TypeError(_not_callable(fn, "submit")))
        ship_user_modules()
        divert = Divert(self._ctx.services.object_url)
        try:
            spec = encode_call(fn, args, kwargs, divert)
        except TaskPicklingError as exc:
            return failed(exc)
        return self._enqueue(spec, None, chunked=False, objects=divert.objects)

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = None,
        buffersize: int | None = None,
    ) -> Iterator[Any]:
        """Like the stdlib's map(): ordered results; `chunksize` calls per Batch task.

        `chunksize=None` (the default) sizes the chunks from measured call durations: one
        call per task until durations are known, then enough calls for a task to run about
        the `chunk_target` setting (1 s on the local stack, 30 s on Azure), smaller again
        for the last tasks; an integer is obeyed exactly (docs/how-it-works.md, "Chunks").
        The function is pickled and uploaded once per call of map(), not per item.
        `buffersize` (as in Python 3.14): at most that many tasks (chunks) submitted ahead
        of the results consumed; the iterables are then read lazily, so an endless
        generator works in bounded memory. The iterator keeps no reference to a result it
        has yielded.

        A wrapper that replaced `submit` (on the instance, or a subclass: tqdm's
        ``contrib.concurrent`` counts the futures it returns) sees every call: map() then
        goes through that `submit`, one task per item, as the stdlib's map() does.
        """
        if not callable(fn):  # the stdlib's first result would raise it: no task made
            raise TypeError(_not_callable(fn, "map"))
        if chunksize is not None and (isinstance(chunksize, bool)
                                      or not isinstance(chunksize, int)):
            raise TypeError(f"chunksize must be an integer or None (sized from measured "
                            f"call durations), not {type(chunksize).__name__}")
        if chunksize is not None and chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        if buffersize is not None and not isinstance(buffersize, int):
            raise TypeError("buffersize must be an integer or None")
        if buffersize is not None and buffersize < 1:
            raise ValueError("buffersize must be None or > 0")
        if buffersize is None and _submit_replaced(self):
            return super().map(fn, *iterables, timeout=timeout, chunksize=chunksize or 1)
        end_time = None if timeout is None else timeout + time.monotonic()
        self._check_open()
        ship_user_modules()
        payload = SharedPayload(next(self._payload_ids), encode_shared(fn))
        self._ctx.queue.shared[payload.payload_id] = payload
        calls = zip(*iterables)  # noqa: B905 - stops at the shortest
        sizer = None if chunksize is not None else ChunkSizer(
            self._chunk_target(), self._max_workers)
        submit = ChunkSubmitter(self, payload.payload_id, sizer)
        if sizer is not None and buffersize is None:  # chunks made as the slots need them
            stream = MapStream(list(calls), sizer,
                               chunk_maker(self._ctx, payload.payload_id, sizer))
            with self._shutdown_lock:
                self._check_open()
                with self._ctx.lock:
                    self._ctx.queue.streams.append(stream)
                self._ctx.wakeup.set()
            return stream_results(stream, end_time, submit.interrupted)
        pieces = chunks(calls, chunksize or sizer or 1)
        if buffersize is None:
            futures = collections.deque(submit(chunk) for chunk in pieces)
            return result_iterator(futures, end_time, None, submit)
        futures = collections.deque(submit(chunk) for chunk in itertools.islice(pieces, buffersize))
        return result_iterator(futures, end_time, pieces, submit)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False,
                 terminate: bool = False) -> None:
        """Stop accepting work; with `wait`, return once every future is resolved and the job
        terminated. `cancel_futures` cancels the futures whose tasks Batch has not accepted.

        `terminate` (implies `cancel_futures`) also ends the tasks already added: the poller
        waits for the adds under way, terminates the Batch job (running tasks are killed,
        queued ones never start) and fails their futures with `TaskTerminatedError`; every
        future is resolved after that, without waiting for any task to finish.

        In a process forked from the executor's owner it only marks the executor shut down:
        the job and the poller thread belong to the parent.
        """
        if self._pid != os.getpid():
            self._shutdown = True
            return
        ctx = self._ctx
        with self._shutdown_lock:
            self._shutdown = True
            with ctx.lock:
                ctx.flags.shutdown = True
                ctx.flags.terminate = ctx.flags.terminate or terminate
                if cancel_futures or terminate:
                    ctx.flags.cancel_queued = True  # and those queued at Batch (manager)
                    for stream in ctx.queue.streams:  # map() calls not made into tasks yet
                        stream.end(CancelledError())
                    while ctx.queue.pending:
                        item = ctx.queue.pending.popleft()
                        if cancel(item):
                            ctx.flags.cancelled_by_shutdown += 1
            ctx.wakeup.set()
        if wait and self._manager is not threading.current_thread():
            self._manager.join()

    def terminate(self, wait: bool = False) -> None:
        """Shut down now, ending the work in flight: ``shutdown(wait, cancel_futures=True,
        terminate=True)``. For aborts (joblib's `abort_everything`, an early error)."""
        self.shutdown(wait, cancel_futures=True, terminate=True)

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> Literal[False]:
        """Leaving ``with``: wait for the futures, as the stdlib does; but an interrupt
        (KeyboardInterrupt, SystemExit: a BaseException that is not an Exception) terminates
        the work at once instead: queued futures cancelled, running tasks ended."""
        if (exc_val is not None and not isinstance(exc_val, (Exception, GeneratorExit))
                and self._pid == os.getpid()):
            self._interrupted(exc_val)
        else:
            self.shutdown(wait=True)
        return False

    def task_output(self, future: Future[Any]) -> TaskOutput:
        """The whole stdout and stderr of the task behind `future` (a future this executor's
        submit() returned, once done), read from their blobs: one request each."""
        index = self._ctx.queue.task_index.get(future)
        if index is None:
            raise ValueError("task_output(): this future was not returned by this "
                             "executor's submit() (map() results have no future)")
        if not future.done():
            task_id = self._ctx.services.layout.task_id(index)
            raise ValueError(f"task_output(): task {task_id} has not finished; Batch uploads "
                             "its output when it ends")
        store, lay = self._ctx.services.store, self._ctx.services.layout
        return TaskOutput(decode_output(store.download(lay.stdout_blob(index))),
                          decode_output(store.download(lay.stderr_blob(index))))

    def _interrupted(self, exc: BaseException) -> None:
        """An interrupt reached the user's code: end this executor's work now (once)."""
        ctx = self._ctx
        if ctx.flags.interrupted is None:
            ctx.flags.interrupted = type(exc).__name__
        self.shutdown(wait=True, cancel_futures=True, terminate=True)

    # ------------------------------------------------------------------ for tests and tools
    @property
    def job_id(self) -> str:
        return self._ctx.services.layout.job_id

    @property
    def pool_id(self) -> str:
        return self._settings.pool_id

    @property
    def max_workers(self) -> int:
        return self._max_workers

    @property
    def settings(self) -> Settings:
        """The resolved settings (secrets masked in its repr)."""
        return self._settings

    @property
    def broken(self) -> BrokenBatchExecutor | None:
        """Why the executor cannot go on (submit raises it), or None."""
        return self._ctx.flags.broken

    @property
    def shut_down(self) -> bool:
        """True once shutdown() was called (submit raises RuntimeError)."""
        return self._shutdown

    def request_counts(self) -> dict[str, int]:
        """Requests sent so far by kind ('batch.add', 'blob.get', ...), plus 'ticks'."""
        counts = self._ctx.services.stats.snapshot()
        counts["ticks"] = self._manager.watcher.ticks
        return counts

    def usage(self) -> Usage:
        """What this executor used so far: tasks, Batch retries and requeues, task and node
        time (from the tasks' execution info), task data moved, requests by kind, and an
        estimated cost with the `node_hour_price` setting (docs/cost.md#usage). Logged in
        one INFO line when the executor ends."""
        return self._manager.usage.snapshot()

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "running"
        return (f"AzureBatchExecutor(job_id={self.job_id!r}, pool_id={self.pool_id!r}, "
                f"max_workers={self._max_workers}, {state})")

    # ------------------------------------------------------------------ reattach
    @classmethod
    def attach(cls, job_id: str, **settings: Any) -> AttachedJob:
        """The results of job `job_id`, which an executor started in another process (one
        that died, say): an `AttachedJob` whose `futures` are one per task in submission
        order (a map() chunk's: the list of its calls' results) and whose `results()`
        yields every call's result in that order, raising a call's exception in its place,
        as map() does. They resolve as the tasks complete; leaving ``with`` (or its
        `shutdown()`) waits for them, then deletes the job and its blobs, or, with
        ``keep_job=True``, terminates the job and keeps it.

        `settings` are the constructor's (each falling back to its environment variable;
        none: the local stack of this process) and must reach the executor's account.
        Raises ConfigurationError naming the fix when the account has no such job
        (`jobs()` lists this package's jobs). docs/results.md#reattach.
        """
        return attach_job(cls.connect, job_id, settings)

    @classmethod
    def jobs(cls, **settings: Any) -> list[JobInfo]:
        """This package's jobs on the account of `settings` (the constructor's; none: the
        local stack of this process), newest first: a `JobInfo` each, with its id, state,
        creation time, pool and task counts (active, running, completed, failed), as the
        CLI's ``jobs`` command lists them. One listing, then one request per job."""
        return list_jobs(cls.connect, settings)

    # ------------------------------------------------------------------ internals
    def _chunk_target(self) -> float:
        """Seconds a task of map(chunksize=None) should run (`chunk_target`)."""
        target = self._settings.chunk_target
        if target is not None:
            return float(target)
        return C.LOCAL_CHUNK_TARGET if self._settings.local else C.DEFAULT_CHUNK_TARGET

    def _check_open(self) -> None:
        if self._pid != os.getpid():
            raise ForkedExecutorError(self._pid, os.getpid(), self._ctx.services.layout.job_id)
        if self._ctx.flags.broken is not None:
            raise BrokenBatchExecutor(str(self._ctx.flags.broken)) from self._ctx.flags.broken
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if manager._global_shutdown:
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    def _enqueue(self, spec: bytes, shared_id: int | None, *, chunked: bool,
                 objects: dict[str, bytes], sizer: Any = None) -> Future[Any]:
        with self._shutdown_lock:
            self._check_open()
            return self._ctx.enqueue(spec, shared_id, chunked=chunked, objects=objects,
                                     sizer=sizer)


def _tqdm_lock(initializer: Callable[..., object] | None) -> bool:
    """Whether `initializer` is tqdm's ``set_lock``, which tqdm's ``contrib.concurrent``
    passes to every executor it makes: it shares a lock between local processes writing
    bars, holds a multiprocessing lock that cannot be pickled, and has nothing to do on
    a node."""
    owner = getattr(initializer, "__self__", None)
    return (getattr(initializer, "__name__", None) == "set_lock" and isinstance(owner, type)
            and owner.__module__.split(".")[0] == "tqdm")


def _submit_replaced(executor: AzureBatchExecutor) -> bool:
    """Whether `submit` is not ours: set on the instance, or overridden by a subclass."""
    return ("submit" in vars(executor)
            or type(executor).submit is not AzureBatchExecutor.submit)


def _worker_source() -> bytes:
    return Path(worker.__file__).read_bytes()


def _not_callable(fn: object, method: str) -> str:
    rest = "*iterables" if method == "map" else "*args"
    return (f"{type(fn).__name__!r} object is not callable: {method}() takes the function "
            f"first, then its arguments: {method}(fn, {rest})")
