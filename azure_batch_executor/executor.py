"""AzureBatchExecutor: a concurrent.futures.Executor whose workers are Azure Batch tasks.

Data flow (one executor = one Batch job, one blob prefix ``<job_id>/``)::

  submit(fn, *args) / map(fn, *its, chunksize=k)
    │  cloudpickle (user modules by value) ──► WorkItem(Future PENDING, task spec)
    ▼                                           in JobContext.pending
  poller thread ── _dispatch.py ──────────► spec <= 6 KB: inline in the task definition
    │                                       spec >  6 KB: blob <job>/iter_<i>_inputs.pickle
    │                                       map fn: blob <job>/shared_<n>.pickle, once per map
    │                                       an argument >= 64 KiB pickled (array, bytes,
    │                                       DataFrame): blob <job>/shared_<sha256>.pickle,
    │                                       once per executor, a persistent id in the spec
    │                                       create_task_collection (<= 100 tasks per request)
    │                                       accepted: Future RUNNING
  job: config.pickle <= 6 KB (initializer, versions): base64 in the job's environment;
       larger: blob <job>/config.pickle, a resource file of every task
  Batch node: resource files ─► abx_worker.py: config.pickle + inputs.pickle ─► call(s)
    │                          ─► outputs.pickle ─► <job>/iter_<i>_outputs.pickle (+ stdout/stderr)
    ▼
  poller thread ── _poller.py: get_job_task_counts (1 request per idle tick) ─► when the
                   completed count moved: list tasks completed since the watermark
                   ─► download outputs in parallel
                   ─► set_result / set_exception (remote traceback chained as __cause__)

Threads: the caller's thread pickles and enqueues under `JobContext.lock` and
sets the wakeup Event; it never waits on the network (construction does: it
checks the credentials, uploads the worker (creating the container if absent), creates
the pool if absent, and the job).
The poller thread owns everything after that, holding only a weakref to the
executor. `shutdown()` (or leaving ``with``) waits for the futures, then the
poller terminates the job and, if `delete_pool_when_done`, deletes the pool.
`terminate()` does not wait for the tasks: the poller terminates the job at once
and fails the futures in flight with `TaskTerminatedError`.

Imports: everything below it (`config`, `errors`, `layout`, `_wire`, `_retry`,
`accounts`, `_context`, `_poller`); `accounts` reaches `local` only when no Azure
account is configured.
"""

from __future__ import annotations

import base64
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

from . import _poller
from . import constants as C
from ._context import JobContext
from ._retry import RequestStats, RetryPolicy
from ._wire import (
    Divert,
    SharedObject,
    SharedPayload,
    WorkItem,
    encode_call,
    encode_chunk,
    encode_config,
    encode_shared,
    ship_user_modules,
)
from .accounts import connect as _connect  # unit tests replace executor._connect
from .accounts import with_local_stack
from .config import Settings
from .errors import BrokenBatchExecutor, TaskPicklingError
from .layout import JobLayout, new_job_id

log = logging.getLogger(__name__)

threading._register_atexit(_poller.python_exit)  # type: ignore[attr-defined]


