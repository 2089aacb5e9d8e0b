"""Node lifecycle and job preparation/release rules, by hand (fake runner, no processes).

The SDK tests (`test_emu_sdk_nodes.py`, `test_emu_sdk_jobprep.py`) show the wire; these
pin the interleavings that are hard to provoke through it: reboots and preemptions in
the middle of a preparation, terminate and delete of waiting tasks, slots and
`maxParallelTasks` of `preparing` tasks, release tasks waiting for the job's processes.
"""

from __future__ import annotations

from typing import Any

import pytest
from emulator_fakes import World

from azure_batch_executor.emulator import exceptions as exc

PREP = {"jobPreparationTask": {"commandLine": "prep"}}
PREP_RELEASE = {**PREP, "jobReleaseTask": {"commandLine": "release"}}


def _runs(world: World, kind: str) -> list[str]:
    """Pending fake-runner runs of a kind: "prep", "release", "start" or "task"."""
    out = []
    for run_id, (spec, _) in world.runner.pending.items():
        name = spec.task_dir.name
        found = ("prep" if name == "jobpreparation" else "release" if name == "jobrelease"
                 else "start" if name == "startup" else "task")
        if found == kind:
            out.append(run_id)
    return out


def _node(world: World, pool_id: str = "p1", index: int = 0) -> Any:
    with world.backend.op(wake=False):
        return list(world.backend.pool(pool_id).nodes.values())[index]


def _rec(world: World, job_id: str = "j1", index: int = 0) -> Any:
    with world.backend.op(wake=False):
        return list(world.backend.job(job_id).preps.values())[index]


def test_nodes_spend_the_allocation_delay_in_starting(make_world: Any) -> None:
    world = make_world(allocation_delay=30.0)
    world.pool()
    assert _node(world).state == "starting"  # the boot takes 30 s: not idle after ticks
    with world.backend.op(wake=False):
        deadline = world.backend.next_deadline()
    assert deadline is not None and deadline > world.backend.now() + 25


def test_preparing_tasks_hold_slots_and_count_for_max_parallel(world: World) -> None:
    world.pool(slots=4)
    world.job(maxParallelTasks=2, **PREP)
    for i in range(3):
        world.task(f"t{i}")
    world.tick()
    assert [world.get(f"t{i}").state for i in range(3)] == ["preparing", "preparing", "active"]
    assert _node(world).slots_used == 2 and _node(world).state == "running"
    assert len(_runs(world, "prep")) == 1  # once per node, however many tasks wait
    world.runner.finish(_runs(world, "prep")[0], 0)
    world.tick()
    assert [world.get(f"t{i}").state for i in range(3)] == ["running", "running", "active"]
    spec = world.runner.specs[-1]
    assert spec.env["AZ_BATCH_JOB_PREP_DIR"].endswith("/workitems/j1/job-1/jobpreparation")


def test_terminating_or_deleting_a_preparing_task_frees_its_slots(world: World) -> None:
    world.pool(slots=2)
    world.job(**PREP)
    world.task("t1")
    world.task("t2")
    world.tick()
    world.do("terminate_task_api", "j1", "t1")
    world.do("delete_task", "j1", "t2")
    assert world.get("t1").state == "completed"
    assert world.get("t1").failure["code"] == "TaskEnded"
    assert _node(world).slots_used == 0 and _node(world).state == "idle"


def test_retries_then_failure_send_waiting_tasks_back_and_bar_the_node(world: World) -> None:
    world.pool()
    world.job(jobPreparationTask={"commandLine": "prep",
                                  "constraints": {"maxTaskRetryCount": 2}})
    world.task("t1")
    world.tick()
    for _ in range(3):
        world.runner.finish(_runs(world, "prep")[0], 5)
    world.tick()
    rec = _rec(world)
    assert rec.blocked and rec.prep["retryCount"] == 2 and rec.prep["exitCode"] == 5
    assert world.get("t1").state == "active" and world.get("t1").retry_count == 0
    assert _runs(world, "prep") == [] and _node(world).slots_used == 0
    world.job("j2")
    world.task("u1", "j2")
    world.tick()
    assert world.get("u1", "j2").state == "running"  # the node serves other jobs


