"""A task's lifecycle: every work item's state and every transition of its Future.

Role: the one owner of a future's fate. A `WorkItem` (one Batch task: one call from
``submit()`` or one chunk of a ``map()``) stays on the client and owns its Future; its
`state` says where it is::

    PENDING ──take──► ADDING ──accepted──► QUEUED ──seen running──► RUNNING ──outcome──► DONE
       │                 │ (server error:        │ (or seen completed)
       │                 │  back to PENDING)     └─cancel: its task terminated──► DONE
       └─cancel──► DONE  └─refused / upload failed / cancelled meanwhile──► DONE

Items leave the submit queue (`state.SubmitQueue.pending`, PENDING) into the manager
thread's `WorkTable` (ADDING, QUEUED, RUNNING) and leave it DONE. A QUEUED item's task
waits in Batch's queue (tasks are added ahead of free slots, `dispatch`): its future
stays PENDING, so it can still be cancelled, and turns RUNNING when the watch loop sees
its task running (or completed). The functions below are
the only code that changes a Future's state (``set_running_or_notify_cancel``,
``cancel``, ``set_result``, ``set_exception``); each is safe against a user's
``cancel()`` racing it: a cancelled future is told to its waiters exactly once.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Iterator
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any

from ..cloud.ports import CompletedTask
from ..errors import BrokenBatchExecutor, RemoteError, VersionMismatchError
from ..wire.outcome import Outcome, decode_row, rebuild_error


class State(enum.IntEnum):
    PENDING = 0  # in the submit queue
    ADDING = 1  # its task is in a collection add under way
    QUEUED = 2  # Batch accepted its task, not seen running yet: the future is PENDING
    RUNNING = 3  # its task was seen running: the future is RUNNING
    DONE = 4  # its future is resolved (result, exception or cancelled)


@dataclass(eq=False, slots=True)
class WorkItem:
    """One Batch task seen from the client. Stays local; owns the future.

    `spec` is the pickled task spec (emptied once Batch has it); `shared_id` names the
    map payload it needs (or None), `objects` the large arguments; `chunked` futures
    resolve to a list of (ok, value) pairs, one per call of the chunk.
    """

    future: Future[Any]
    index: int
    spec: bytes
    shared_id: int | None = None
    chunked: bool = False
    task_id: str = ""
    objects: tuple[str, ...] = ()  # digests of the large arguments it references
    state: State = State.PENDING
    sizer: Any = None  # a chunk of map(chunksize=None): its `autochunk.ChunkSizer`


# ------------------------------------------------------------------------------ transitions
def start(item: WorkItem) -> bool:
    """QUEUED -> RUNNING: its task was seen running (or completed). False when its future
    was cancelled meanwhile (then DONE and notified; the caller ends the task)."""
    if item.state == State.RUNNING:
        return True
    if item.future.set_running_or_notify_cancel():
        item.state = State.RUNNING
        return True
    item.state = State.DONE
    return False


def drop_if_cancelled(item: WorkItem) -> bool:
    """A PENDING item whose future the user cancelled: DONE and notified (True)."""
    if not item.future.cancelled():
        return False
    notify_cancelled(item.future)
    item.state = State.DONE
    return True


def cancel(item: WorkItem) -> bool:
    """Cancel a PENDING item's future (shutdown with cancel_futures); True if it was."""
    cancelled = item.future.cancel()
    notify_cancelled(item.future)
    item.state = State.DONE
    return cancelled


def end(item: WorkItem, exc: BaseException) -> None:
    """terminate(): cancel the future if its call never started, else fail it with `exc`."""
    if item.future.cancel():
        notify_cancelled(item.future)
        item.state = State.DONE
    else:
        fail(item, exc)


def resolve(item: WorkItem, value: Any) -> None:
    item.state = State.DONE
    try:
        item.future.set_result(value)
    except InvalidStateError:  # cancelled meanwhile, or already resolved
        notify_cancelled(item.future)


def fail(item: WorkItem, exc: BaseException) -> None:
    item.state = State.DONE
    try:
        item.future.set_exception(exc)
    except InvalidStateError:
        notify_cancelled(item.future)


def notify_cancelled(future: Future[Any]) -> None:
    """If `future` was cancelled, tell its waiters (``wait``, ``as_completed``): once, whoever
    calls and however often (a second call finds it notified already)."""
    if future.cancelled():
        with contextlib.suppress(RuntimeError):  # CANCELLED_AND_NOTIFIED already
            future.set_running_or_notify_cancel()