class AzureBatchExecutor(Executor):
    """Runs calls as Azure Batch tasks (or on the local stack when no account is configured).

    ``AzureBatchExecutor(max_workers=None, initializer=None, initargs=(), **settings)``:
    `max_workers` bounds the tasks in flight (default: the pool's task slots);
    `initializer(*initargs)` runs on the node before the calls of each task; the
    settings are keyword-only (see docs/configuration.md), each falling back to its
    environment variable and then to a default.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        **settings: Any,
    ) -> None:
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        resolved = Settings.resolve(**settings)
        if resolved.local:
            resolved = with_local_stack(resolved)
        self._settings = resolved
        self._shutdown = False
        self._shutdown_lock = threading.Lock()
        ship_user_modules()
        config_blob = encode_config(initializer, initargs)
        stats = RequestStats()
        store, batch = _connect(resolved, stats, RetryPolicy())
        store.sign()
        layout = JobLayout(new_job_id(resolved.job_id_prefix))
        store.upload_creating_container(layout.worker_blob(), _worker_source())
        capacity = batch.ensure_pool()
        config_inline = len(config_blob) <= C.INLINE_THRESHOLD
        if config_inline:  # in the job's environment: no upload, no download per task
            batch.create_job(layout.job_id, {
                C.INLINE_CONFIG_ENV: base64.b64encode(config_blob).decode("ascii")})
        else:
            store.upload(layout.config_blob(), config_blob)
            batch.create_job(layout.job_id)
        self._max_workers = max_workers or capacity
        self._ctx = JobContext(
            settings=resolved, layout=layout, store=store, batch=batch, stats=stats,
            max_workers=self._max_workers, config_inline=config_inline,
        )
        self._on_cancel = self._ctx.on_cancel  # one bound method for every future
        self._payload_ids = itertools.count()
        self._poller = _poller.Poller(self, self._ctx)
        self._poller.start()
        log.debug("executor started: job %s on pool %s, max_workers=%d",
                  layout.job_id, resolved.pool_id, self._max_workers)

    # ------------------------------------------------------------------ public surface
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Schedule ``fn(*args, **kwargs)`` as one Batch task; returns a Future at once.

        An argument that cannot be pickled fails the returned future with
        TaskPicklingError naming it.
        """
        self._check_open()
        ship_user_modules()
        divert = Divert(self._ctx.layout.shared_file)
        try:
            spec = encode_call(fn, args, kwargs, divert)
        except TaskPicklingError as exc:
            return _failed(exc)
        return self._enqueue(spec, None, chunked=False, objects=divert.objects)

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[Any]:
        """Like the stdlib's map(): ordered results; `chunksize` calls per Batch task.

        The function is pickled and uploaded once per call of map(), not per item.
        """
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        end_time = None if timeout is None else timeout + time.monotonic()
        self._check_open()
        ship_user_modules()
        payload = SharedPayload(next(self._payload_ids), encode_shared(fn))
        self._ctx.shared[payload.payload_id] = payload
        shared_file = self._ctx.layout.shared_file(payload.payload_id)
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
            (args, {}) for args in zip(*iterables)  # noqa: B905 - stops at the shortest
        ]
        futures = []
        for start in range(0, len(calls), chunksize):
            chunk = calls[start:start + chunksize]
            divert = Divert(self._ctx.layout.shared_file)
            try:
                spec = encode_chunk(shared_file, chunk, divert)
            except TaskPicklingError as exc:
                futures.append(_failed(exc))
                continue
            futures.append(self._enqueue(spec, payload.payload_id, chunked=True,
                                         objects=divert.objects))
        return _result_iterator(futures, end_time)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False,
                 terminate: bool = False) -> None:
        """Stop accepting work; with `wait`, return once every future is resolved and the job
        terminated. `cancel_futures` cancels the futures whose tasks Batch has not accepted.

        `terminate` (implies `cancel_futures`) also ends the tasks already added: the poller
        waits for the adds under way, terminates the Batch job (running tasks are killed,
        queued ones never start) and fails their futures with `TaskTerminatedError`; every
        future is resolved after that, without waiting for any task to finish.
        """
        ctx = self._ctx
        with self._shutdown_lock:
            self._shutdown = True
            with ctx.lock:
                ctx.shutdown = True
                ctx.terminate = ctx.terminate or terminate
                if cancel_futures or terminate:
                    while ctx.pending:
                        item = ctx.pending.popleft()
                        item.future.cancel()
                        item.future.set_running_or_notify_cancel()
            ctx.wakeup.set()
        if wait and self._poller is not threading.current_thread():
            self._poller.join()

    def terminate(self, wait: bool = False) -> None:
        """Shut down now, ending the work in flight: ``shutdown(wait, cancel_futures=True,
        terminate=True)``. For aborts (joblib's `abort_everything`, an early error)."""
        self.shutdown(wait, cancel_futures=True, terminate=True)

    # ------------------------------------------------------------------ for tests and tools
    @property
    def job_id(self) -> str:
        return self._ctx.layout.job_id

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
        return self._ctx.broken

    @property
    def shut_down(self) -> bool:
        """True once shutdown() was called (submit raises RuntimeError)."""
        return self._shutdown

    def request_counts(self) -> dict[str, int]:
        """Requests sent so far by kind ('batch.add', 'blob.get', ...), plus 'ticks'."""
        counts = self._ctx.stats.snapshot()
        counts["ticks"] = self._ctx.ticks
        return counts

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "running"
        return (f"AzureBatchExecutor(job_id={self.job_id!r}, pool_id={self.pool_id!r}, "
                f"max_workers={self._max_workers}, {state})")

    # ------------------------------------------------------------------ internals
    def _check_open(self) -> None:
        if self._ctx.broken is not None:
            raise BrokenBatchExecutor(str(self._ctx.broken)) from self._ctx.broken
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if _poller._global_shutdown:
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    def _enqueue(self, spec: bytes, shared_id: int | None, *, chunked: bool,
                 objects: dict[str, bytes]) -> Future:
        ctx = self._ctx
        future: Future = Future()
        with self._shutdown_lock:
            self._check_open()
            with ctx.lock:
                for digest, data in objects.items():  # uploaded once per executor
                    if digest not in ctx.objects:
                        ctx.objects[digest] = SharedObject(data)
                index = ctx.next_index()
                item = WorkItem(future, index, spec, shared_id, chunked,
                                ctx.layout.task_id(index), tuple(objects))
                ctx.pending.append(item)
            future.add_done_callback(self._on_cancel)
            if not ctx.wakeup.is_set():  # the poller clears it before it looks at `pending`
                ctx.wakeup.set()
        return future


def _failed(exc: BaseException) -> Future:
    future: Future = Future()
    future.set_exception(exc)
    return future


def _result_iterator(futures: list[Future], end_time: float | None) -> Iterator[Any]:
    """Yield the results of chunk futures in order, as Executor.map does."""
    try:
        futures.reverse()
        while futures:
            future = futures.pop()
            try:
                if end_time is None:
                    pairs = future.result()
                else:
                    pairs = future.result(end_time - time.monotonic())
            except BaseException:
                future.cancel()
                raise
            del future
            for ok, value in pairs:
                if not ok:
                    raise value
                yield value
    finally:
        for future in futures:
            future.cancel()


def _worker_source() -> bytes:
    return (Path(__file__).parent / "worker.py").read_bytes()
