"""Slots never idle (issue 14), through the SDK, the emulator and Azurite: tasks are added
to Batch's queue ahead of free slots while `max_workers` still bounds the running calls;
a queued call can be cancelled and never runs; map(chunksize=None) sizes its chunks and
behaves like chunksize=1; an explicit chunksize is obeyed."""

from __future__ import annotations

import os
from concurrent.futures import CancelledError
from pathlib import Path

import pytest
from support.gates import Gate, wait_gate
from support.waiting import wait_until

TIMEOUT = 60.0


def mark_then_wait(marks: str, gate: str, i: int) -> int:
    Path(marks, str(i)).touch()  # this call ran
    wait_gate(gate)
    return i


def square(x: int) -> int:
    return x * x


def fails_at_seven(x: int) -> int:
    if x == 7:
        raise ValueError(f"bad value {x}")
    return x


def counts(ex) -> tuple[int, int, int]:
    """(active, running, completed) of the executor's job, asked of Batch."""
    return ex._ctx.services.batch.task_counts(ex.job_id)


@pytest.fixture
def slow_scheduling(local_stack):
    """Azure-like scheduling: each task waits 0.3 s in Batch's queue before it may start."""
    local_stack.emulator.set_scheduling_latency(0.3, 0.3)
    yield
    local_stack.emulator.set_scheduling_latency(0.0, 0.0)


def test_tasks_wait_in_batchs_queue_and_a_queued_one_is_cancelled(
        make_batch_executor, slow_scheduling, tmp_path) -> None:
    gate = Gate(tmp_path)
    marks = tmp_path / "marks"
    marks.mkdir()
    ex = make_batch_executor(max_workers=2, queue_depth=2)
    try:
        fs = [ex.submit(mark_then_wait, str(marks), gate.path, i) for i in range(6)]
        wait_until(lambda: fs[0].running() and fs[1].running(), "the first two running")
        wait_until(lambda: sum(counts(ex)) == 4, "two more tasks queued at Batch")
        active, running, _ = counts(ex)
        assert (active, running) == (2, 2)  # added before any slot freed; max_workers holds
        assert not fs[2].running() and not fs[3].running()  # queued is not running
        assert fs[3].cancel()  # queued at Batch, not started: cancellable
        wait_until(lambda: sum(counts(ex)) == 5, "task 3 ended and task 4 added")
    finally:
        gate.open()
    assert [f.result(TIMEOUT) for f in fs[:3] + fs[4:]] == [0, 1, 2, 4, 5]
    assert fs[3].cancelled()
    assert sorted(os.listdir(marks)) == ["0", "1", "2", "4", "5"]  # call 3 never ran
    assert sum(counts(ex)) == 6  # one task per submission, none duplicated


def test_shutdown_cancel_futures_cancels_the_queued_tasks(make_batch_executor, slow_scheduling,
                                                           tmp_path) -> None:
    gate = Gate(tmp_path)
    marks = tmp_path / "marks"
    marks.mkdir()
    ex = make_batch_executor(max_workers=1, queue_depth=2)
    try:
        fs = [ex.submit(mark_then_wait, str(marks), gate.path, i) for i in range(5)]
        wait_until(fs[0].running, "the first call running")
        wait_until(lambda: sum(counts(ex)) == 3, "two tasks queued at Batch")
        ex.shutdown(wait=False, cancel_futures=True)
        wait_until(lambda: all(f.cancelled() for f in fs[1:]), "the queued calls cancelled")
    finally:
        gate.open()
    assert fs[0].result(TIMEOUT) == 0
    ex.shutdown(wait=True)
    assert os.listdir(marks) == ["0"]


@pytest.mark.parametrize("chunksize", [None, 1, 4])
def test_map_gives_the_same_results_and_errors_whatever_the_chunks(make_batch_executor,
                                                                   chunksize) -> None:
    ex = make_batch_executor()
    assert list(ex.map(square, range(60), chunksize=chunksize)) == [x * x for x in range(60)]
    seen = []
    with pytest.raises(ValueError, match="bad value 7"):
        for value in ex.map(fails_at_seven, range(30), chunksize=chunksize):
            seen.append(value)
    assert seen == list(range(7))


@pytest.mark.parametrize("chunksize", [None, 1])
def test_a_timed_out_map_raises_timeout_error_whatever_the_chunks(make_batch_executor,
                                                                  tmp_path, chunksize) -> None:
    gate = Gate(tmp_path)
    ex = make_batch_executor()
    try:
        results = ex.map(wait_gate, [gate.path] * 3, range(3), timeout=0.5,
                         chunksize=chunksize)
        with pytest.raises(TimeoutError):
            list(results)
    finally:
        gate.open()


def test_an_explicit_chunksize_is_obeyed(make_batch_executor) -> None:
    ex = make_batch_executor()
    assert list(ex.map(square, range(10), chunksize=3)) == [x * x for x in range(10)]
    assert counts(ex) == (0, 0, 4)  # ceil(10 / 3) tasks


def test_auto_chunks_start_with_one_call_and_grow(make_batch_executor) -> None:
    ex = make_batch_executor()
    assert list(ex.map(square, range(200))) == [x * x for x in range(200)]
    tasks = counts(ex)[2]
    assert ex.max_workers <= tasks < 100, tasks  # the first wave one call each, then larger


def test_an_auto_chunked_map_cut_short_by_shutdown_cancels_the_rest(make_batch_executor,
                                                                    tmp_path) -> None:
    gate = Gate(tmp_path)
    ex = make_batch_executor(max_workers=1, queue_depth=0)
    try:
        results = ex.map(wait_gate, [gate.path] * 5, range(5))
        ex.shutdown(wait=False, cancel_futures=True)
    finally:
        gate.open()
    got = []
    with pytest.raises(CancelledError):
        for value in results:
            got.append(value)
    assert got == list(range(len(got))) and len(got) < 5
