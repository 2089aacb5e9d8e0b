"""The executor's logic against in-process fakes: dispatch, retries, bounds, polling cost,
breakage, and secrets. The real SDK models are used; tasks really run the worker."""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Future
from concurrent.futures._base import PENDING

import pytest
from azure.core.exceptions import HttpResponseError
from support.batch_sdk_fake import BATCH_KEY, STORAGE_KEY, _now, http_error
from support.memory_store import MemoryBlobStore

from azure_batch_executor import BrokenBatchExecutor, TaskFailedError, TaskRejectedError
from azure_batch_executor.engine.lifecycle import WorkItem

TIMEOUT = 30.0


def mul(x, y):
    return x * y


def identity(x):
    return x


def exit_now():
    import os

    os._exit(5)


def wait_until(predicate, what, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    event = threading.Event()
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        event.wait(0.01)


def test_task_exists_on_add_counts_as_accepted(fakes, make_executor) -> None:
    ex = make_executor()
    fakes.client.exists_on_add.add("task-000000")
    assert ex.submit(mul, 6, 7).result(TIMEOUT) == 42


def test_server_error_entries_are_added_again(fakes, make_executor) -> None:
    ex = make_executor()
    fakes.client.server_error_once.update({"task-000000", "task-000001"})
    fs = [ex.submit(mul, i, 2) for i in range(3)]
    assert [f.result(TIMEOUT) for f in fs] == [0, 2, 4]
    assert fakes.client.calls["add"] >= 2


def test_transient_http_errors_on_add_are_retried(fakes, make_executor) -> None:
    ex = make_executor()
    fakes.client.add_errors.extend([http_error(HttpResponseError, 503, "ServerBusy"),
                                    http_error(HttpResponseError, 500, "InternalError")])
    assert ex.submit(mul, 2, 2).result(TIMEOUT) == 4
    assert ex.request_counts()["batch.add"] >= 3


def test_client_error_on_add_fails_only_that_future(fakes, make_executor) -> None:
    ex = make_executor()
    fakes.client.add_errors.append(http_error(HttpResponseError, 400, "InvalidPropertyValue"))
    bad = ex.submit(mul, 1, 1)
    assert isinstance(bad.exception(TIMEOUT), TaskRejectedError)
    assert ex.submit(mul, 2, 3).result(TIMEOUT) == 6


def test_body_too_large_halves_the_collection(fakes, make_executor) -> None:
    ex = make_executor()
    items = [WorkItem(Future(), 900 + i, b"", task_id=f"task-x{i}") for i in range(4)]
    bodies = [(item, json.dumps({"id": item.task_id, "commandLine": "true",
                                 "resourceFiles": [], "outputFiles": []})) for item in items]
    fakes.client.add_errors.append(http_error(HttpResponseError, 413, "RequestBodyTooLarge"))
    results = ex._manager.dispatcher.add_group(bodies)
    assert [r.accepted for _, r in results] == [True] * 4
    assert fakes.client.calls["add"] == 3


def test_collections_hold_at_most_100_tasks(fakes, make_executor) -> None:
    fakes.slots = 8
    ex = make_executor(max_workers=1000)
    fakes.client.in_process = True
    fakes.client.hold.clear()
    for i in range(250):
        ex.submit(identity, i)
    wait_until(lambda: len(fakes.client.tasks[ex.job_id]) == 250, "all tasks accepted")
    assert fakes.client.calls["add"] >= 3  # the fake asserts <= 100 per call
    fakes.client.hold.set()
    ex.shutdown(wait=False, cancel_futures=True)


def test_queue_depth_zero_adds_a_task_only_for_a_free_worker(fakes, make_executor) -> None:
    ex = make_executor(max_workers=2, queue_depth=0)
    fakes.client.hold.clear()
    fs = [ex.submit(identity, i) for i in range(5)]
    wait_until(lambda: len(fakes.client.tasks[ex.job_id]) == 2, "two tasks accepted")
    assert [f._state for f in fs] == [PENDING] * 5  # none seen running yet: all cancellable
    assert fs[4].cancel()
    fakes.client.hold.set()
    assert [f.result(TIMEOUT) for f in fs[:4]] == [0, 1, 2, 3]
    assert fs[4].cancelled()
    assert len(fakes.client.tasks[ex.job_id]) == 4


def test_tasks_are_queued_ahead_and_a_queued_one_can_be_cancelled(fakes, make_executor
                                                                  ) -> None:
    ex = make_executor(max_workers=2, queue_depth=2)
    fakes.client.hold.clear()  # nothing starts
    fs = [ex.submit(identity, i) for i in range(6)]
    wait_until(lambda: len(fakes.client.tasks[ex.job_id]) == 4, "four tasks added")
    assert fakes.client.jobs[ex.job_id]["maxParallelTasks"] == 2  # Batch bounds the running
    assert not any(f.running() for f in fs)  # queued at Batch is not running
    task_id = ex._ctx.services.layout.task_id(3)
    assert fs[3].cancel()  # queued at Batch, not started: cancellable
    wait_until(lambda: task_id in fakes.client.terminated, "the queued task terminated")
    fakes.client.hold.set()
    assert [f.result(TIMEOUT) for f in fs[:3] + fs[4:]] == [0, 1, 2, 4, 5]
    assert fs[3].cancelled()
    assert len(fakes.client.tasks[ex.job_id]) == 6  # the 5th and 6th went in its place


def test_idle_poll_costs_one_request_however_many_tasks(fakes, make_executor) -> None:
    fakes.slots = 2
    ex = make_executor(max_workers=300, poll_interval=0.02)
    fakes.client.in_process = True
    fakes.client.hold.clear()
    fs = [ex.submit(identity, i) for i in range(300)]
    wait_until(lambda: len(fakes.client.tasks[ex.job_id]) == 300
               and not ex._manager.table.adding, "all tasks accepted")
    before, ticks = ex.request_counts(), ex._manager.watcher.ticks
    wait_until(lambda: ex._manager.watcher.ticks >= ticks + 20, "20 idle polls")
    after, ticks_after = ex.request_counts(), ex._manager.watcher.ticks
    spent = sum(after.values()) - sum(before.values()) - (ticks_after - ticks)
    per_tick = spent / (ticks_after - ticks)
    assert per_tick <= 1.2, (before, after)
    fakes.client.hold.set()
    assert sorted(f.result(TIMEOUT) for f in fs) == list(range(300))


def test_each_future_resolves_once(fakes, make_executor) -> None:
    ex = make_executor(max_workers=20)
    calls: list[Future] = []
    fs = [ex.submit(identity, i) for i in range(20)]
    for f in fs:
        f.add_done_callback(calls.append)
    assert [f.result(TIMEOUT) for f in fs] == list(range(20))
    ex.shutdown()
    assert len(calls) == 20


def test_job_gone_breaks_every_pending_future(fakes, make_executor) -> None:
    ex = make_executor(max_workers=1)
    fakes.client.hold.clear()
    running = ex.submit(identity, 1)
    queued = ex.submit(identity, 2)
    wait_until(lambda: ex._manager.table.in_flight() == 2, "both tasks accepted")
    fakes.client.job_gone = True
    for f in (running, queued):
        exc = f.exception(TIMEOUT)
        assert isinstance(exc, BrokenBatchExecutor), exc
        assert "JobNotFound" in str(exc) and exc.__cause__ is not None
    with pytest.raises(BrokenBatchExecutor):
        ex.submit(identity, 3)
    fakes.client.hold.set()


def test_map_uploads_the_function_once_and_small_inputs_inline(fakes, make_executor) -> None:
    ex = make_executor()
    assert list(ex.map(mul, range(12), range(12), timeout=TIMEOUT, chunksize=1)) == [
        i * i for i in range(12)]
    blobs = fakes.store.blobs
    assert len([b for b in blobs if "shared_" in b]) == 1
    assert not [b for b in blobs if b.endswith("_inputs.pickle")]
    assert len([b for b in blobs if b.endswith("_outputs.pickle")]) == 12


def test_large_inputs_travel_as_blobs(fakes, make_executor) -> None:
    ex = make_executor()
    assert ex.submit(len, b"x" * 20_000).result(TIMEOUT) == 20_000
    assert ex.submit(len, b"x" * 10).result(TIMEOUT) == 10
    inputs = [b for b in fakes.store.blobs if b.endswith("_inputs.pickle")]
    assert inputs == [f"{ex.job_id}/iter_0_inputs.pickle"]


def test_chunksize_packs_calls_into_one_task(fakes, make_executor) -> None:
    ex = make_executor()
    got = list(ex.map(mul, range(10), range(10), chunksize=4, timeout=TIMEOUT))
    assert got == [i * i for i in range(10)]
    assert len(fakes.client.tasks[ex.job_id]) == 3


def test_map_timeout_and_bad_chunksize(fakes, make_executor) -> None:
    ex = make_executor()
    with pytest.raises(ValueError, match="chunksize"):
        ex.map(mul, [1], [1], chunksize=0)
    fakes.client.hold.clear()
    it = ex.map(identity, [1, 2], timeout=0.05)
    with pytest.raises(TimeoutError):
        next(it)
    fakes.client.hold.set()


def test_existing_pool_is_used_as_it_is(fakes, make_executor, caplog) -> None:
    fakes.pool_exists = True
    caplog.set_level(logging.INFO)
    ex = make_executor()
    assert "used as it is, its settings were not changed" in caplog.text
    assert ex.max_workers == 6  # 3 nodes x 2 slots of the existing pool
    assert fakes.client.calls["create_pool"] == 0


def test_new_pool_and_job_bodies(fakes, make_executor) -> None:
    ex = make_executor(dedicated_nodes=2, spot_nodes=3, task_slots_per_node=4,
                       container_image="reg.azurecr.io/img:v1", max_task_retries=2)
    pool = fakes.client.pools["azure-batch-executor"]
    # on an account a created pool autoscales: the node counts are its most of each kind
    assert pool["enableAutoScale"] is True and "targetDedicatedNodes" not in pool
    assert "$TargetDedicatedNodes = min(2, $nodes);" in pool["autoScaleFormula"]
    assert "$TargetLowPriorityNodes = min(3, $nodes - $TargetDedicatedNodes);" \
        in pool["autoScaleFormula"]
    assert {"name": "created-by", "value": "azure-batch-executor"} in pool["metadata"]
    assert pool["taskSlotsPerNode"] == 4
    cc = pool["virtualMachineConfiguration"]["containerConfiguration"]
    assert cc["containerImageNames"] == ["reg.azurecr.io/img:v1"]
    assert ex.max_workers == 20
    job = fakes.client.jobs[ex.job_id]
    assert job["onAllTasksComplete"] == "noaction"
    assert job["constraints"]["maxTaskRetryCount"] == 2


def test_shutdown_deletes_the_job_and_deletes_the_pool_when_asked(fakes, make_executor):
    with make_executor(delete_pool_when_done=True) as ex:
        assert ex.submit(mul, 1, 1).result(TIMEOUT) == 1
    assert ex.job_id not in fakes.client.jobs  # its results are collected: one request
    assert (fakes.client.calls["delete_job"], fakes.client.calls["terminate_job"]) == (1, 0)
    assert fakes.client.calls["delete_pool"] == 1
    assert not ex._manager.is_alive()


def test_keep_job_keeps_it_terminated(fakes, make_executor):
    with make_executor(keep_job=True) as ex:
        assert ex.submit(mul, 1, 1).result(TIMEOUT) == 1
    assert fakes.client.jobs[ex.job_id]["state"] == "completed"
    assert (fakes.client.calls["delete_job"], fakes.client.calls["terminate_job"]) == (0, 1)


def test_submit_never_waits_on_the_network(fakes, make_executor) -> None:
    """Every submit() returns while the first collection add is still blocked in the network:
    had submit() waited for it, the add would have timed out and returned before the loop
    ended. (Its speed is a benchmark, P6 in benchmarks/README.md, not a test.)"""
    ex = make_executor(max_workers=2000)
    fakes.client.in_process = True
    entered, release, returned = threading.Event(), threading.Event(), threading.Event()
    real_add = fakes.client.send_request

    def slow_add(request, **kw):
        entered.set()
        release.wait(TIMEOUT)
        returned.set()
        return real_add(request, **kw)

    fakes.client.send_request = slow_add  # type: ignore[method-assign]
    fs = [ex.submit(mul, 0, 1)]
    assert entered.wait(TIMEOUT)
    fs += [ex.submit(mul, i, 1) for i in range(1, 300)]
    assert not returned.is_set()
    assert not any(f.done() for f in fs)
    release.set()
    assert [f.result(TIMEOUT) for f in fs[:3]] == [0, 1, 2]


def test_secrets_never_in_logs_reprs_or_errors(fakes, make_executor, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    ex = make_executor()
    failed = ex.submit(exit_now).exception(TIMEOUT)
    assert isinstance(failed, TaskFailedError) and "exit code 5" in str(failed)
    fakes.client.add_errors.append(http_error(HttpResponseError, 400, "InvalidPropertyValue"))
    rejected = ex.submit(mul, 1, 1).exception(TIMEOUT)
    texts = [caplog.text, repr(ex), repr(ex.settings), str(failed), repr(failed),
             str(rejected), repr(fakes.store)]
    for text in texts:
        for secret in (MemoryBlobStore.SECRET_SIG, BATCH_KEY, STORAGE_KEY):
            assert secret not in text


def test_future_cancelled_during_its_add_gets_its_task_terminated(fakes, make_executor) -> None:
    ex = make_executor()
    fakes.client.hold.clear()  # tasks never start: only terminate_task can end them
    entered, release = threading.Event(), threading.Event()
    real_add = fakes.client.send_request

    def slow_add(request, **kw):
        entered.set()
        release.wait(TIMEOUT)
        return real_add(request, **kw)

    fakes.client.send_request = slow_add  # type: ignore[method-assign]
    try:
        future = ex.submit(mul, 2, 3)
        assert entered.wait(TIMEOUT)
        assert future.cancel()  # still PENDING: Batch has not answered yet
        release.set()
        wait_until(lambda: fakes.client.terminated == ["task-000000"], "terminate_task")
    finally:
        release.set()
        fakes.client.hold.set()


def test_terminate_fails_the_tasks_in_flight_and_cancels_the_rest(fakes, make_executor) -> None:
    from azure_batch_executor import TaskTerminatedError

    ex = make_executor(max_workers=2, queue_depth=2)
    fakes.client.hold.clear()  # accepted, never started
    try:
        fs = [ex.submit(mul, i, 1) for i in range(6)]
        wait_until(lambda: len(fakes.client.tasks[ex.job_id]) == 4, "the adds")
        wait_until(lambda: not ex._manager.table.adding, "the add replies")
        fakes.client.tasks[ex.job_id]["task-000000"].update(state="running", time=_now())
        wait_until(fs[0].running, "the running task seen")
        ex.terminate(wait=True)
        assert all(f.done() for f in fs)
        # queued at Batch (never started) or never added: cancelled; running: terminated
        assert all(f.cancelled() for f in fs[1:])
        with pytest.raises(TaskTerminatedError):
            fs[0].result()
        # one request for the job ("Job - Terminate": its running tasks are terminated, its
        # active ones never scheduled), none per task; the job is kept, terminated
        assert fakes.client.calls["terminate_task"] == 0 and fakes.client.terminated == []
        assert fakes.client.calls["terminate_job"] == 1
        assert fakes.client.calls["delete_job"] == 0
        with pytest.raises(RuntimeError):
            ex.submit(mul, 1, 1)
    finally:
        fakes.client.hold.set()


def test_the_plain_task_format_is_the_builders_text(fakes, make_executor) -> None:
    """A task with an inline spec and nothing shared is built from one format string; it is
    exactly the text the task-definition builder makes for it, braces and all."""
    import base64

    from azure_batch_executor import constants as C
    from azure_batch_executor.cloud.taskdef import CALL_DISPLAY

    ex = make_executor()
    dispatcher, lay = ex._manager.dispatcher, ex._ctx.services.layout
    item = WorkItem(Future(), 1234, b"{spec}\x00%s{0}", task_id=lay.task_id(1234))
    b64 = base64.b64encode(item.spec).decode()
    expected = dispatcher.factory.body(
        item.task_id, [], [(C.WORKER_OUTPUTS_FILE, lay.outputs_blob(1234)), *lay.log_files(1234)],
        b64, display=CALL_DISPLAY)
    assert dispatcher.task_definition(item) == expected
    body = json.loads(expected)
    assert body["id"] == "task-001234"
    assert body["outputFiles"][0]["destination"]["container"]["path"].endswith(
        "iter_1234_outputs.pickle")
    assert body["environmentSettings"][0]["value"] == b64
