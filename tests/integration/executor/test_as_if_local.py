"""As if local (issue 9): map()'s iterator, buffersize, task output and cancellation races,
on the local stack through the real SDK and Azurite."""

from __future__ import annotations

import gc
import itertools
import re
import sys
import threading
import weakref
from concurrent.futures import Future, wait

import pytest
from executor_contract import Gate, wait_gate

TIMEOUT = 120.0


class Dummy:
    pass


def make_dummy(_: int) -> Dummy:
    return Dummy()


def square(x: int) -> int:
    return x * x


def chatty(n: int, size: int = 0) -> int:
    print("line", n)
    print("trouble", n, file=sys.stderr)
    if size:
        for _ in range(size // 100):
            sys.stdout.write("x" * 99 + "\n")
        print("the end")
    return n


# ------------------------------------------------------------------ map
def test_map_iterator_keeps_no_reference_to_a_yielded_result(make_batch_executor) -> None:
    """CPython's test_free_reference, with chunks."""
    ex = make_batch_executor(max_workers=2)
    seen = 0
    for obj in ex.map(make_dummy, range(6), chunksize=2):
        assert type(obj) is Dummy
        ref = weakref.ref(obj)
        del obj
        gc.collect()
        assert ref() is None, "map()'s iterator still holds the result it yielded"
        seen += 1
    assert seen == 6


def test_buffersize_reads_an_endless_generator_lazily(make_batch_executor) -> None:
    ex = make_batch_executor(max_workers=2)
    drawn: list[int] = []

    def numbers():
        for i in itertools.count():
            drawn.append(i)
            yield i

    results = ex.map(square, numbers(), chunksize=2, buffersize=3)
    assert [next(results) for _ in range(10)] == [i * i for i in range(10)]
    # 5 chunks consumed, at most buffersize (3) more submitted, each of chunksize (2) calls,
    # plus the one call that tells a chunk is full
    assert len(drawn) <= 10 + 3 * 2 + 1
    results.close()  # the chunks submitted ahead are cancelled or finish; nothing else runs
    assert len(drawn) <= 10 + 3 * 2 + 1


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (-1, ValueError),
                                              (1.5, TypeError), ("2", TypeError)])
def test_buffersize_is_checked_as_the_stdlib_does(make_batch_executor, value, error) -> None:
    ex = make_batch_executor(max_workers=1)
    with pytest.raises(error, match="buffersize"):
        ex.map(square, range(3), buffersize=value)


# ------------------------------------------------------------------ task output
def test_task_output_is_echoed_with_its_task_id(make_batch_executor, capfd) -> None:
    ex = make_batch_executor(max_workers=2)
    future = ex.submit(chatty, 7)
    assert future.result(timeout=TIMEOUT) == 7
    out, err = capfd.readouterr()
    assert re.search(r"^\(task-\d{6}\) line 7$", out, re.M), out
    assert re.search(r"^\(task-\d{6}\) trouble 7$", err, re.M), err
    full = ex.task_output(future)
    assert full.stdout == "line 7\n" and full.stderr == "trouble 7\n"


def test_echo_output_false_prints_nothing(make_batch_executor, capfd) -> None:
    ex = make_batch_executor(max_workers=2, echo_output=False)
    assert ex.submit(chatty, 8).result(timeout=TIMEOUT) == 8
    out, err = capfd.readouterr()
    assert "line 8" not in out and "trouble 8" not in err


def test_long_output_is_cut_to_its_tail_and_task_output_has_it_all(make_batch_executor,
                                                                   capfd) -> None:
    ex = make_batch_executor(max_workers=2)
    future = ex.submit(chatty, 9, 200_000)
    assert future.result(timeout=TIMEOUT) == 9
    out, _ = capfd.readouterr()
    echoed = [line for line in out.splitlines() if line.startswith("(task-")]
    assert "earlier bytes of stdout not shown" in echoed[0]
    assert echoed[-1].endswith(") the end")
    assert sum(len(line) for line in echoed) < 90 * 1024
    assert len(ex.task_output(future).stdout) > 200_000


def test_task_output_refuses_what_it_cannot_read(make_batch_executor, tmp_path) -> None:
    ex = make_batch_executor(max_workers=1)
    with pytest.raises(ValueError, match="not returned by this executor"):
        ex.task_output(Future())
    gate = Gate(tmp_path)
    future = ex.submit(wait_gate, gate.path)
    with pytest.raises(ValueError, match="has not finished"):
        ex.task_output(future)
    gate.open()
    future.result(timeout=TIMEOUT)


# ------------------------------------------------------------------ cancellation
def test_cancelling_100000_pending_futures_from_threads_while_dispatching(
        make_batch_executor, tmp_path) -> None:
    ex = make_batch_executor(max_workers=2)
    gate = Gate(tmp_path)
    first = ex.submit(wait_gate, gate.path, "resolved by its task")
    while not first.running():  # Batch accepted it
        assert not first.done(), first.exception()
        wait([first], timeout=0.05)
    pending = [ex.submit(pow, 2, i % 7) for i in range(100_000)]  # one slot free: dispatching

    def cancel(part: list[Future]) -> None:
        for future in part:
            future.cancel()

    threads = [threading.Thread(target=cancel, args=(pending[k::4],)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gate.open()
    assert first.result(timeout=TIMEOUT) == "resolved by its task"
    assert ex.broken is None
    ex.terminate()
    _, not_done = wait([*pending, first], timeout=TIMEOUT)
    assert not not_done, f"{len(not_done)} futures never resolved"
    assert ex.broken is None
    ran = [f for f in pending if not f.cancelled()]
    assert sum(f.cancelled() for f in pending) > 90_000  # most never reached Batch
    for future in ran:  # taken before their cancel: a result, or ended by terminate()
        assert future.exception() is None or "terminated" in str(future.exception())


# ------------------------------------------------------------------ bad input
def test_an_open_socket_fails_its_own_future_naming_it(make_batch_executor) -> None:
    import socket

    from azure_batch_executor import TaskPicklingError

    ex = make_batch_executor(max_workers=2)
    with socket.socket() as sock:
        failed = ex.submit(square, sock)
        with pytest.raises(TaskPicklingError,
                           match=r"positional argument 0 of submit\(square.*socket"):
            failed.result(timeout=TIMEOUT)
        results = ex.map(square, [2, sock, 3])
        assert next(results) == 4
        with pytest.raises(TaskPicklingError, match="socket"):
            next(results)
    assert ex.submit(square, 5).result(timeout=TIMEOUT) == 25
    assert ex.broken is None
