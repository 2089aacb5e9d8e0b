"""get_reusable_executor(): one live AzureBatchExecutor per process, reused while it fits.

Role: loky's pattern for the cloud. Starting an executor costs requests and, on Azure,
minutes (the pool's nodes, a job, the worker and config blobs); repeated joblib calls
and scripts that call a helper in a loop should pay that once::

    ex = get_reusable_executor(max_workers=8, pool_id="superbatch")   # built
    ex = get_reusable_executor(max_workers=8, pool_id="superbatch")   # the same object
    ex = get_reusable_executor(max_workers=8, pool_id="other")        # rebuilt, logged:
    # "rebuilding the reusable AzureBatchExecutor: pool_id changed ('superbatch' -> 'other')"

The executor is reused while it is open (not shut down, not broken) and the request
resolves to the same key: `max_workers`, `initializer`, `initargs` and the resolved
`config.Settings` (keyword arguments, then the environment, then defaults; so a
changed environment variable counts as a changed setting). Otherwise the old
executor is shut down without waiting (its futures still resolve and its job is
terminated after them) and a new one is built; the reason goes to this module's
logger at INFO. One module-level lock makes the check-and-build atomic.

The state lives in a `ReusableExecutors` (the process's is `shared`; a test builds its own
with a fake executor class). After ``os.fork()`` the child starts with a new lock and no
executor (an at-fork hook;
the parent's poller thread did not come along, so its executor would never resolve a
future there): its first call builds its own executor, a new job, and logs why. The
parent's executor is forgotten in the child, never shut down from it (that would
terminate the parent's job); the child keeps its copy unused, so that nothing of it
(finalizers, weakref callbacks) runs in the child.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from .config import Settings
from .engine.executor import AzureBatchExecutor

log = logging.getLogger(__name__)

@dataclasses.dataclass(frozen=True, eq=False)
class _Key:
    """What an executor was built from; two requests share an executor when these match."""

    max_workers: int | None
    initializer: Callable[..., object] | None
    initargs: tuple[Any, ...]
    settings: Settings


class ReusableExecutors:
    """One live executor at a time, reused while the request resolves to the same key.

    The process has one (`shared`, behind `get_reusable_executor`); `executor_class`
    builds the executors (a test passes a fake of `AzureBatchExecutor`). After
    ``os.fork()`` the child starts with a new lock and no executor.
    """

    def __init__(self, executor_class: Callable[..., AzureBatchExecutor] = AzureBatchExecutor
                 ) -> None:
        self.executor_class = executor_class
        self.lock = threading.Lock()
        self.executor: AzureBatchExecutor | None = None
        self.key: _Key | None = None
        self.pid = os.getpid()  # the process `executor` belongs to
        self.forked_from = ""  # in a forked child: why its first call builds a new executor
        self.inherited: list[AzureBatchExecutor] = []  # a forked child's copies of the parent's
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork_in_child(ref))

    def get(self, max_workers: int | None = None,
            initializer: Callable[..., object] | None = None,
            initargs: tuple[Any, ...] = (), **settings: Any) -> AzureBatchExecutor:
        """The reusable executor, rebuilt when the arguments differ or it is unusable."""
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        key = _Key(max_workers, initializer, tuple(initargs), Settings.resolve(**settings))
        with self.lock:
            if self.pid != os.getpid():  # forked without the at-fork hook (a C-level fork())
                self.forget_parent()
            if self.executor is not None and self.key is not None:
                reason = _why_not_reusable(self.executor, self.key, key)
                if reason is None:
                    log.debug("reusing %r", self.executor)
                    return self.executor
                log.info("rebuilding the reusable AzureBatchExecutor (job %s): %s",
                         self.executor.job_id, reason)
                old, self.executor, self.key = self.executor, None, None
                old.shutdown(wait=False)
            elif self.forked_from:
                log.info("building a new reusable AzureBatchExecutor in process %d: %s",
                         self.pid, self.forked_from)
                self.forked_from = ""
            self.executor = self.executor_class(max_workers, initializer, initargs, **settings)
            self.key = key
            return self.executor

    def current(self) -> AzureBatchExecutor | None:
        """The reusable executor if one was built and is still usable, else None (no build)."""
        with self.lock:
            if self.executor is None or unusable(self.executor) is not None:
                return None
            return self.executor

    def discard(self, executor: AzureBatchExecutor) -> None:
        """Forget `executor` if it is the reusable one, so the next call builds a new one.
        (The caller shuts it down; this does not.)"""
        with self.lock:
            if self.executor is executor:
                self.executor, self.key = None, None

    def forget_parent(self) -> None:
        """In a child made by os.fork(): forget the parent's executor (not shut down: its
        job is the parent's) and remember why the next call builds one."""
        parent, self.pid = self.pid, os.getpid()
        if self.executor is not None:
            self.inherited.append(self.executor)
            self.forked_from = (f"this process was forked from process {parent}, whose "
                                f"executor (job {self.executor.job_id}) stays with it")
        self.executor, self.key = None, None


