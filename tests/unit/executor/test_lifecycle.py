"""A work item's lifecycle: its states and its future's transitions, each notified once."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError, Future, wait

import pytest

from azure_batch_executor.cloud.ports import CompletedTask
from azure_batch_executor.engine.lifecycle import (
    State,
    WorkItem,
    WorkTable,
    cancel,
    drop_if_cancelled,
    end,
    fail,
    resolve,
)


def item(n: int = 0) -> WorkItem:
    return WorkItem(Future(), n, b"spec", task_id=f"task-{n:06d}")


def done(task_id: str) -> CompletedTask:
    return CompletedTask(task_id, None, "success", 0, None, None)


def test_an_item_goes_pending_adding_queued_running_done() -> None:
    table, work = WorkTable(), item()
    assert work.state is State.PENDING
    table.take([work])
    assert work.state is State.ADDING and table.adding == 1 and table.in_flight() == 0
    assert table.accepted(work)
    assert work.state is State.QUEUED and not work.future.running() and table.in_flight() == 1
    assert table.started(work.task_id) is None
    assert work.state is State.RUNNING and work.future.running() and not table.queued
    assert table.completed(done(work.task_id)) is work and not table
    resolve(work, 42)
    assert work.state is State.DONE and work.future.result() == 42


def test_a_queued_item_seen_completed_runs_then_completes() -> None:
    table, work = WorkTable(), item()
    table.take([work])
    table.accepted(work)
    assert table.completed(done(work.task_id)) is work  # never seen running: started now
    assert work.state is State.RUNNING and work.future.running() and not table


def test_a_queued_item_cancelled_leaves_the_table_for_its_task_to_be_ended() -> None:
    table, kept, gone = WorkTable(), item(1), item(2)
    table.take([kept, gone])
    table.accepted(kept), table.accepted(gone)
    assert gone.future.cancel()  # queued at Batch, not started: cancellable
    assert table.cancelled() == [gone]
    assert gone.state is State.DONE and list(table.items) == [kept.task_id]
    assert wait([gone.future], timeout=0).done == {gone.future}  # notified
    assert table.completed(done(gone.task_id)) is None  # its task ended anyway: ignored


def test_a_queued_item_cancelled_then_seen_running_is_handed_back_to_end_its_task() -> None:
    table, work = WorkTable(), item()
    table.take([work])
    table.accepted(work)
    work.future.cancel()
    assert table.started(work.task_id) is work and not table
    assert work.state is State.DONE


def test_cancel_queued_cancels_only_the_queued() -> None:
    table, queued, running = WorkTable(), item(1), item(2)
    table.take([queued, running])
    table.accepted(queued), table.accepted(running)
    table.started(running.task_id)
    assert table.cancel_queued() == 1
    assert table.cancelled() == [queued] and running.future.running()


def test_cancelled_while_adding_leaves_the_table_and_is_notified() -> None:
    table, work = WorkTable(), item()
    table.take([work])
    work.future.cancel()
    assert not table.accepted(work)
    assert work.state is State.DONE and not table
    assert wait([work.future], timeout=0).done == {work.future}  # notified


def test_a_server_error_sends_the_item_back_to_pending() -> None:
    table, work = WorkTable(), item()
    table.take([work])
    table.leave(work)
    assert work.state is State.PENDING and not table and table.adding == 0


def test_a_task_completed_before_its_add_was_harvested_waits_for_it() -> None:
    table, work = WorkTable(), item()
    table.take([work])
    assert table.completed(done(work.task_id)) is None  # still ADDING: kept aside
    assert list(table.harvest_early()) == []
    table.accepted(work)
    [(task, early)] = list(table.harvest_early())
    assert early is work and task.task_id == work.task_id and not table


def test_early_completion_of_an_item_cancelled_while_adding_is_dropped() -> None:
    table, work = WorkTable(), item()
    table.take([work])
    table.completed(done(work.task_id))
    work.future.cancel()
    table.accepted(work)
    assert list(table.harvest_early()) == [] and not table.early


def test_pending_cancel_and_drop_notify_once() -> None:
    first, second = item(1), item(2)
    assert cancel(first) and first.state is State.DONE
    second.future.cancel()
    assert drop_if_cancelled(second) and drop_if_cancelled(second)  # twice: no RuntimeError
    assert not drop_if_cancelled(item(3))
    assert wait([first.future, second.future], timeout=0).not_done == set()


def test_end_cancels_what_never_ran_and_fails_what_ran() -> None:
    queued, running = item(1), item(2)
    running.future.set_running_or_notify_cancel()
    end(queued, RuntimeError("terminated"))
    end(running, RuntimeError("terminated"))
    with pytest.raises(CancelledError):
        queued.future.result(timeout=0)
    with pytest.raises(RuntimeError, match="terminated"):
        running.future.result(timeout=0)


def test_resolving_a_future_the_user_cancelled_notifies_instead_of_raising() -> None:
    for settle in (lambda w: resolve(w, 1), lambda w: fail(w, ValueError())):
        work = item()
        work.future.cancel()
        settle(work)  # no InvalidStateError
        assert work.state is State.DONE
        assert wait([work.future], timeout=0).not_done == set()


def test_racing_cancels_and_drops_leave_every_future_notified_once() -> None:
    items = [item(n) for n in range(2000)]
    barrier = threading.Barrier(3)

    def cancel_all() -> None:
        barrier.wait()
        for work in items:
            work.future.cancel()

    def drop_all() -> None:
        barrier.wait()
        for _ in range(3):
            for work in items:
                drop_if_cancelled(work)

    threads = [threading.Thread(target=f) for f in (cancel_all, drop_all, drop_all)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for work in items:
        drop_if_cancelled(work)
    assert wait([w.future for w in items], timeout=0).not_done == set()
