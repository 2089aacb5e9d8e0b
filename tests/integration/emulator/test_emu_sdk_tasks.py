"""Tasks through the official SDK against real processes: states, retries, kills, requeues."""

from __future__ import annotations

import azure.batch.models as m
import pytest
from azure.batch import BatchClient
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from emu_sdk_kit import make_job, make_pool, wait_completed, wait_until

from azure_batch_executor.emulator import BatchEmulator

SLEEP = 'python3 -c "import time; time.sleep({})"'


def _task(task_id: str, command: str = "/bin/true", **kwargs: object) -> m.BatchTaskCreateOptions:
    return m.BatchTaskCreateOptions(id=task_id, command_line=command, **kwargs)


def test_task_success_shape(client: BatchClient) -> None:
    make_pool(client, "p1")
    make_job(client, "j1", "p1")
    command = "python3 -c \"import os; print(os.environ['AZ_BATCH_TASK_ID'])\""
    client.create_task("j1", _task("t1", command))
    task = wait_completed(client, "j1", "t1")
    info = task.execution_info
    assert info.exit_code == 0 and info.result == "success" and not info.failure_info
    assert info.start_time <= info.end_time and info.retry_count == 0
    assert task.previous_state == "running" and task.node_info.pool_id == "p1"
    assert task.node_info.task_root_directory == "workitems/j1/job-1/t1"
    assert task.constraints.retention_time.days == 7 and task.required_slots == 1
    assert task.user_identity.auto_user.scope == "pool"
    assert b"".join(client.download_task_file("j1", "t1", "stdout.txt")) == b"t1\n"
    counts = client.get_job_task_counts("j1").task_counts
    assert (counts.completed, counts.succeeded, counts.failed) == (1, 1, 0)


def test_retries_run_three_times(client: BatchClient) -> None:
    make_pool(client, "p1")
    make_job(client, "j1", "p1")
    client.create_task("j1", _task("t1", "/bin/sh -c 'echo run >> ../../../runs.txt; exit 3'",
                                   constraints=m.BatchTaskConstraints(max_task_retry_count=2)))
    task = wait_completed(client, "j1", "t1")
    info = task.execution_info
    assert info.retry_count == 2 and info.exit_code == 3 and info.result == "failure"
    assert info.failure_info.code == "FailureExitCode"
    assert info.failure_info.category == "usererror"
    runs = b"".join(client.download_node_file("p1", task.node_info.node_id,
                                              "workitems/j1/runs.txt"))
    assert runs.count(b"run") == 3


def test_wall_clock_kill(client: BatchClient) -> None:
    make_pool(client, "p1")
    make_job(client, "j1", "p1")
    client.create_task("j1", _task("t1", SLEEP.format(30), constraints=m.BatchTaskConstraints(
        max_wall_clock_time="PT0.5S", max_task_retry_count=3)))
    info = wait_completed(client, "j1", "t1", timeout=15).execution_info
    assert info.failure_info.code == "TaskEnded" and info.result == "failure"
    assert info.retry_count == 0


def test_collection_results_and_task_exists(client: BatchClient) -> None:
    make_job(client, "j1", "nowhere")
    client.create_task("j1", _task("dup"))
    result = client.create_task_collection("j1", m.BatchTaskGroup(
        task_values=[_task("a"), _task("dup"), _task("b")]))
    by_id = {r.task_id: r for r in result.result_values}
    assert by_id["a"].status == "success" and by_id["a"].etag and by_id["a"].location
    assert by_id["dup"].status == "clienterror" and by_id["dup"].error.code == "TaskExists"
    created = client.create_tasks("j1", [_task(f"x{i}") for i in range(150)] + [_task("dup")])
    assert len(created.result_values) == 151
    assert client.get_job_task_counts("j1").task_counts.active == 153


def test_collection_limits(client: BatchClient) -> None:
    make_job(client, "j1", "nowhere")
    with pytest.raises(HttpResponseError) as too_many:
        client.create_task_collection("j1", m.BatchTaskGroup(
            task_values=[_task(f"t{i}") for i in range(101)]))
    assert too_many.value.status_code == 400
    big = "x" * (11 * 1024)
    with pytest.raises(HttpResponseError) as too_large:
        client.create_task_collection("j1", m.BatchTaskGroup(
            task_values=[_task(f"t{i}", f"/bin/echo {big}") for i in range(100)]))
    assert too_large.value.status_code == 413
    assert too_large.value.error.code == "RequestBodyTooLarge"
    created = client.create_tasks("j1", [_task(f"t{i}", f"/bin/echo {big}") for i in range(100)])
    assert all(r.status == "success" for r in created.result_values)  # the helper halves chunks
    with pytest.raises(ResourceNotFoundError) as missing:
        client.create_task_collection("nope", m.BatchTaskGroup(task_values=[_task("a")]))
    assert missing.value.error.code == "JobNotFound"


