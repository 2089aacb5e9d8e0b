"""Scheduling (§8), job rules (§9), pools and the node runtime, with a fake runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from emulator_fakes import World

from azure_batch_executor.emulator import exceptions as exc
from azure_batch_executor.emulator.models.runtime import base_environment


def _placed(world: World) -> list[str]:
    return [spec.env["AZ_BATCH_TASK_ID"] for spec in world.runner.specs]


def test_higher_priority_job_first_then_creation_order(world: World) -> None:
    world.pool()  # one node, one slot
    world.job("low", priority=0)
    world.job("high", priority=10)
    world.task("l1", job_id="low")
    world.task("h1", job_id="high")
    world.task("h2", job_id="high")
    world.runner.auto = lambda spec: 0
    world.tick(6)
    assert _placed(world) == ["h1", "h2", "l1"]


def test_max_parallel_tasks(world: World) -> None:
    world.pool(dedicated=1, slots=4)
    world.job(maxParallelTasks=2)
    for i in range(4):
        world.task(f"t{i}")
    world.tick()
    assert len(world.runner.running()) == 2
    world.runner.finish(world.runner.running()[0])
    world.tick()
    assert len(world.runner.running()) == 2


def test_required_slots_and_never_fitting_task(world: World) -> None:
    world.pool(dedicated=1, slots=2)
    world.job()
    world.task("big", requiredSlots=3)  # > taskSlotsPerNode: stays active forever
    world.task("two", requiredSlots=2)
    world.task("one")
    world.tick()
    assert _placed(world) == ["two"]
    assert world.get("big").state == "active"
    counts = world.do("task_counts", "j1")
    assert counts["taskSlotCounts"]["running"] == 2 and counts["taskCounts"]["active"] == 2


@pytest.mark.parametrize("fill, expected_nodes", [("pack", 1), ("spread", 2)])
def test_node_fill_type(world: World, fill: str, expected_nodes: int) -> None:
    world.pool(dedicated=2, slots=2, taskSchedulingPolicy={"nodeFillType": fill})
    world.job()
    world.task("a")
    world.task("b")
    world.tick()
    assert len({spec.env["AZ_BATCH_NODE_ID"] for spec in world.runner.specs}) == expected_nodes


def test_zero_nodes_keep_tasks_active(world: World) -> None:
    world.pool(dedicated=0)
    world.job()
    world.task("t1")
    world.tick()
    assert world.get("t1").state == "active" and not world.runner.specs


def test_dependencies_wait_for_success(world: World) -> None:
    world.pool(dedicated=1, slots=2)
    world.job(usesTaskDependencies=True)
    world.task("a")
    world.task("b", dependsOn={"taskIds": ["a"]})
    world.tick()
    assert _placed(world) == ["a"]
    world.runner.finish(world.runner.running()[0], 0)
    world.tick()
    assert _placed(world) == ["a", "b"]


def test_depends_on_needs_job_flag(world: World) -> None:
    world.job(pool_id="nowhere")
    with pytest.raises(exc.TaskDependenciesNotSpecifiedOnJob):
        world.task("b", dependsOn={"taskIds": ["a"]})


def test_all_tasks_complete_trap_with_zero_tasks(world: World) -> None:
    world.job(onAllTasksComplete="terminatejob")
    with world.backend.op(wake=False):
        job = world.backend.job("j1")
        assert job.state == "completed" and job.terminate_reason == "AllTasksComplete"
    with pytest.raises(exc.JobCompleted):
        world.task("t1")


def test_patch_to_terminatejob_after_adding_tasks(world: World) -> None:
    world.pool()
    world.job()
    world.task("t1")
    world.do("update_job", "j1", {"onAllTasksComplete": "terminatejob"})
    with pytest.raises(exc.InvalidPropertyValue):
        world.do("update_job", "j1", {"onAllTasksComplete": "noaction"})
    world.runner.auto = lambda spec: 0
    world.tick(4)
    with world.backend.op(wake=False):
        assert world.backend.job("j1").state == "completed"


def test_terminate_job_leaves_active_tasks_active(world: World) -> None:
    world.pool()
    world.job()
    world.task("run")
    world.task("wait")
    world.tick()
    world.do("terminate_job", "j1", None)
    with pytest.raises(exc.JobBeingTerminated):
        world.do("terminate_job", "j1", None)
    world.tick()
    assert world.get("run").failure["code"] == "TaskEnded"
    assert world.get("wait").state == "active"
    with world.backend.op(wake=False):
        job = world.backend.job("j1")
        assert job.state == "completed" and job.terminate_reason == "UserTerminate"
    with pytest.raises(exc.JobCompleted):
        world.task("late")
    with pytest.raises(exc.JobCompleted):
        world.do("terminate_job", "j1", None)


def test_job_action_terminate_on_failure(world: World) -> None:
    world.pool()
    world.job(onTaskFailure="performexitoptionsjobaction")
    world.runner.auto = lambda spec: 3
    world.task("t1", exitConditions={"exitCodes": [{"code": 3,
                                                    "exitOptions": {"jobAction": "terminate"}}]})
    world.tick(4)
    with world.backend.op(wake=False):
        job = world.backend.job("j1")
        assert job.state == "completed" and job.terminate_reason == "TaskFailed"


def test_job_action_needs_perform_exit_options(world: World) -> None:
    world.job(pool_id="nowhere")
    with pytest.raises(exc.InvalidPropertyValue):
        world.task("t1", exitConditions={"default": {"jobAction": "terminate"}})


def test_delete_job_kills_and_removes(world: World) -> None:
    world.pool()
    world.job()
    world.task("t1")
    world.tick()
    world.do("delete_job", "j1")
    with pytest.raises(exc.JobBeingDeleted):
        world.do("delete_job", "j1")
    world.tick()
    assert world.runner.terminated and not world.runner.running()
    with pytest.raises(exc.JobNotFound):
        world.do("job", "j1")


def test_ids_are_case_insensitive_and_validated(world: World) -> None:
    world.job("Job-1", pool_id="nowhere")
    with pytest.raises(exc.JobExists):
        world.job("job-1")
    with pytest.raises(exc.InvalidPropertyValue):
        world.job("bad id")
    world.task("T1", job_id="JOB-1")
    with pytest.raises(exc.TaskExists):
        world.task("t1", job_id="job-1")
    assert world.get("t1", "job-1").id == "T1"


def test_node_quota_gives_resize_error(world: World) -> None:
    world.pool(dedicated=3, targetLowPriorityNodes=3)  # quota 4
    with world.backend.op(wake=False):
        pool = world.backend.pool("p1")
        assert (pool.current(True), pool.current(False)) == (3, 1)
        assert pool.allocation_state == "steady"
        assert pool.resize_errors[0]["code"] == "AccountCoreQuotaReached"
        assert pool.target_dedicated == 3 and pool.target_low == 3


def test_slots_limit_names_the_option(world: World) -> None:
    with pytest.raises(exc.InvalidPropertyValue, match="--slots"):
        world.pool(slots=5)


def test_container_settings_must_match_pool(world: World) -> None:
    vm = {"imageReference": {"publisher": "p"}, "nodeAgentSKUId": "x",
          "containerConfiguration": {"type": "dockerCompatible"}}
    world.pool(slots=2, virtualMachineConfiguration=vm)
    world.job()
    with pytest.raises(exc.InvalidPropertyValue, match="containerSettings"):
        world.task("t1")
    world.task("t2", containerSettings={"imageName": "python:3.11"})
    world.job("j2", pool_id="later")
    world.task("t3", job_id="j2")  # pool unknown at add time: accepted
    world.do("update_job", "j2", {"poolInfo": {"poolId": "p1"}})
    world.tick()
    failure = world.get("t3", "j2").failure
    assert failure["code"] == "ContainerInvalidSettings"
    assert world.get("t3", "j2").exit_code is None


def test_start_task_gates_node(world: World) -> None:
    world.runner.auto = lambda spec: 1 if "startup" in str(spec.task_dir) else 0
    world.pool(startTask={"commandLine": "/bin/false", "waitForSuccess": True})
    world.tick()
    with world.backend.op(wake=False):
        node = next(iter(world.backend.pool("p1").nodes.values()))
        assert node.state == "starttaskfailed"
        assert node.start_task_info["result"] == "failure"
    world.job()
    world.task("t1")
    world.tick()
    assert world.get("t1").state == "active"


def test_task_environment_and_layout(world: World, tmp_path: Path) -> None:
    world.settings.base_env = {"PATH": "/usr/bin", "KEEP": "1", "OVER": "base"}
    world.pool()
    world.job(commonEnvironmentSettings=[{"name": "OVER", "value": "job"},
                                         {"name": "JOBONLY", "value": "j"}])
    world.task("t1", environmentSettings=[{"name": "OVER", "value": "task"},
                                          {"name": "AZ_BATCH_TASK_ID", "value": "spoof"}])
    world.tick()
    spec = world.runner.specs[0]
    env = spec.env
    node_root = Path(env["AZ_BATCH_NODE_ROOT_DIR"])
    assert node_root.is_relative_to(tmp_path)
    assert spec.task_dir == node_root / "workitems" / "j1" / "job-1" / "t1"
    wd = str(spec.task_dir / "wd")
    assert env["AZ_BATCH_TASK_WORKING_DIR"] == env["HOME"] == env["PWD"] == wd
    assert env["OVER"] == "task" and env["JOBONLY"] == "j" and env["KEEP"] == "1"
    assert env["AZ_BATCH_TASK_ID"] == "t1" and env["AZ_BATCH_JOB_ID"] == "j1"
    assert env["AZ_BATCH_NODE_IS_DEDICATED"] == "true"
    assert env["AZ_BATCH_TASK_USER_IDENTITY"] == "PoolNonAdmin"
    assert env["PATH"] == f"/usr/bin:{env['AZ_BATCH_NODE_SHARED_DIR']}:{wd}"


def test_low_priority_nodes(world: World) -> None:
    world.pool(dedicated=0, targetLowPriorityNodes=1)
    world.job()
    world.task("t1")
    world.tick()
    assert world.runner.specs[0].env["AZ_BATCH_NODE_IS_DEDICATED"] == "false"
    with world.backend.op(wake=False):
        counts = world.backend.pool("p1").node_counts()
    assert counts["lowPriority"]["running"] == 1 and counts["dedicated"]["total"] == 0


def test_base_environment_drops_client_paths() -> None:
    env = base_environment(["/opt/py/bin"], {"PATH": "/usr/bin:/opt/py/bin",
                                             "PYTHONPATH": "/client/src", "X": "1"})
    assert "PYTHONPATH" not in env and env["X"] == "1"
    assert env["PATH"] == "/opt/py/bin:/usr/bin"
