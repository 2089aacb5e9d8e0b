"""Task state machine (batch-api-subset.md §10) driven through the backend with a fake runner."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from emulator_fakes import World

from azure_batch_executor.emulator import exceptions as exc
from azure_batch_executor.emulator.models.base import IllegalTransition
from azure_batch_executor.emulator.runner import FailureInfo


def test_success_sets_exit_code_result_and_node_info(world: World) -> None:
    world.pool()
    world.job()
    world.runner.auto = lambda spec: 0
    world.task("t1")
    world.tick()
    doc = world.task_json("t1")
    assert doc["state"] == "completed"
    assert doc["previousState"] == "running"
    info = doc["executionInfo"]
    assert info["exitCode"] == 0 and info["result"] == "success"
    assert info["retryCount"] == 0 and info["requeueCount"] == 0
    assert "failureInfo" not in info
    assert doc["nodeInfo"]["taskRootDirectory"] == "workitems/j1/job-1/t1"


def test_new_task_is_active_with_zero_counts(world: World) -> None:
    world.job(pool_id="nowhere")
    world.task("t1")
    world.tick()
    doc = world.task_json("t1")
    assert doc["state"] == "active"
    assert doc["executionInfo"] == {"retryCount": 0, "requeueCount": 0}
    assert "previousState" not in doc and "nodeInfo" not in doc
    assert doc["constraints"]["maxTaskRetryCount"] == 0
    assert doc["constraints"]["retentionTime"] == "P7D"


def test_retries_run_max_retry_count_plus_one_times(world: World) -> None:
    world.pool()
    world.job()
    world.runner.auto = lambda spec: 1
    world.task("t1", constraints={"maxTaskRetryCount": 2})
    world.tick(6)
    assert len(world.runner.specs) == 3
    info = world.task_json("t1")["executionInfo"]
    assert info["retryCount"] == 2
    assert info["exitCode"] == 1 and info["result"] == "failure"
    assert info["failureInfo"]["code"] == "FailureExitCode"
    assert info["failureInfo"]["category"] == "usererror"
    assert "lastRetryTime" in info


def test_job_default_retry_count_applies(world: World) -> None:
    world.pool()
    world.job(constraints={"maxTaskRetryCount": 1})
    world.runner.auto = lambda spec: 2
    world.task("t1")
    world.tick(5)
    assert len(world.runner.specs) == 2


def test_preprocessing_failure_has_no_exit_code_and_is_not_retried(world: World) -> None:
    world.pool()
    world.job()
    world.task("t1", constraints={"maxTaskRetryCount": 3})
    world.tick()
    (run_id,) = world.runner.running()
    world.runner.finish(run_id, None, "preprocessing",
                        FailureInfo("usererror", "BlobNotFound", "missing"))
    world.tick()
    info = world.task_json("t1")["executionInfo"]
    assert "exitCode" not in info
    assert info["result"] == "failure" and info["failureInfo"]["code"] == "BlobNotFound"
    assert len(world.runner.specs) == 1


def test_upload_failure_keeps_exit_code_zero_but_fails(world: World) -> None:
    world.pool()
    world.job()
    world.task("t1", constraints={"maxTaskRetryCount": 3})
    world.tick()
    (run_id,) = world.runner.running()
    world.runner.finish(run_id, 0, "upload",
                        FailureInfo("usererror", "FileUploadContainerNotFound", "gone"))
    info = world.task_json("t1")["executionInfo"]
    assert info["exitCode"] == 0 and info["result"] == "failure"
    assert info["failureInfo"]["code"] == "FileUploadContainerNotFound"


def test_walltime_is_task_ended_and_not_retried(world: World) -> None:
    world.pool()
    world.job()
    world.task("t1", constraints={"maxWallClockTime": "PT1S", "maxTaskRetryCount": 2})
    world.tick()
    spec = world.runner.specs[0]
    assert spec.max_wall_clock_seconds == 1.0
    world.runner.finish(spec.run_id, 137, "walltime",
                        FailureInfo("usererror", "TaskEnded", "max wall clock time exceeded"))
    info = world.task_json("t1")["executionInfo"]
    assert info["exitCode"] == 137 and info["failureInfo"]["code"] == "TaskEnded"
    assert len(world.runner.specs) == 1


def test_terminate_running_then_again_is_task_completed(world: World) -> None:
    world.pool()
    world.job()
    world.task("t1")
    world.tick()
    world.do("terminate_task_api", "j1", "t1")
    assert world.runner.terminated == [(world.runner.specs[0].run_id, "terminated")]
    info = world.task_json("t1")["executionInfo"]
    assert info["failureInfo"]["code"] == "TaskEnded" and info["result"] == "failure"
    assert info["exitCode"] == 143  # the killed process's code arrives afterwards
    with pytest.raises(exc.TaskCompleted):
        world.do("terminate_task_api", "j1", "t1")


def test_terminate_active_task_has_no_exit_code(world: World) -> None:
    world.job(pool_id="nowhere")
    world.task("t1")
    world.do("terminate_task_api", "j1", "t1")
    info = world.task_json("t1")["executionInfo"]
    assert "exitCode" not in info and info["failureInfo"]["code"] == "TaskEnded"


def test_reactivate_rules(world: World) -> None:
    world.pool()
    world.job()
    world.runner.auto = lambda spec: 0 if spec.command_line == "/bin/true" else 5
    world.task("ok")
    world.task("bad", command="/bin/false", constraints={"maxTaskRetryCount": 1})
    world.task("waiting", job_id="j1")
    world.tick(6)
    with pytest.raises(exc.TaskSucceeded):
        world.do("reactivate_task", "j1", "ok")
    assert world.get("bad").retry_count == 1
    world.runner.auto = None
    world.do("reactivate_task", "j1", "bad")
    bad = world.get("bad")
    assert bad.state in ("active", "running") and bad.retry_count == 0
    assert bad.exit_code is None and bad.result is None
    with pytest.raises(exc.TaskNotCompleted):
        world.do("reactivate_task", "j1", "bad")


def test_resize_down_requeues_running_tasks(world: World) -> None:
    world.pool(dedicated=2)
    world.job()
    world.task("t1")
    world.task("t2")
    world.tick()
    assert len(world.runner.running()) == 2
    world.do("resize_pool", "p1", {"targetDedicatedNodes": 0})
    world.tick()
    for tid in ("t1", "t2"):
        task = world.get(tid)
        assert task.state == "active" and task.requeue_count == 1 and task.retry_count == 0
    assert sorted(r for _, r in world.runner.terminated) == ["requeued", "requeued"]
    with world.backend.op(wake=False):
        pool = world.backend.pool("p1")
        assert pool.allocation_state == "steady" and not pool.nodes


def test_resize_terminate_option_completes_tasks(world: World) -> None:
    world.pool()
    world.job()
    world.task("t1")
    world.tick()
    world.do("resize_pool", "p1", {"targetDedicatedNodes": 0,
                                   "nodeDeallocationOption": "terminate"})
    world.tick()
    assert world.get("t1").state == "completed"
    assert world.get("t1").failure["code"] == "TaskEnded"


def test_resize_taskcompletion_waits_for_running_tasks(world: World) -> None:
    world.pool()
    world.job()
    world.task("t1")
    world.tick()
    world.do("resize_pool", "p1", {"targetDedicatedNodes": 0,
                                   "nodeDeallocationOption": "taskcompletion"})
    world.tick()
    with world.backend.op(wake=False):
        assert world.backend.pool("p1").allocation_state == "resizing"
    world.runner.finish(world.runner.running()[0], 0)
    world.tick()
    assert world.get("t1").result == "success"
    with world.backend.op(wake=False):
        pool = world.backend.pool("p1")
        assert pool.allocation_state == "steady" and not pool.nodes


def test_pool_delete_requeues_and_pool_disappears(world: World) -> None:
    world.pool()
    world.job()
    world.task("t1")
    world.tick()
    world.do("delete_pool", "p1")
    with pytest.raises(exc.PoolBeingDeleted):
        world.do("resize_pool", "p1", {"targetDedicatedNodes": 1})
    world.tick()
    assert world.get("t1").state == "active" and world.get("t1").requeue_count == 1
    with pytest.raises(exc.PoolNotFound):
        world.do("pool", "p1")


def test_preempt_requeues_and_node_returns(world: World) -> None:
    world.pool()
    world.job()
    world.task("t1")
    world.tick()
    with world.backend.op(wake=False):
        node_id = next(iter(world.backend.pool("p1").nodes.values())).id
    world.do("preempt_node", "p1", node_id)
    task = world.get("t1")
    assert task.state == "active" and task.requeue_count == 1
    world.runner.auto = lambda spec: 0
    world.tick(5)
    assert world.get("t1").result == "success"
    with world.backend.op(wake=False):
        assert world.backend.pool("p1").nodes[node_id].state == "idle"


def test_preemption_count_switch(make_world: Callable[..., World]) -> None:
    world = make_world(requeue_counts_preemption=False)
    world.pool()
    world.job()
    world.task("t1")
    world.tick()
    with world.backend.op(wake=False):
        node_id = next(iter(world.backend.pool("p1").nodes.values())).id
    world.do("preempt_node", "p1", node_id)
    assert world.get("t1").requeue_count == 0


def test_transition_table_refuses_illegal_moves(world: World) -> None:
    world.job(pool_id="nowhere")
    task = world.task("t1")
    with pytest.raises(IllegalTransition):
        task.reactivate(0.0)  # active -> active is not in the table


@pytest.mark.parametrize("files, error", [
    ([{"httpUrl": "http://x/a", "storageContainerUrl": "http://x/c", "filePath": "a"}],
     exc.InvalidPropertyValue),
    ([{"filePath": "a"}], exc.InvalidPropertyValue),
    ([{"httpUrl": "http://x/a"}], exc.MissingRequiredProperty),
    ([{"httpUrl": "http://x/a", "filePath": "../escape"}], exc.InvalidPropertyValue),
    ([{"httpUrl": "http://x/a", "filePath": "/etc/passwd"}], exc.InvalidPropertyValue),
    ([{"httpUrl": "http://x/a", "filePath": "a", "blobPrefix": "p"}], exc.InvalidPropertyValue),
    ([{"httpUrl": "http://x/a", "filePath": "a", "fileMode": "rw"}], exc.InvalidPropertyValue),
    ([{"autoStorageContainerName": "c"}], exc.InvalidPropertyValue),
])
def test_resource_file_rules_at_add_time(world: World, files: list, error: type) -> None:
    world.job(pool_id="nowhere")
    with pytest.raises(error):
        world.task("t1", resourceFiles=files)


def test_valid_resource_files_reach_the_runner(world: World) -> None:
    world.pool()
    world.job()
    files = [{"httpUrl": "http://127.0.0.1:1/a?sig=x%2By", "filePath": "sub/in.pickle"},
             {"storageContainerUrl": "http://127.0.0.1:1/c?sig=1", "blobPrefix": "j1/"}]
    world.task("t1", resourceFiles=files)
    world.tick()
    assert world.runner.specs[0].resource_files == files  # URLs untouched