def test_reboot_during_preparation_runs_it_again(world: World) -> None:
    world.pool()
    world.job(jobPreparationTask={"commandLine": "prep",
                                  "rerunOnNodeRebootAfterSuccess": False})
    world.task("t1")
    world.tick()
    first = _runs(world, "prep")[0]
    world.do("reboot_node", "p1", _node(world).id, None)
    assert world.get("t1").state == "active" and world.get("t1").requeue_count == 1
    world.tick()
    assert first not in world.runner.pending  # stopped
    assert len(_runs(world, "prep")) == 1 and _runs(world, "prep")[0] != first


def test_preemption_counts_as_a_reimage(world: World) -> None:
    world.pool(dedicated=0, targetLowPriorityNodes=1)
    world.job(**PREP)
    world.task("t1")
    world.tick()
    world.runner.finish(_runs(world, "prep")[0], 1)
    world.tick()
    assert _rec(world).blocked
    world.do("preempt_node", "p1", _node(world).id)
    world.tick()
    assert not _rec(world).blocked and len(_runs(world, "prep")) == 1


def test_release_waits_for_the_job_processes_and_the_job_for_it(world: World) -> None:
    world.pool()
    world.job(**PREP_RELEASE)
    world.task("t1")
    world.tick()
    world.runner.finish(_runs(world, "prep")[0], 0)
    world.tick()
    task_run = _runs(world, "task")[0]
    world.runner.auto = None
    world.runner.terminate = lambda run_id, reason: None  # type: ignore[method-assign]
    world.do("terminate_job", "j1", None)
    world.tick()
    assert _runs(world, "release") == []  # the task's process is still there
    world.runner.finish(task_run, 137)
    world.tick()
    assert len(_runs(world, "release")) == 1
    with world.backend.op(wake=False):
        assert world.backend.job("j1").state == "terminating"
        assert world.backend.next_deadline() is None  # no busy wait on the job's deadline
    world.runner.finish(_runs(world, "release")[0], 0)
    world.tick()
    with world.backend.op(wake=False):
        assert world.backend.job("j1").state == "completed"


def test_release_skips_nodes_that_left_and_failed_preparations(world: World) -> None:
    world.pool(dedicated=2)
    world.job(jobPreparationTask={"commandLine": "prep"}, jobReleaseTask={"commandLine": "r"})
    world.task("t1")
    world.task("t2")
    world.tick()
    ok, bad = _runs(world, "prep")
    world.runner.finish(ok, 0)
    world.runner.finish(bad, 1)
    world.tick()
    world.do("resize_pool", "p1", {"targetDedicatedNodes": 0})
    world.tick()
    world.do("terminate_job", "j1", None)
    world.tick()
    assert _runs(world, "release") == []
    with world.backend.op(wake=False):
        assert world.backend.job("j1").state == "completed"


def test_job_checks(world: World) -> None:
    world.pool()
    with pytest.raises(exc.BatchError) as bad_id:
        world.job(jobPreparationTask={"id": "bad id", "commandLine": "x"})
    assert bad_id.value.code == "InvalidPropertyValue"
    with pytest.raises(exc.BatchError) as escape:
        world.job(jobPreparationTask={"commandLine": "x", "resourceFiles": [
            {"httpUrl": "http://h/f", "filePath": "../f"}]})
    assert escape.value.code == "InvalidPropertyValue"


@pytest.mark.parametrize("option, state, requeues", [
    ("requeue", "active", 1), ("terminate", "completed", 0), ("wait", "active", 0)])
def test_disabling_the_job_moves_preparing_tasks(world: World, option: str, state: str,
                                                 requeues: int) -> None:
    world.pool()
    world.job(**PREP)
    world.task("t1")
    world.tick()
    world.do("disable_job", "j1", option)
    assert world.get("t1").state == state and world.get("t1").requeue_count == requeues
    assert _node(world).slots_used == 0
    world.runner.finish(_runs(world, "prep")[0], 0)
    world.tick()
    assert world.get("t1").state == state  # the preparation's success starts nothing


def test_no_release_after_a_reimage_without_new_tasks(world: World) -> None:
    world.pool(dedicated=0, targetLowPriorityNodes=1)
    world.job(**PREP_RELEASE)
    world.task("t1")
    world.tick()
    world.runner.finish(_runs(world, "prep")[0], 0)
    world.tick()
    world.runner.finish(_runs(world, "task")[0], 0)
    world.tick()
    world.do("preempt_node", "p1", _node(world).id)
    world.tick()
    world.do("terminate_job", "j1", None)
    world.tick()
    assert _runs(world, "release") == []
    with world.backend.op(wake=False):
        assert world.backend.job("j1").state == "completed"
