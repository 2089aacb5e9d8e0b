"""The executor contract, written once: CPython's test_concurrent_futures semantics.

Covers ExecutorTest, WaitTests, AsCompletedTests, the executor-agnostic shutdown
tests and the initializer tests, adapted so that nothing sleeps to synchronise:
a task that must still be running waits on a `Gate` (a file the test creates),
and the test waits on futures with deadlines. `test_contract.py` binds the
suite to ThreadPoolExecutor (the baseline) and to AzureBatchExecutor on the
local stack. A binding provides `make_executor(max_workers=None, **kwargs)`,
`threads_of(executor)` and `slow` (a timeout long enough for a few tasks).
"""

from __future__ import annotations

import gc
import itertools
import os
import subprocess
import sys
import textwrap
import threading
import time
from concurrent import futures
from concurrent.futures import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    BrokenExecutor,
    CancelledError,
    Future,
)
from concurrent.futures._base import (
    CANCELLED,
    CANCELLED_AND_NOTIFIED,
    FINISHED,
    PENDING,
    RUNNING,
)

import pytest
from support.gates import Gate, wait_gate

TIMEOUT = 60.0  # deadline for anything that should happen


# ------------------------------------------------------------------ functions run as tasks
def mul(x, y):
    return x * y


def capture(*args, **kwargs):
    return args, kwargs


def raise_after_gate(path):
    wait_gate(path)
    raise ValueError("raised after the gate opened")


INITIALIZER_STATUS = "uninitialized"


def init(x):
    global INITIALIZER_STATUS
    INITIALIZER_STATUS = x


def get_init_status():
    return INITIALIZER_STATUS


def init_fail():
    raise ValueError("error in initializer")


def create_future(state=PENDING, exception=None, result=None):
    f = Future()
    f._state = state
    f._exception = exception
    f._result = result
    return f


PENDING_FUTURE = create_future(state=PENDING)
RUNNING_FUTURE = create_future(state=RUNNING)
CANCELLED_FUTURE = create_future(state=CANCELLED)
CANCELLED_AND_NOTIFIED_FUTURE = create_future(state=CANCELLED_AND_NOTIFIED)
EXCEPTION_FUTURE = create_future(state=FINISHED, exception=OSError())
SUCCESSFUL_FUTURE = create_future(state=FINISHED, result=42)


class Base:
    """Per-test executor from the binding, shut down (gates opened) after the test."""

    slow = 1.0
    max_workers: int | None = 4

    def make_executor(self, max_workers=None, **kwargs):  # pragma: no cover - bound
        raise NotImplementedError

    def threads_of(self, executor) -> list[threading.Thread]:  # pragma: no cover - bound
        raise NotImplementedError

    @pytest.fixture(autouse=True)
    def _executor(self, tmp_path):
        self.tmp_path = tmp_path
        self.gates: list[Gate] = []
        self.executors: list = []
        yield
        for gate in self.gates:
            gate.open()
        for ex in self.executors:
            ex.shutdown(wait=True)

    @property
    def executor(self):
        if not self.executors:
            self.new_executor(self.max_workers)
        return self.executors[0]

    def new_executor(self, max_workers=None, **kwargs):
        ex = self.make_executor(max_workers, **kwargs)
        self.executors.append(ex)
        return ex

    def gate(self) -> Gate:
        g = Gate(self.tmp_path)
        self.gates.append(g)
        return g


# ------------------------------------------------------------------ ExecutorTest
class ExecutorTests(Base):
    def test_submit(self):
        assert self.executor.submit(pow, 2, 8).result(TIMEOUT) == 256

    def test_submit_keyword(self):
        assert self.executor.submit(mul, 2, y=8).result(TIMEOUT) == 16
        f = self.executor.submit(capture, 1, self=2, fn=3)
        assert f.result(TIMEOUT) == ((1,), {"self": 2, "fn": 3})
        with pytest.raises(TypeError):
            self.executor.submit(fn=capture, arg=1)
        with pytest.raises(TypeError):
            self.executor.submit(arg=1)

    def test_map(self):
        expected = list(map(pow, range(10), range(10)))
        assert list(self.executor.map(pow, range(10), range(10), timeout=TIMEOUT)) == expected
        got = self.executor.map(pow, range(10), range(10), timeout=TIMEOUT, chunksize=3)
        assert list(got) == expected

    def test_map_exception(self):
        i = self.executor.map(divmod, [1, 1, 1, 1], [2, 3, 0, 5], timeout=TIMEOUT)
        assert next(i) == (0, 1)
        assert next(i) == (0, 1)
        with pytest.raises(ZeroDivisionError):
            next(i)

    def test_map_timeout(self):
        gate = self.gate()
        results = []
        with pytest.raises(futures.TimeoutError):
            for r in self.executor.map(wait_gate, ["/", "/", gate.path], timeout=self.slow):
                results.append(r)
        assert results == [None, None]

    def test_max_workers_negative(self):
        for number in (0, -1):
            with pytest.raises(ValueError, match="max_workers must be greater than 0"):
                self.make_executor(max_workers=number)

    def test_unpicklable_argument_fails_only_its_future(self):
        lock = threading.Lock()
        f = self.executor.submit(capture, lock)
        if f.exception(TIMEOUT) is not None:  # Batch: named pickling error; threads: fine
            assert "lock" in str(f.exception())
        assert self.executor.submit(mul, 3, 3).result(TIMEOUT) == 9


