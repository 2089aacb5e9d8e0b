"""A task's lifecycle: every work item's state and every transition of its Future.

Role: the one owner of a future's fate. A `WorkItem` (one Batch task: one call from
``submit()`` or one chunk of a ``map()``) stays on the client and owns its Future; its
`state` says where it is::

    PENDING ──take──► ADDING ──accepted──► IN_FLIGHT ──outcome──► DONE
       │                 │ (server error: back to PENDING)
       └─cancel──► DONE  └─refused / upload failed / cancelled meanwhile──► DONE

Items leave the submit queue (`state.SubmitQueue.pending`, PENDING) into the manager
thread's `WorkTable` (ADDING, IN_FLIGHT) and leave it DONE. The functions below are
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
    IN_FLIGHT = 2  # Batch accepted its task; not completed yet
    DONE = 3  # its future is resolved (result, exception or cancelled)


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


# ------------------------------------------------------------------------------ transitions
def start(item: WorkItem) -> bool:
    """ADDING -> IN_FLIGHT: Batch accepted its task. False when its future was cancelled
    meanwhile (then DONE and notified; the caller ends the task)."""
    if item.future.set_running_or_notify_cancel():
        item.state = State.IN_FLIGHT
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
    (their collection add is under way) or IN_FLIGHT (Batch has their task). Only the
    manager thread touches it."""

    def __init__(self) -> None:
        self.items: dict[str, WorkItem] = {}
        self.adding = 0  # how many of `items` are ADDING
        self.early: dict[str, CompletedTask] = {}  # completed before their add was harvested

    def __len__(self) -> int:
        return len(self.items)

    def in_flight(self) -> int:
        return len(self.items) - self.adding

    def take(self, items: list[WorkItem]) -> None:
        """PENDING -> ADDING."""
        for item in items:
            item.state = State.ADDING
            self.items[item.task_id] = item
        self.adding += len(items)

    def accepted(self, item: WorkItem) -> bool:
        """ADDING -> IN_FLIGHT (`start`); False, and out of the table, if it was cancelled."""
        self.adding -= 1
        if start(item):
            return True
        del self.items[item.task_id]
        return False

    def leave(self, item: WorkItem) -> None:
        """Out of the table while ADDING: back to PENDING (the caller queues it again) or
        DONE (refused, its inputs could not be uploaded)."""
        self.adding -= 1
        del self.items[item.task_id]
        if item.state == State.ADDING:
            item.state = State.PENDING

    def completed(self, task: CompletedTask) -> WorkItem | None:
        """The IN_FLIGHT item of a completed task, out of the table; a task whose add reply
        is not harvested yet is kept until it is (`harvest_early`)."""
        item = self.items.get(task.task_id)
        if item is None:
            return None
        if item.state == State.ADDING:
            self.early[task.task_id] = task
            return None
        del self.items[task.task_id]
        return item

    def harvest_early(self) -> Iterator[tuple[CompletedTask, WorkItem]]:
        """The tasks that completed before their add was harvested, now IN_FLIGHT."""
        for task_id in list(self.early):
            item = self.items.get(task_id)
            if item is None:  # cancelled while its add was under way: gone already
                del self.early[task_id]
            elif item.state == State.IN_FLIGHT:
                yield self.early.pop(task_id), self.items.pop(task_id)

    def clear(self) -> list[WorkItem]:
        """Every item, out of the table (terminate, broken)."""
        items = list(self.items.values())
        self.items.clear()
        self.early.clear()
        self.adding = 0
        return items
