"""map(chunksize=None): chunks sized from measured call durations, made as slots need them.

Role: `ChunkSizer` picks how many calls the next task of a ``map()`` carries so that a
task runs for about `chunk_target` seconds (a task's fixed cost on Azure is seconds:
add, schedule, start a Python, download, upload), as joblib's auto-batching sizes its
batches (joblib ``BatchedCalls`` / ``_compute_batch_size``): one call per task until a
duration is known, then target / mean call time, growing at most `GROWTH` times the
largest chunk measured so far, and never more than the calls left / (2 x workers), so
the last tasks are small and the slots finish together. The mean comes from the worker,
which times its calls (``node["calls_seconds"]`` in outputs.pickle).

`MapStream` is a ``map()`` without `buffersize` in auto mode: its calls were read at
once (as the stdlib's map reads its iterables), its chunks are made by the manager thread
(`make`) when the queue has room (`dispatch`), so sizes follow what was measured since,
and the caller's iterator (`mapping.stream_results`) takes their futures in order
(`next_future`), whatever thread consumes and whenever. A stream ended by
shutdown(cancel_futures=True), terminate() or a broken executor raises that
(CancelledError, or the error) for the calls it never made.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from typing import Any

from ..wire.codec import Call

GROWTH = 16  # a chunk holds at most this many times the calls of the largest measured one


class ChunkSizer:
    """How many calls the next chunk of one map() gets (thread-safe: the manager thread
    measures, the thread that makes chunks asks)."""

    def __init__(self, target: float, workers: int) -> None:
        self.target = target
        self.workers = max(1, workers)
        self._lock = threading.Lock()
        self.calls = 0  # calls measured
        self.seconds = 0.0  # the time they took on the nodes
        self.largest = 0  # the largest chunk measured

    def observe(self, calls: int, seconds: float | None) -> None:
        """A task of `calls` calls took `seconds` (its calls' time on the node)."""
        if calls <= 0 or seconds is None or not math.isfinite(seconds) or seconds < 0:
            return
        with self._lock:
            self.calls += calls
            self.seconds += seconds
            self.largest = max(self.largest, calls)

    def next_size(self, remaining: int | None = None) -> int:
        """The calls of the next chunk; `remaining`: the calls not yet in a chunk, if known."""
        with self._lock:
            if not self.calls:
                return 1  # nothing measured yet: first results fast
            per_call = max(self.seconds / self.calls, 1e-6)
            size = min(math.ceil(self.target / per_call), GROWTH * self.largest)
        if remaining is not None:
            size = min(size, math.ceil(remaining / (2 * self.workers)))
        return max(1, size)


class MapStream:
    """The chunks of one auto-chunked map(), made on demand by the manager thread."""

    def __init__(self, calls: list[tuple[Any, ...]], sizer: ChunkSizer,
                 make: Callable[[list[Call]], Future[Any]]) -> None:
        self.calls: collections.deque[tuple[Any, ...]] = collections.deque(calls)
        self.sizer = sizer
        self.make = make
        self.cond = threading.Condition()
        self.futures: collections.deque[Future[Any]] = collections.deque()
        self.ended: BaseException | None = None  # why no more chunks are made, if not done

    # ------------------------------------------------------------------ manager thread
    def wants(self) -> bool:
        """Whether it has calls left to make into chunks."""
        return bool(self.calls) and self.ended is None

    def produce(self) -> None:
        """Make the next chunk (sized by what was measured so far) into a task."""
        size = self.sizer.next_size(len(self.calls))
        chunk: list[Call] = [(self.calls.popleft(), {})
                             for _ in range(min(size, len(self.calls)))]
        future = self.make(chunk)
        with self.cond:
            self.futures.append(future)
            self.cond.notify_all()

    def end(self, reason: BaseException) -> None:
        """No more chunks: the calls left never run; the caller gets `reason` for them."""
        with self.cond:
            if self.calls and self.ended is None:
                self.ended = reason
            self.calls.clear()
            self.cond.notify_all()

    # ------------------------------------------------------------------ the caller's thread
    def next_future(self, end_time: float | None) -> Future[Any] | None:
        """The future of the next chunk, in order (None when all were consumed); waits for
        the manager to make it, raising TimeoutError at `end_time`."""
        with self.cond:
            while not self.futures:
                if self.ended is not None:
                    raise self.ended
                if not self.calls:
                    return None
                wait = None if end_time is None else end_time - time.monotonic()
                if wait is not None and wait <= 0:
                    raise TimeoutError
                self.cond.wait(wait)
            return self.futures.popleft()

    def close(self) -> None:
        """The caller stopped consuming: cancel what was made and make nothing more."""
        self.end(CancelledError())
        with self.cond:
            futures, self.futures = list(self.futures), collections.deque()
        for future in futures:
            future.cancel()