# ------------------------------------------------------------------ WaitTests
class WaitTests(Base):
    def test_20369(self):
        future = self.executor.submit(mul, 1, 2)
        done, not_done = futures.wait([future, future], timeout=TIMEOUT,
                                      return_when=ALL_COMPLETED)
        assert done == {future} and not not_done

    def test_first_completed(self):
        gate = self.gate()
        future1 = self.executor.submit(mul, 21, 2)
        future2 = self.executor.submit(wait_gate, gate.path)
        done, not_done = futures.wait([CANCELLED_FUTURE, future1, future2],
                                      timeout=TIMEOUT, return_when=FIRST_COMPLETED)
        assert done == {future1}
        assert not_done == {CANCELLED_FUTURE, future2}

    def test_first_completed_some_already_completed(self):
        gate = self.gate()
        future1 = self.executor.submit(wait_gate, gate.path)
        finished, pending = futures.wait(
            [CANCELLED_AND_NOTIFIED_FUTURE, SUCCESSFUL_FUTURE, future1],
            return_when=FIRST_COMPLETED)
        assert finished == {CANCELLED_AND_NOTIFIED_FUTURE, SUCCESSFUL_FUTURE}
        assert pending == {future1}

    def test_first_exception(self):
        gate2, gate3 = self.gate(), self.gate()
        future1 = self.executor.submit(mul, 2, 21)
        future2 = self.executor.submit(raise_after_gate, gate2.path)
        future3 = self.executor.submit(wait_gate, gate3.path)
        assert future1.result(TIMEOUT) == 42
        gate2.open()
        finished, pending = futures.wait([future1, future2, future3], timeout=TIMEOUT,
                                         return_when=FIRST_EXCEPTION)
        assert finished == {future1, future2}
        assert pending == {future3}

    def test_first_exception_some_already_complete(self):
        future1 = self.executor.submit(divmod, 21, 0)
        finished, pending = futures.wait(
            [SUCCESSFUL_FUTURE, CANCELLED_FUTURE, CANCELLED_AND_NOTIFIED_FUTURE, future1],
            timeout=TIMEOUT, return_when=FIRST_EXCEPTION)
        assert finished == {SUCCESSFUL_FUTURE, CANCELLED_AND_NOTIFIED_FUTURE, future1}
        assert pending == {CANCELLED_FUTURE}

    def test_first_exception_one_already_failed(self):
        gate = self.gate()
        future1 = self.executor.submit(wait_gate, gate.path)
        finished, pending = futures.wait([EXCEPTION_FUTURE, future1],
                                         return_when=FIRST_EXCEPTION)
        assert finished == {EXCEPTION_FUTURE}
        assert pending == {future1}

    def test_all_completed(self):
        future1 = self.executor.submit(divmod, 2, 0)
        future2 = self.executor.submit(mul, 2, 21)
        fs = [SUCCESSFUL_FUTURE, CANCELLED_AND_NOTIFIED_FUTURE, EXCEPTION_FUTURE, future1,
              future2]
        finished, pending = futures.wait(fs, timeout=TIMEOUT, return_when=ALL_COMPLETED)
        assert finished == set(fs) and pending == set()

    def test_timeout(self):
        gate = self.gate()
        future1 = self.executor.submit(mul, 6, 7)
        future2 = self.executor.submit(wait_gate, gate.path)
        assert future1.result(TIMEOUT) == 42
        fs = [CANCELLED_AND_NOTIFIED_FUTURE, EXCEPTION_FUTURE, SUCCESSFUL_FUTURE, future1,
              future2]
        finished, pending = futures.wait(fs, timeout=0.2, return_when=ALL_COMPLETED)
        assert finished == set(fs[:4])
        assert pending == {future2}


