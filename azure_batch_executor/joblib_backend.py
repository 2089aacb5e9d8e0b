"""The joblib backend "azure_batch": joblib and scikit-learn code runs on Azure Batch unchanged.

    from azure_batch_executor import register_joblib
    register_joblib()
    with joblib.parallel_config(backend="azure_batch", n_jobs=-1, pool_id="superbatch"):
        joblib.Parallel()(joblib.delayed(f)(x) for x in xs)    # or GridSearchCV(n_jobs=-1)

Role: a Future-based backend like joblib's LokyBackend and dask backend. Each batch
joblib dispatches (a `BatchedCalls` of one or more calls) is one `submit()` to the
process's reusable `AzureBatchExecutor` (`reusable.get_reusable_executor`), so
consecutive `Parallel` calls share one job, pool and container. Backend parameters
given to `parallel_config` are the executor's arguments (`max_workers`, `initializer`,
`initargs`) and settings. Results are read in the future's done callback
(`supports_retrieve_callback`), which is what enables ``return_as="generator"`` /
``"generator_unordered"`` and ``Parallel(timeout=...)``. Remote exceptions arrive as
their own type with the remote traceback chained (the executor does that). Nested
`Parallel` calls inside a task run sequentially on the node. Auto-batching aims for
batches that last long enough to hide what a Batch task costs (measured below).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, ClassVar

try:
    from joblib import register_parallel_backend
    from joblib._parallel_backends import (
        AutoBatchingMixin,
        ParallelBackendBase,
        SequentialBackend,
    )
except ImportError as _exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        f"the joblib backend of azure-batch-executor needs joblib ({_exc}); install it with: "
        'pip install "azure-batch-executor[joblib]"'
    ) from _exc

from . import reusable
from .config import Settings, nested_task
from .engine.executor import AzureBatchExecutor

log = logging.getLogger(__name__)

BACKEND_NAME = "azure_batch"


# joblib ships no type information: its backend bases are Any to mypy
class AzureBatchBackend(AutoBatchingMixin, ParallelBackendBase):  # type: ignore[misc]
    """joblib backend running each batch of calls as one Azure Batch task.

    Constructor keywords (what ``parallel_config(backend="azure_batch", **params)``
    passes): `max_workers`, `initializer`, `initargs` and the executor's settings
    (docs/configuration.md). They are checked at once, and resolved again (with the
    environment) each time a `Parallel` call starts.
    """

    # Auto-batching bounds, measured on the local stack (python -m benchmarks.bench_joblib,
    # J2: 40 no-op calls at batch_size=1, n_jobs=-1, 2 nodes x 2 slots): one Batch task
    # holds a slot for 0.69-0.83 s doing nothing useful (3 runs; up to 1.07 s while other
    # test suites loaded the machine): add, schedule, resource files, a Python start,
    # output upload, poll, download. joblib keeps 2 x n_jobs batches outstanding, so what
    # it measures (dispatch to callback) is about twice that: 1.37-1.40 s median (up to
    # 1.96 s loaded). For that cost to be <= 20% of a batch, a batch must hold a slot >= 5 x
    # 0.7-1.07 s, i.e. last 7-11 s as joblib measures it: MIN = 10 s. MAX = 60 s (6 x MIN:
    # room against oscillating; joblib's own ratio is 10, dask's 5): past it batches
    # shrink, so a straggler idles the other slots for about a minute at most. On Azure a
    # task costs more than on the emulator (node-side downloads, scheduling): subclass and
    # raise both if your tasks show it (docs/joblib.md).
    MIN_IDEAL_BATCH_DURATION = 10.0
    MAX_IDEAL_BATCH_DURATION = 60.0

    #: Where executors come from: the process's reusable ones (a subclass may give its own
    #: `reusable.ReusableExecutors`, e.g. of a fake executor in unit tests).
    reusable_executors: ClassVar[reusable.ReusableExecutors] = reusable.shared

    default_n_jobs = -1  # inside parallel_config(backend="azure_batch"): the whole pool
    supports_retrieve_callback = True
    supports_return_generator = True
    supports_timeout = True
    supports_inner_max_num_threads = False
    supports_sharedmem = False
    uses_threads = False

    def __init__(
        self,
        nesting_level: int | None = None,
        inner_max_num_threads: int | None = None,
        *,
        max_workers: int | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        **settings: Any,
    ) -> None:
        super().__init__(nesting_level=nesting_level, inner_max_num_threads=inner_max_num_threads)
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        Settings.resolve(**settings)  # a misspelt setting fails here, naming the valid ones
        self._max_workers = max_workers
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._settings = settings
        self._executor: AzureBatchExecutor | None = None
        self._futures: set[Future[Any]] = set()
        self._futures_lock = threading.Lock()
        self.parallel: Any = None

    # ------------------------------------------------------------------ joblib's hooks
    def configure(self, n_jobs: int = 1, parallel: Any = None, prefer: Any = None,
                  require: Any = None, **_process_kwargs: Any) -> int:
        """Start of a Parallel call. joblib's process options (max_nbytes, mmap_mode,
        temp_folder, context, verbose) do not apply to Batch tasks and are ignored."""
        self.parallel = parallel
        self._executor = None  # settings may come from the environment: check them again
        return self.effective_n_jobs(n_jobs)

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        """n_jobs > 0 as given; n_jobs < 0 counts back from the executor's capacity
        (`max_workers`, by default the pool's nodes x task slots): -1 is all of it."""
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if n_jobs is None:
            n_jobs = self.default_n_jobs
        if n_jobs < 0:
            return max(self.get_executor().max_workers + 1 + n_jobs, 1)
        return n_jobs

    def submit(self, func: Callable[[], Any],
               callback: Callable[[Future[Any]], Any] | None = None) -> Future[Any]:
        """One Batch task for one joblib batch; `callback` runs when its future resolves."""
        future = self.get_executor().submit(func)
        with self._futures_lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)
        if callback is not None:
            future.add_done_callback(callback)
        return future

    def retrieve_result_callback(self, future: Future[Any]) -> Any:
        return future.result()

    def abort_everything(self, ensure_ready: bool = True) -> None:
        """After an error or a timeout: cancel the batches Batch has not accepted yet and,
        if some are already tasks, terminate them (the executor's job is terminated and
        a new executor is built for the next call; the pool stays)."""
        with self._futures_lock:
            futures = list(self._futures)
        running = [f for f in futures if not f.cancel() and not f.done()]
        executor, self._executor = self._executor, None
        if running and executor is not None:
            log.info("joblib aborted: terminating job %s (%d task(s) in flight)",
                     executor.job_id, len(running))
            self.reusable_executors.discard(executor)
            executor.terminate(wait=True)  # its tasks and job ended, every future resolved
        self.reset_batch_stats()
        # ensure_ready: the next submit() gets a fresh executor from get_reusable_executor

    def terminate(self) -> None:
        """End of a Parallel call: keep the executor alive (it is reusable), reset batching."""
        self._executor = None
        self.reset_batch_stats()

    def get_nested_backend(self) -> tuple[Any, int | None]:
        """Parallel calls inside a task run sequentially on the node."""
        return SequentialBackend(nesting_level=(self.nesting_level or 0) + 1), None

    # ------------------------------------------------------------------ helpers
    def get_executor(self) -> AzureBatchExecutor:
        """The reusable executor for this backend's arguments (built on first use)."""
        ex = self._executor
        if ex is None or reusable.unusable(ex) is not None:
            ex = self._executor = self.reusable_executors.get(
                self._max_workers, self._initializer, self._initargs, **self._settings)
        return ex

    def _forget(self, future: Future[Any]) -> None:
        with self._futures_lock:
            self._futures.discard(future)

    def __repr__(self) -> str:
        return f"AzureBatchBackend(nesting_level={self.nesting_level})"


def register_joblib() -> None:
    """Register the joblib backend "azure_batch". Calling it again is harmless.

    Inside a task on a Batch node (``AZURE_BATCH_EXECUTOR_TASK`` set by the worker, and
    ``AZURE_BATCH_EXECUTOR_ALLOW_NESTED`` not) "azure_batch" is joblib's `SequentialBackend`
    instead, as the worker registers it: nested calls run one by one on the node, never as
    a second cloud job. (Its executor settings, if any, are ignored there.)"""
    if nested_task() is not None:
        register_parallel_backend(BACKEND_NAME, SequentialBackend)
    else:
        register_parallel_backend(BACKEND_NAME, AzureBatchBackend)
