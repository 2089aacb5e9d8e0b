"""The infrastructure fault table: one row per way the services around a task can fail.

Each row is one line: a fault armed on one of two proxies (`blob(...)`: in front of
Azurite, for the client's and the nodes' Blob requests; `batch(...)`: in front of the
Batch emulator, for the client's Batch requests), a workload, and what must come of it
(`OK`: every result, right; `fails(type, pattern)`: every future fails so, its message
naming the cause). Every row then checks that every future resolved within a deadline,
each exactly once, that the fault was met, and that the Batch job holds exactly one task
per submission. Blob names: the client uploads `iter_<i>_inputs.pickle` (a task spec over
6 KB) and `shared_<id>.pickle` (a map's function) and downloads `iter_<i>_outputs.pickle`;
the nodes download the first two (resource files) and upload the third (an output file).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from infra_faults_kit import (
    Gate,
    after_gate,
    digest,
    job_task_ids,
    job_tasks_completed,
    running_on,
    square,
    wait_until,
)

from azure_batch_executor import TaskFailedError

TIMEOUT = 60.0
INPUTS, OUTPUTS, SHARED = "_inputs.pickle", "_outputs.pickle", "/shared_"
FIRST_OUTPUTS = "/iter_0_outputs.pickle"  # the first task's outputs.pickle alone


@dataclass
class Ctx:
    make: Callable[..., Any]
    stack: Any
    blob: Any  # StorageProxy in front of Azurite
    batch: Any  # StorageProxy in front of the Batch emulator
    gate: Gate


@dataclass
class Work:
    """What a workload submitted: its executor, one future per submission (map: per call),
    the values they must return when nothing fails, and the number of Batch tasks."""

    ex: Any
    futures: list[Future[Any]]
    expected: list[Any]
    tasks: int
    values: Iterator[Any] | None = None  # map()'s iterator, if a map
    calls: list[int] = field(default_factory=list)  # done-callback calls per future

    def __post_init__(self) -> None:
        self.calls = [0] * len(self.futures)
        for i, f in enumerate(self.futures):
            f.add_done_callback(lambda _, i=i: self.calls.__setitem__(i, self.calls[i] + 1))


# ------------------------------------------------------------------ faults
def blob(kind: str, method: str, path: str, count: int = 3, **kw: Any) -> Callable[[Ctx], Any]:
    """A fault on the Blob proxy (client and nodes)."""
    return lambda c: c.blob.fault(kind, method, path, count=count, **kw)


ADD = "addtaskcollection"


def batch(kind: str, method: str, path: str, count: int = 1, **kw: Any
          ) -> Callable[[Ctx], Any]:
    """A fault on the Batch proxy (the client's Batch requests)."""
    kw.setdefault("code", {500: "OperationTimedOut", 503: "ServerBusy"}.get(
        kw.get("status", 500), "InternalError"))
    return lambda c: c.batch.fault(kind, method, path, count=count, **kw)


def deleting_blob(method: str, path: str) -> Callable[[Ctx], Any]:
    """The blob each matching request names is deleted from Azurite (directly) just before
    the request goes on: resource files whose blobs vanished under the job."""
    def arm(c: Ctx) -> Any:
        from azure.core.exceptions import ResourceNotFoundError
        from azure.storage.blob import BlobServiceClient

        def delete(target: str) -> None:
            _, container, name = unquote(urlsplit(target).path).lstrip("/").split("/", 2)
            with BlobServiceClient.from_connection_string(
                    c.stack.storage_connection_string) as service, \
                    contextlib.suppress(ResourceNotFoundError):  # a second download
                service.get_blob_client(container, name).delete_blob()

        return c.blob.fault("forward", method, path, count=99, before=delete)
    return arm


def add_held(kind: str, **kw: Any) -> Callable[[Ctx], Any]:
    """A fault on the first add-task-collection whose reply is held until every task of the
    job has completed: the retry (or the reply) comes after the tasks ended."""
    def arm(c: Ctx) -> Any:
        def all_completed(path: str) -> None:
            job_id = unquote(urlsplit(path).path).split("/")[2]
            wait_until(lambda: job_tasks_completed(c.stack, job_id),
                       f"the tasks of {job_id} to complete", TIMEOUT)

        return c.batch.fault(kind, "POST", ADD, count=1, after=all_completed, **kw)
    return arm


def no_fault(c: Ctx) -> None:
    return None


# ------------------------------------------------------------------ workloads
def big_inputs(c: Ctx, n: int = 3) -> Work:
    """Task specs over 6 KB: each goes as a blob, a resource file of its task."""
    ex = c.make()
    data = [os.urandom(8000) for _ in range(n)]
    return Work(ex, [ex.submit(digest, d) for d in data], [digest(d) for d in data], n)


def big_args(c: Ctx, n: int = 2) -> Work:
    """Arguments over 64 KB: each goes once as a blob, which the worker on the node
    downloads itself (no resource file)."""
    ex = c.make()
    data = [os.urandom(70_000) for _ in range(n)]
    return Work(ex, [ex.submit(digest, d) for d in data], [digest(d) for d in data], n)


def mapped(c: Ctx, n: int = 4) -> Work:
    """A map: its function goes once as a blob, a resource file of every task. The futures
    are its chunks' (one call each), seen through `_enqueue`; map()'s own iterator is
    checked too when nothing fails."""
    ex = c.make()
    chunks: list[Future[Any]] = []
    enqueue = ex._enqueue

    def capture(*args: Any, **kwargs: Any) -> Future[Any]:
        chunks.append(enqueue(*args, **kwargs))
        return chunks[-1]

    ex._enqueue = capture
    values = ex.map(square, range(n), timeout=TIMEOUT, chunksize=1)  # all submitted now
    assert len(chunks) == n
    return Work(ex, [_one_call(f) for f in chunks], [i * i for i in range(n)], n, values)


def _one_call(chunk: Future[Any]) -> Future[Any]:
    """The future of a one-call chunk's call: its value, or its error."""
    out: Future[Any] = Future()

    def done(f: Future[Any]) -> None:
        exc = f.exception()
        if exc is not None:
            out.set_exception(exc)
            return
        [(ok, value)] = f.result()
        if ok:
            out.set_result(value)
        else:
            out.set_exception(value)

    chunk.add_done_callback(done)
    return out


def small(c: Ctx, n: int = 3) -> Work:
    ex = c.make()
    return Work(ex, [ex.submit(square, i) for i in range(n)], [i * i for i in range(n)], n)


def preempted_three_times(c: Ctx) -> Work:
    """One task, held by a gate; its node preempted while it runs, three times (Batch
    requeues it each time); then the gate opens."""
    ex = c.make(max_workers=1)
    work = Work(ex, [ex.submit(after_gate, c.gate.path, "survived")], ["survived"], 1)
    task_id = "task-000000"
    for requeues in range(3):
        node = wait_until(lambda r=requeues: running_on(c.stack, ex.job_id, task_id, r),
                          f"{task_id} to run after {requeues} requeue(s)", TIMEOUT)
        c.stack.emulator.preempt_node(ex.pool_id, node)
    wait_until(lambda: running_on(c.stack, ex.job_id, task_id, 3),
               f"{task_id} to run after 3 requeues", TIMEOUT)
    c.gate.open()
    assert work.futures[0].result(TIMEOUT) == "survived"
    wait_until(lambda: ex.usage().requeues == 3, "the usage to count the 3 requeues", 10)
    return work


# ------------------------------------------------------------------ expectations
OK = None
_CODES = {503: "ServerBusy", 500: "OperationTimedOut", 403: "AuthenticationFailed"}


def refuse(method: str, path: str, status: int, count: int = 3) -> Callable[[Ctx], Any]:
    """Blob's own error reply for the next `count` matching Blob requests."""
    return blob("status", method, path, count=count, status=status, code=_CODES[status])


def no_resource(code: str, blob_name: str) -> tuple[type[BaseException], str]:
    """The future fails naming the resource file's failure code, its blob and the likely
    cause."""
    return TaskFailedError, (rf"(?s)Batch failure {code}: .*{re.escape(blob_name)}.*"
                             r"Likely: a resource file could not be downloaded")


def no_upload(code: str) -> tuple[type[BaseException], str]:
    """The future fails naming the output upload's failure code, outputs.pickle's blob and
    the likely cause."""
    return TaskFailedError, (rf"(?s)Batch failure {code}: .*{re.escape(OUTPUTS)}.*"
                             r"Likely: outputs could not be uploaded")


DEL = "resource-blob-deleted"

# Known bugs: rows marked xfail (strict), with a reason saying where and why (none now).

# id, fault, workload, expectation[, known bug]: a new row is one line
ROWS: list[tuple[Any, ...]] = [
    # 1. Blob 500/503 a few times, then OK: the client's uploads (a spec over 6 KB, a map's
    #    function) and downloads (outputs.pickle)
    ("503-input-upload", refuse("PUT", INPUTS, 503), big_inputs, OK),
    ("500-input-upload", refuse("PUT", INPUTS, 500), big_inputs, OK),
    ("503-map-payload-upload", refuse("PUT", SHARED, 503), mapped, OK),
    ("500-map-payload-upload", refuse("PUT", SHARED, 500), mapped, OK),
    ("503-worker-upload", refuse("PUT", "/abx_worker.py", 503), small, OK),
    ("503-large-arg-upload", refuse("PUT", SHARED, 503), big_args, OK),
    ("503-output-download", refuse("GET", OUTPUTS, 503), small, OK),
    ("500-output-download", refuse("GET", OUTPUTS, 500), small, OK),
    # 2. connections reset mid-request / after the request / mid-response, then OK
    ("reset-mid-input-upload", blob("reset-request", "PUT", INPUTS), big_inputs, OK),
    ("reset-after-input-upload", blob("reset-after", "PUT", INPUTS), big_inputs, OK),
    ("reset-mid-map-payload-upload", blob("reset-request", "PUT", SHARED, 2), mapped, OK),
    ("reset-mid-output-download", blob("reset-response", "GET", OUTPUTS), small, OK),
    ("reset-mid-output-download-4x", blob("reset-response", "GET", FIRST_OUTPUTS, 4), small, OK),
    ("reset-before-output-download", blob("reset-request", "GET", OUTPUTS), small, OK),
    ("truncated-output-download-4x", blob("truncate-response", "GET", FIRST_OUTPUTS, 4), small,
     OK),
    ("reset-mid-large-arg-download", blob("reset-response", "GET", SHARED, 2), big_args, OK),
    ("truncated-large-arg-download", blob("truncate-response", "GET", SHARED, 1), big_args, OK),
    # 3. add-task-collection applied by Batch, its reply lost (an error / a reset): the
    #    retry meets TaskExists, which counts as accepted
    ("add-applied-then-500", batch("status-after", "POST", ADD, status=500), small, OK),
    ("add-applied-then-503-twice", batch("status-after", "POST", ADD, 2, status=503), small, OK),
    ("add-applied-then-reset", batch("reset-after", "POST", ADD), small, OK),
    ("add-applied-tasks-done-then-500", add_held("status-after", status=500), small, OK),
    ("add-reply-after-tasks-done", add_held("forward"), small, OK),
    # 4. a resource file the node cannot download: a pre-processing failure (UserError)
    (DEL, deleting_blob("GET", INPUTS), big_inputs, no_resource("BlobNotFound", INPUTS)),
    ("resource-sas-refused", refuse("GET", INPUTS, 403, 99), big_inputs,
     no_resource("BlobAccessDenied", INPUTS)),
    ("map-payload-sas-refused", refuse("GET", SHARED, 403, 99), mapped,
     no_resource("BlobAccessDenied", "shared_")),
    # 5. the node cannot upload outputs.pickle: the future fails (never hangs), naming it
    ("output-upload-refused", refuse("PUT", OUTPUTS, 403, 99), small,
     no_upload("FileUploadAccessDenied")),
    ("output-upload-500", refuse("PUT", OUTPUTS, 500, 99), small, no_upload("FileUploadMiscError")),
    ("output-upload-reset", blob("reset-request", "PUT", OUTPUTS, 99), small,
     no_upload("FileUploadMiscError")),
    # 6. the same task preempted three times: requeued, resolved once, requeues counted
    ("preempted-3-times", no_fault, preempted_three_times, OK),
]


def _param(row: tuple[Any, ...]) -> Any:
    name, arm, workload, expect, *bug = row
    marks = [pytest.mark.xfail(strict=True, reason=reason) for reason in bug]
    return pytest.param(arm, workload, expect, id=name, marks=marks)


@pytest.mark.parametrize(("arm", "workload", "expect"), [_param(r) for r in ROWS])
def test_infrastructure_fault(arm, workload, expect, make_proxied_executor, local_stack,
                              blob_proxy, batch_proxy, tmp_path) -> None:
    gate = Gate(tmp_path)
    try:
        c = Ctx(make_proxied_executor, local_stack, blob_proxy, batch_proxy, gate)
        armed = arm(c)
        work = workload(c)

        _, not_done = wait(work.futures, TIMEOUT)  # never hangs: a deadline on every row
        assert not not_done, f"{len(not_done)} future(s) never resolved"
        errors = [f.exception(0) for f in work.futures]
        if expect is OK:
            assert errors == [None] * len(errors), errors
            assert [f.result(0) for f in work.futures] == work.expected
            if work.values is not None:
                assert list(work.values) == work.expected
        else:
            exc_type, pattern = expect
            for exc in errors:
                assert isinstance(exc, exc_type), repr(exc)
                assert re.search(pattern, str(exc)), str(exc)
        assert work.calls == [1] * len(work.futures), work.calls  # each resolved once
        if armed is not None:
            assert armed.hits >= 1, "the fault was never met: the row tests nothing"
            if expect is OK:
                assert armed.remaining == 0, f"{armed.remaining} fault(s) left unmet"
        ids = job_task_ids(local_stack, work.ex.job_id)
        assert len(ids) == work.tasks, ids  # one Batch task per submission, no duplicate
        assert sorted(ids) == [f"task-{i:06d}" for i in range(work.tasks)], ids
    finally:
        gate.open()