# ------------------------------------------------------------------ AsCompletedTests
class AsCompletedTests(Base):
    def test_no_timeout(self):
        future1 = self.executor.submit(mul, 2, 21)
        future2 = self.executor.submit(mul, 7, 6)
        fs = [CANCELLED_AND_NOTIFIED_FUTURE, EXCEPTION_FUTURE, SUCCESSFUL_FUTURE, future1,
              future2]
        assert set(futures.as_completed(fs, timeout=TIMEOUT)) == set(fs)

    def test_future_times_out(self):
        gate = self.gate()
        already = self.executor.submit(mul, 1, 1)
        already.result(TIMEOUT)
        future = self.executor.submit(wait_gate, gate.path)
        completed = set()
        with pytest.raises(futures.TimeoutError):
            for f in futures.as_completed(
                    [CANCELLED_AND_NOTIFIED_FUTURE, EXCEPTION_FUTURE, SUCCESSFUL_FUTURE,
                     already, future], timeout=0):
                completed.add(f)
        assert completed == {CANCELLED_AND_NOTIFIED_FUTURE, EXCEPTION_FUTURE,
                             SUCCESSFUL_FUTURE, already}

    def test_duplicate_futures(self):
        future1 = self.executor.submit(mul, 2, 2)
        completed = list(futures.as_completed(itertools.repeat(future1, 3), timeout=TIMEOUT))
        assert len(completed) == 1

    def test_correct_timeout_exception_msg(self):
        fs = [PENDING_FUTURE, RUNNING_FUTURE, CANCELLED_AND_NOTIFIED_FUTURE, SUCCESSFUL_FUTURE]
        with pytest.raises(futures.TimeoutError, match=r"2 \(of 4\) futures unfinished"):
            list(futures.as_completed(fs, timeout=0))


# ------------------------------------------------------------------ shutdown tests
class ShutdownTests(Base):
    n_hang = 8

    def test_run_after_shutdown(self):
        self.executor.shutdown()
        with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
            self.executor.submit(pow, 2, 5)

    def test_shutdown_is_idempotent(self):
        f = self.executor.submit(mul, 2, 3)
        self.executor.shutdown()
        self.executor.shutdown()
        self.executor.shutdown(wait=False, cancel_futures=True)
        assert f.result(0) == 6

    def test_hang_issue12364(self):
        fs = [self.executor.submit(mul, i, 1) for i in range(self.n_hang)]
        self.executor.shutdown()
        assert [f.result(0) for f in fs] == list(range(self.n_hang))

    def test_cancel_futures(self):
        ex = self.new_executor(max_workers=2)
        gate = self.gate()
        fs = [ex.submit(wait_gate, gate.path, i) for i in range(20)]
        ex.shutdown(wait=False, cancel_futures=True)
        cancelled = [f for f in fs if f.cancelled()]
        assert len(cancelled) >= 16
        others = [f for f in fs if not f.cancelled()]
        gate.open()
        for f in others:
            assert f.result(TIMEOUT) in range(20)
        ex.shutdown(wait=True)
        for f in cancelled:
            with pytest.raises(CancelledError):
                f.result(0)

    def test_context_manager_shutdown(self):
        with self.make_executor(max_workers=2) as ex:
            fs = [ex.submit(abs, -5), ex.submit(mul, 2, 2)]
        assert all(f.done() for f in fs)
        assert [f.result(0) for f in fs] == [5, 4]
        assert not any(t.is_alive() for t in self.threads_of(ex))

    def test_shutdown_no_wait(self):
        ex = self.new_executor(max_workers=2)
        fs = [ex.submit(mul, 3, i) for i in range(3)]
        threads = self.threads_of(ex)
        ex.shutdown(wait=False)
        for t in threads:
            t.join(TIMEOUT)
            assert not t.is_alive()
        assert [f.result(0) for f in fs] == [0, 3, 6]

    def test_del_shutdown(self):
        ex = self.make_executor(max_workers=2)
        f = ex.submit(abs, -1)
        threads = self.threads_of(ex)
        del ex
        gc.collect()
        for t in threads:
            t.join(TIMEOUT)
            assert not t.is_alive()
        assert f.result(0) == 1

    def test_cancel_pending_future(self):
        ex = self.new_executor(max_workers=1)
        gate = self.gate()
        blocker = ex.submit(wait_gate, gate.path, "first")
        queued = ex.submit(mul, 2, 2)
        assert queued.cancel()
        gate.open()
        assert blocker.result(TIMEOUT) == "first"
        done, _ = futures.wait([queued], timeout=TIMEOUT)
        assert queued in done and queued.cancelled()

    interpreter_exit_script = ""

    def test_interpreter_shutdown(self):
        """Leaving the interpreter without shutdown() still resolves the futures."""
        if not self.interpreter_exit_script:
            pytest.skip("binding has no interpreter-exit script")
        script = textwrap.dedent(self.interpreter_exit_script)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=TIMEOUT * 2, env=env)
        assert out.returncode == 0, out.stderr[-3000:]
        assert out.stdout.strip().endswith("32"), (out.stdout, out.stderr[-3000:])


# ------------------------------------------------------------------ initializer tests
class InitializerTests(Base):
    def test_initializer(self):
        ex = self.new_executor(max_workers=2, initializer=init, initargs=("initialized",))
        fs = [ex.submit(get_init_status) for _ in range(4)]
        assert [f.result(TIMEOUT) for f in fs] == ["initialized"] * 4

    def test_failing_initializer(self):
        ex = self.new_executor(max_workers=2, initializer=init_fail)
        f = ex.submit(get_init_status)
        with pytest.raises(BrokenExecutor):
            f.result(TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while True:  # at some point the executor counts as broken, then submit must fail
            try:
                ex.submit(get_init_status).exception(TIMEOUT)
            except BrokenExecutor:
                break
            assert time.monotonic() < deadline, "the executor never broke"
