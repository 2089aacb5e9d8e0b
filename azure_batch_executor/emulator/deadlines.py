"""Wall-clock deadlines for the emulator's task runner: one thread for all attempts.

Role: call a function at a monotonic time without a thread or a poll per
attempt. Entries are cancelled in O(1); the heap is compacted when cancelled
entries outnumber live ones. The thread starts with the first deadline and
ends at `close()`; callbacks run on it without its lock held.

Imports: the standard library only.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Deadlines:
    """One lazily started thread calling `fn()` at monotonic deadlines; entries can be cancelled.

    An entry is a one-item list holding `fn`, or None once cancelled; cancelled
    entries are dropped when they reach the top of the heap, or all at once when
    they outnumber the live ones.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, list[Any]]] = []  # (when, seq, [fn or None])
        self._seq = itertools.count()
        self._cancelled = 0
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, when: float, fn: Callable[[], None]) -> list[Any]:
        entry: list[Any] = [fn]
        with self._cond:
            if self._closed:
                return entry
            heapq.heappush(self._heap, (when, next(self._seq), entry))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="emulator-walltime", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return entry

    def cancel(self, entry: list[Any]) -> None:
        with self._cond:
            if entry[0] is None:
                return
            entry[0] = None
            self._cancelled += 1
            if self._cancelled > 64 and self._cancelled * 2 > len(self._heap):
                self._heap = [item for item in self._heap if item[2][0] is not None]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)

    def _loop(self) -> None:
        with self._cond:
            while not self._closed:
                while self._heap and self._heap[0][2][0] is None:
                    heapq.heappop(self._heap)
                    self._cancelled -= 1
                if not self._heap:
                    self._cond.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                entry = heapq.heappop(self._heap)[2]
                fn, entry[0] = entry[0], None
                self._cond.release()
                try:
                    fn()
                except Exception:
                    log.exception("wall-clock callback failed")
                finally:
                    self._cond.acquire()