def test_terminate_reactivate_replace_delete(client: BatchClient) -> None:
    make_pool(client, "p1")
    make_job(client, "j1", "p1")
    client.create_task("j1", _task("t1", SLEEP.format(30)))
    wait_until(lambda: client.get_task("j1", "t1").state == "running", what="running")
    client.replace_task("j1", "t1", m.BatchTask(constraints=m.BatchTaskConstraints(
        max_task_retry_count=1)))
    fetched = client.get_task("j1", "t1")
    assert fetched.constraints.max_task_retry_count == 1
    fetched.constraints.max_task_retry_count = 2
    client.replace_task("j1", "t1", fetched)  # a model read back from the service
    assert client.get_task("j1", "t1").constraints.max_task_retry_count == 2
    client.terminate_task("j1", "t1")
    task = client.get_task("j1", "t1")
    assert task.state == "completed" and task.execution_info.failure_info.code == "TaskEnded"
    with pytest.raises(ResourceExistsError) as info:
        client.terminate_task("j1", "t1")
    assert info.value.error.code == "TaskCompleted"
    client.reactivate_task("j1", "t1")
    assert client.get_task("j1", "t1").execution_info.retry_count == 0
    wait_until(lambda: client.get_task("j1", "t1").state == "running", what="rerun")
    client.delete_task("j1", "t1")
    with pytest.raises(ResourceNotFoundError) as gone:
        client.get_task("j1", "t1")
    assert gone.value.error.code == "TaskNotFound"


def test_reactivate_refuses_success(client: BatchClient) -> None:
    make_pool(client, "p1")
    make_job(client, "j1", "p1")
    client.create_task("j1", _task("t1"))
    wait_completed(client, "j1", "t1")
    with pytest.raises(ResourceExistsError) as info:
        client.reactivate_task("j1", "t1")
    assert info.value.error.code == "TaskSucceeded"
    assert list(client.list_subtasks("j1", "t1")) == []


def test_preempt_requeues_and_task_still_completes(client: BatchClient,
                                                   emulator: BatchEmulator) -> None:
    make_pool(client, "p1")
    make_job(client, "j1", "p1")
    client.create_task("j1", _task("t1", SLEEP.format(0.5)))
    running = wait_until(lambda: (t := client.get_task("j1", "t1")).state == "running" and t,
                         what="running")
    emulator.preempt_node("p1", running.node_info.node_id)
    assert client.get_node("p1", running.node_info.node_id).state in ("preempted", "starting",
                                                                      "idle")
    task = wait_completed(client, "j1", "t1")
    assert task.execution_info.result == "success"
    assert task.execution_info.requeue_count == 1 and task.execution_info.retry_count == 0


def test_kill_task_counts_as_a_failed_attempt(client: BatchClient,
                                              emulator: BatchEmulator) -> None:
    make_pool(client, "p1")
    make_job(client, "j1", "p1")
    client.create_task("j1", _task("t1", SLEEP.format(30)))
    wait_until(lambda: client.get_task("j1", "t1").state == "running", what="running")
    assert wait_until(lambda: emulator.kill_task("j1", "t1"), what="the kill to land")
    info = wait_completed(client, "j1", "t1").execution_info
    assert info.exit_code == 137 and info.result == "failure"
    assert emulator.kill_task("j1", "t1") is False


def test_resize_down_requeues_running_task(client: BatchClient) -> None:
    make_pool(client, "p1")
    make_job(client, "j1", "p1")
    client.create_task("j1", _task("t1", SLEEP.format(30)))
    wait_until(lambda: client.get_task("j1", "t1").state == "running", what="running")
    client.begin_resize_pool("p1", m.BatchPoolResizeOptions(target_dedicated_nodes=0),
                             polling_interval=0.1).result()
    task = client.get_task("j1", "t1")
    assert task.state == "active" and task.execution_info.requeue_count == 1


def test_job_terminate_keeps_active_tasks_active(client: BatchClient) -> None:
    make_pool(client, "p1")
    make_job(client, "j1", "p1")
    client.create_task("j1", _task("run", SLEEP.format(30)))
    wait_until(lambda: client.get_task("j1", "run").state == "running", what="running")
    client.create_task("j1", _task("wait"))
    client.begin_terminate_job("j1", {"terminateReason": "stop"}, polling_interval=0.1).result()
    assert client.get_task("j1", "run").execution_info.failure_info.code == "TaskEnded"
    assert client.get_task("j1", "wait").state == "active"


def test_task_filters_and_select(client: BatchClient) -> None:
    make_pool(client, "p1", slots=2)
    make_job(client, "j1", "p1")
    client.create_task_collection("j1", m.BatchTaskGroup(task_values=[
        _task("ok"), _task("bad", "/bin/false"), _task("other", "/bin/sh -c 'exit 2'")]))
    wait_until(lambda: client.get_job_task_counts("j1").task_counts.completed == 3,
               what="three completions")
    failed = list(client.list_tasks("j1", filter="state eq 'completed' and "
                                                 "executionInfo/result eq 'failure'",
                                    select=["id", "state", "executionInfo"]))
    assert sorted(t.id for t in failed) == ["bad", "other"]
    assert all(t.command_line is None and t.execution_info.exit_code for t in failed)
    nonzero = client.list_tasks("j1", filter="(executionInfo/exitCode lt 0) or "
                                             "(executionInfo/exitCode gt 0)",
                                select=["id", "executionInfo/exitCode"])
    assert sorted((t.id, t.execution_info.exit_code) for t in nonzero) == [("bad", 1),
                                                                          ("other", 2)]
    assert [t.id for t in client.list_tasks("j1", filter="id eq 'ok'")] == ["ok"]
    with pytest.raises(HttpResponseError) as info:
        list(client.list_tasks("j1", filter="state eq 'finished'"))
    assert info.value.error.code == "InvalidQueryParameterValue"
    single = client.get_task("j1", "ok", select=["id", "state"])
    assert single.id == "ok" and single.execution_info is None
