"""map()'s machinery: calls read in chunks, each chunk a task, results yielded in order.

Role: `chunks` reads the calls of a ``map()`` lazily, `size` at a time; a `ChunkSubmitter`
makes each chunk one task of its executor (held by a weakref, as the stdlib's map iterator
holds its executor); `result_iterator` yields the chunks' results in order, submitting one
more chunk per chunk consumed when a ``buffersize`` is given, keeping no reference to a
value it has yielded, and ending the executor's work on an interrupt. `failed` is a future
already failed with an error (an argument that cannot be pickled).
"""

from __future__ import annotations

import collections
import itertools
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from ..errors import TaskPicklingError
from ..wire.codec import Call, Divert, encode_chunk
from .autochunk import ChunkSizer, MapStream
from .state import JobContext

if TYPE_CHECKING:
    from .executor import AzureBatchExecutor


def failed(exc: BaseException) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_exception(exc)
    return future


def chunks(calls: Iterator[tuple[Any, ...]], size: int | ChunkSizer) -> Iterator[list[Call]]:
    """The calls of a map(), `size` at a time (or as many as the sizer says for each
    chunk, `autochunk.ChunkSizer`), read lazily."""
    while True:
        count = size if isinstance(size, int) else size.next_size()
        chunk: list[Call] = [(args, {}) for args in itertools.islice(calls, count)]
        if not chunk:
            return
        yield chunk


def chunk_maker(ctx: JobContext, payload_id: int, sizer: ChunkSizer
                ) -> Callable[[list[Call]], Future[Any]]:
    """How the manager thread makes a chunk of an auto-chunked map() into a work item
    (`autochunk.MapStream`): from the job's context alone, so a stream left behind never
    keeps its executor alive."""
    shared_file = ctx.services.layout.shared_file(payload_id)

    def make(chunk: list[Call]) -> Future[Any]:
        divert = Divert(ctx.services.object_url)
        try:
            spec = encode_chunk(shared_file, chunk, divert)
        except TaskPicklingError as exc:
            return failed(exc)
        return ctx.enqueue(spec, payload_id, chunked=True, objects=divert.objects, sizer=sizer)

    return make


class ChunkSubmitter:
    """Submits one map() chunk as a task of the executor (held by a weakref, as the stdlib's
    map iterator does: a live iterator does not keep a dropped executor alive)."""

    def __init__(self, executor: AzureBatchExecutor, payload_id: int,
                 sizer: ChunkSizer | None = None) -> None:
        self.executor_ref = weakref.ref(executor)
        self.payload_id = payload_id
        self.sizer = sizer
        self.shared_file = executor._ctx.services.layout.shared_file(payload_id)

    def __call__(self, chunk: list[Call]) -> Future[Any]:
        executor = self.executor_ref()
        if executor is None:
            raise RuntimeError("cannot schedule new futures after the executor was collected")
        divert = Divert(executor._ctx.services.object_url)
        try:
            spec = encode_chunk(self.shared_file, chunk, divert)
        except TaskPicklingError as exc:
            return failed(exc)
        return executor._enqueue(spec, self.payload_id, chunked=True, objects=divert.objects,
                                 sizer=self.sizer)

    def interrupted(self, exc: BaseException) -> None:
        executor = self.executor_ref()
        if executor is not None:
            executor._interrupted(exc)


def result_iterator(futures: collections.deque[Future[Any]], end_time: float | None,
                     chunks: Iterator[list[Call]] | None, submit: ChunkSubmitter
                     ) -> Iterator[Any]:
    """Yield the results of chunk futures in order, as Executor.map does: with `chunks`, one
    more chunk is submitted each time one is consumed (`buffersize`). Nothing here refers to
    a value once it is yielded. An interrupt (KeyboardInterrupt, SystemExit) terminates the
    executor's work; any other way out cancels the futures not consumed."""
    try:
        futures.reverse()
        while futures:
            if chunks is not None:
                chunk = next(chunks, None)
                if chunk is not None:
                    futures.appendleft(submit(chunk))
            yield from _values(result_or_cancel(futures.pop(), end_time))
    except BaseException as exc:
        if not isinstance(exc, (Exception, GeneratorExit)):
            submit.interrupted(exc)
        raise
    finally:
        for future in futures:
            future.cancel()


def stream_results(stream: MapStream, end_time: float | None,
                   interrupted: Callable[[BaseException], None]) -> Iterator[Any]:
    """Yield an auto-chunked map()'s results in order, as `mapping.result_iterator` does
    for fixed chunks: its first error raised, no reference kept to a yielded value, an
    interrupt ends the executor's work, any other way out cancels the rest."""
    try:
        while True:
            future = stream.next_future(end_time)
            if future is None:
                return
            pairs = result_or_cancel(future, end_time)
            del future
            yield from _values(pairs)
    except BaseException as exc:
        if not isinstance(exc, (Exception, GeneratorExit)):
            interrupted(exc)
        raise
    finally:
        stream.close()


def _values(pairs: list[tuple[bool, Any]]) -> Iterator[Any]:
    """A chunk's (ok, value) pairs as values, in order, its first error raised; each pair
    is dropped from the list before its value is yielded (no reference kept)."""
    pairs.reverse()
    while pairs:
        if not pairs[-1][0]:
            raise pairs.pop()[1]
        yield pairs.pop()[1]


def result_or_cancel(future: Future[Any], end_time: float | None) -> Any:
    try:
        try:
            return future.result(None if end_time is None else end_time - time.monotonic())
        finally:
            future.cancel()
    finally:
        del future