def _after_fork_in_child(ref: weakref.ref[ReusableExecutors]) -> None:
    """A new lock (another thread may have held the parent's at the fork), then forget."""
    reuse = ref()
    if reuse is not None:
        reuse.lock = threading.Lock()
        reuse.forget_parent()


shared = ReusableExecutors()  # the process's: get_reusable_executor(), the joblib backend


def get_reusable_executor(
    max_workers: int | None = None,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
    **settings: Any,
) -> AzureBatchExecutor:
    """The process's reusable executor, rebuilt when the arguments differ or it is unusable.

    Same arguments as `AzureBatchExecutor`. Do not shut the returned executor down
    unless you are done with it: the next call would have to build a new one (a new job).
    """
    return shared.get(max_workers, initializer, initargs, **settings)


def current_executor() -> AzureBatchExecutor | None:
    """The reusable executor if one was built and is still usable, else None (no build)."""
    return shared.current()


def discard(executor: AzureBatchExecutor) -> None:
    """Forget `executor` if it is the process's reusable one (the caller shuts it down)."""
    shared.discard(executor)


def _why_not_reusable(executor: AzureBatchExecutor, old: _Key, new: _Key) -> str | None:
    """Why `executor` (built from `old`) cannot serve `new`; None when it can."""
    state = unusable(executor)
    if state is not None:
        return state
    changes = []
    if old.max_workers != new.max_workers:
        changes.append(f"max_workers changed ({old.max_workers!r} -> {new.max_workers!r})")
    if not _same(old.initializer, new.initializer):
        changes.append(f"initializer changed ({_name(old.initializer)} -> "
                       f"{_name(new.initializer)})")
    if not _same(old.initargs, new.initargs):
        changes.append("initargs changed")
    changes.extend(_settings_changes(old.settings, new.settings))
    return "; ".join(changes) or None


def _settings_changes(old: Settings, new: Settings) -> list[str]:
    """One line per changed setting; secrets are named, never shown."""
    out = []
    for f in dataclasses.fields(Settings):
        before, after = getattr(old, f.name), getattr(new, f.name)
        if before == after:
            continue
        if not f.repr:  # the secrets are the fields kept out of Settings' repr
            out.append(f"{f.name} changed")
        else:
            out.append(f"{f.name} changed ({before!r} -> {after!r})")
    return out


def unusable(executor: AzureBatchExecutor) -> str | None:
    """'... was shut down' / '... is broken: why' when `executor` takes no more work."""
    if executor.broken is not None:
        return f"the previous executor is broken: {executor.broken}"
    if executor.shut_down:
        return "the previous executor was shut down"
    return None


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - a user __eq__ may raise anything (numpy arrays): changed
        return False


def _name(fn: Callable[..., object] | None) -> str:
    return "None" if fn is None else getattr(fn, "__qualname__", None) or repr(fn)