def settle(item: WorkItem, outcome: Outcome,
           on_broken: Callable[[BrokenBatchExecutor], None]) -> BrokenBatchExecutor | None:
    """IN_FLIGHT -> DONE from its task's outcome.

    A fatal outcome of the node's environment (version mismatch) or of the initializer
    breaks the executor: `on_broken` is told before the future fails, and the error is
    returned. A spec that failed to unpickle on the node fails only this future.
    """
    try:
        if outcome.fatal is not None:
            stage, rest = outcome.fatal[0], tuple(outcome.fatal[1:])
            if stage in ("versions", "initializer"):
                exc = (VersionMismatchError(rest[2]) if stage == "versions" else broken(
                    "a task initializer failed, the executor is not usable anymore",
                    rebuild_error(("raise", *rest))))
                on_broken(exc)
                fail(item, exc)
                return exc
            fail(item, rebuild_error(("raise", *rest)))
        elif item.chunked:
            resolve(item, [decode_row(row) for row in outcome.results])
        else:
            ok, value = decode_row(outcome.results[0])
            (resolve if ok else fail)(item, value)
    except Exception as error:  # noqa: BLE001 - a damaged outputs.pickle must not hang it
        fail(item, RemoteError(type(error).__name__, f"bad outcome: {error}"))
    return None


def broken(message: str, cause: BaseException) -> BrokenBatchExecutor:
    exc = BrokenBatchExecutor(message)
    exc.__cause__ = cause
    return exc


# ------------------------------------------------------------------------------ the table
class WorkTable:
    """The work items the manager thread took from the submit queue, by task id: ADDING
    (their collection add is under way), QUEUED (Batch has their task, not seen running)
    or RUNNING. Only the manager thread touches it."""

    def __init__(self) -> None:
        self.items: dict[str, WorkItem] = {}
        self.adding = 0  # how many of `items` are ADDING
        self.queued: dict[str, WorkItem] = {}  # the QUEUED ones
        self.early: dict[str, CompletedTask] = {}  # completed before their add was harvested

    def __len__(self) -> int:
        return len(self.items)

    def in_flight(self) -> int:
        """Items whose task Batch has (QUEUED or RUNNING)."""
        return len(self.items) - self.adding

    def take(self, items: list[WorkItem]) -> None:
        """PENDING -> ADDING."""
        for item in items:
            item.state = State.ADDING
            self.items[item.task_id] = item
        self.adding += len(items)

    def accepted(self, item: WorkItem) -> bool:
        """ADDING -> QUEUED; False, and out of the table (DONE, notified), if its future was
        cancelled meanwhile: the caller ends its task."""
        self.adding -= 1
        if item.future.cancelled():
            notify_cancelled(item.future)
            item.state = State.DONE
            del self.items[item.task_id]
            return False
        item.state = State.QUEUED
        self.queued[item.task_id] = item
        return True

    def started(self, task_id: str) -> WorkItem | None:
        """QUEUED -> RUNNING: its task was seen running. Returns the item if its future
        was cancelled meanwhile (then out of the table: the caller ends its task)."""
        item = self.queued.pop(task_id, None)
        if item is None or start(item):
            return None
        del self.items[task_id]
        return item

    def cancelled(self) -> list[WorkItem]:
        """The QUEUED items whose future the user cancelled: out of the table, DONE and
        notified; the caller terminates their tasks (Batch never runs a task terminated
        while it waits in the queue: REST "Task - Terminate")."""
        gone = [item for item in self.queued.values() if item.future.cancelled()]
        for item in gone:
            del self.queued[item.task_id], self.items[item.task_id]
            notify_cancelled(item.future)
            item.state = State.DONE
        return gone

    def cancel_queued(self) -> int:
        """shutdown(cancel_futures=True): cancel the futures of the QUEUED items (their
        calls have not started); `cancelled` then takes them out. Returns how many."""
        return sum(item.future.cancel() for item in self.queued.values())

    def leave(self, item: WorkItem) -> None:
        """Out of the table while ADDING: back to PENDING (the caller queues it again) or
        DONE (refused, its inputs could not be uploaded)."""
        self.adding -= 1
        del self.items[item.task_id]
        if item.state == State.ADDING:
            item.state = State.PENDING

    def completed(self, task: CompletedTask) -> WorkItem | None:
        """The QUEUED or RUNNING item of a completed task, out of the table and RUNNING
        (None if its future was cancelled meanwhile); a task whose add reply is not
        harvested yet is kept until it is (`harvest_early`)."""
        item = self.items.get(task.task_id)
        if item is None:
            return None
        if item.state == State.ADDING:
            self.early[task.task_id] = task
            return None
        del self.items[task.task_id]
        self.queued.pop(task.task_id, None)
        return item if start(item) else None

    def harvest_early(self) -> Iterator[tuple[CompletedTask, WorkItem]]:
        """The tasks that completed before their add was harvested, now accepted."""
        for task_id in list(self.early):
            item = self.items.get(task_id)
            if item is None:  # cancelled while its add was under way: gone already
                del self.early[task_id]
            elif item.state in (State.QUEUED, State.RUNNING):
                task = self.early.pop(task_id)
                found = self.completed(task)
                if found is not None:
                    yield task, found

    def clear(self) -> list[WorkItem]:
        """Every item, out of the table (terminate, broken)."""
        items = list(self.items.values())
        self.items.clear()
        self.queued.clear()
        self.early.clear()
        self.adding = 0
        return items
