"""Job preparation and release tasks through the official SDK.

A preparation task that must be seen running waits for a file the test creates in the
node's shared directory (`GATE`); every step is observed by polling the SDK.
"""

from __future__ import annotations

from typing import Any

import azure.batch.models as m
import pytest
from azure.batch import BatchClient
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from emu_sdk_kit import POLL, make_pool, wait_completed, wait_until

from azure_batch_executor.emulator import BatchEmulator

GATE = "/bin/sh -c 'while [ ! -e \"$AZ_BATCH_NODE_SHARED_DIR/go\" ]; do sleep 0.01; done'"
LOG = ("/bin/sh -c 'echo {word} $AZ_BATCH_TASK_ID "
       ">> \"$AZ_BATCH_NODE_SHARED_DIR/log-$AZ_BATCH_JOB_ID\"'")


def _job(client: BatchClient, job_id: str = "j1", pool_id: str = "p1", *,
         prep: m.BatchJobPreparationTask | None = None,
         release: m.BatchJobReleaseTask | None = None, **kwargs: Any) -> None:
    client.create_job(m.BatchJobCreateOptions(
        id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id), job_preparation_task=prep,
        job_release_task=release, **kwargs))


def _task(client: BatchClient, task_id: str, command: str = "/bin/true",
          job_id: str = "j1") -> None:
    client.create_task(job_id, m.BatchTaskCreateOptions(id=task_id, command_line=command))


def _statuses(client: BatchClient, job_id: str = "j1", **kwargs: Any
              ) -> list[m.BatchJobPreparationAndReleaseTaskStatus]:
    return list(client.list_job_preparation_and_release_task_status(job_id, **kwargs))


def _log(client: BatchClient, node_id: str, job_id: str = "j1") -> list[str]:
    data = b"".join(client.download_node_file("p1", node_id, f"shared/log-{job_id}"))
    return data.decode().splitlines()


def _open_gate(emulator: BatchEmulator, node_id: str) -> None:
    assert emulator.data_dir is not None
    (emulator.data_dir / "p1" / node_id / "shared" / "go").touch()


def test_preparation_once_per_node_then_release_at_terminate(client: BatchClient) -> None:
    make_pool(client, "p1", slots=2)
    _job(client, prep=m.BatchJobPreparationTask(
             command_line=LOG.format(word="prep"),
             environment_settings=[m.EnvironmentSetting(name="STAGE", value="prep")]),
         release=m.BatchJobReleaseTask(command_line=LOG.format(word="release")),
         common_environment_settings=[m.EnvironmentSetting(name="COMMON", value="c")])
    job = client.get_job("j1")
    assert job.job_preparation_task.id == "jobpreparation"
    assert job.job_release_task.id == "jobrelease"
    dirs = ("python3 -c \"import os; e = os.environ; print(e['AZ_BATCH_JOB_PREP_DIR'], "
            "e['AZ_BATCH_JOB_PREP_WORKING_DIR'], e['COMMON'])\"")
    _task(client, "t1", dirs)
    first = wait_completed(client, "j1", "t1")
    assert first.previous_state == "running"
    _task(client, "t2")
    wait_completed(client, "j1", "t2")
    node_id = first.node_info.node_id
    out = b"".join(client.download_task_file("j1", "t1", "stdout.txt")).decode().split()
    assert out[0].endswith("/workitems/j1/job-1/jobpreparation") and out[1] == out[0] + "/wd"
    assert out[2] == "c"
    assert _log(client, node_id) == ["prep jobpreparation"]  # once, before the first task

    [status] = _statuses(client)
    prep = status.job_preparation_task_execution_info
    assert (status.pool_id, status.node_id) == ("p1", node_id)
    assert (prep.state, prep.result, prep.exit_code, prep.retry_count) == (
        "completed", "success", 0, 0)
    assert prep.task_root_directory == "workitems/j1/job-1/jobpreparation"
    assert prep.task_root_directory_url.endswith(
        f"/pools/p1/nodes/{node_id}/files/workitems/j1/job-1/jobpreparation")
    assert status.job_release_task_execution_info is None

    client.begin_terminate_job("j1", {"terminateReason": "done"}, polling_interval=POLL).result()
    job = client.get_job("j1")
    assert job.state == "completed" and job.execution_info.termination_reason == "done"
    [status] = _statuses(client)
    release = status.job_release_task_execution_info
    assert (release.state, release.result, release.exit_code) == ("completed", "success", 0)
    assert release.task_root_directory == "workitems/j1/job-1/jobrelease"
    assert _log(client, node_id) == ["prep jobpreparation", "release jobrelease"]
    done = _statuses(client, filter="jobReleaseTaskExecutionInfo/state eq 'completed'",
                     select=["nodeId", "jobReleaseTaskExecutionInfo"])
    assert [s.node_id for s in done] == [node_id] and done[0].pool_id is None
    assert _statuses(client, filter=f"nodeId eq '{node_id}x'") == []


def test_tasks_wait_in_preparing_for_the_preparation_task(
        client: BatchClient, emulator: BatchEmulator) -> None:
    make_pool(client, "p1")
    _job(client, prep=m.BatchJobPreparationTask(command_line=GATE))
    _task(client, "t1")
    task = wait_until(lambda: (t := client.get_task("j1", "t1")).state == "preparing" and t,
                      what="preparing task")
    assert task.node_info.pool_id == "p1" and task.execution_info.start_time is None
    counts = client.get_job_task_counts("j1").task_counts
    assert (counts.active, counts.running) == (0, 1)  # preparing counts as running
    [status] = _statuses(client)
    assert status.job_preparation_task_execution_info.state == "running"
    assert [s.node_id for s in _statuses(
        client, filter="jobPreparationTaskExecutionInfo/state eq 'running'")] == [status.node_id]
    _open_gate(emulator, task.node_info.node_id)
    task = wait_completed(client, "j1", "t1")
    assert task.execution_info.result == "success"
    assert task.execution_info.start_time >= _statuses(client)[0] \
        .job_preparation_task_execution_info.end_time


def test_failed_preparation_bars_the_node_from_the_job_only(client: BatchClient) -> None:
    make_pool(client, "p1", nodes=2)
    _job(client, prep=m.BatchJobPreparationTask(
        command_line="/bin/sh -c 'echo no >&2; exit 7'",
        constraints=m.BatchTaskConstraints(max_task_retry_count=1)))
    _task(client, "t1")
    statuses = wait_until(
        lambda: (s := _statuses(client)) and len(s) == 2 and all(
            x.job_preparation_task_execution_info.state == "completed" for x in s) and s,
        what="the preparation to fail on both nodes")
    for status in statuses:
        prep = status.job_preparation_task_execution_info
        assert (prep.result, prep.exit_code, prep.retry_count) == ("failure", 7, 1)
        assert prep.failure_info.code == "FailureExitCode"
        assert prep.failure_info.category == "usererror"
    assert [s.node_id for s in _statuses(
        client, filter="jobPreparationTaskExecutionInfo/result eq 'failure'")] == [
        s.node_id for s in statuses]
    task = client.get_task("j1", "t1")
    assert task.state == "active" and task.previous_state == "preparing"
    assert task.execution_info.retry_count == 0
    stderr = b"".join(client.download_node_file(
        "p1", statuses[0].node_id, "workitems/j1/job-1/jobpreparation/stderr.txt"))
    assert stderr == b"no\n"
    assert {n.state for n in client.list_nodes("p1")} == {"idle"}  # usable by other jobs
    _job(client, "j2")
    _task(client, "u1", job_id="j2")
    assert wait_completed(client, "j2", "u1").execution_info.result == "success"
    assert client.get_task("j1", "t1").state == "active"


def test_without_wait_for_success_tasks_run_while_it_runs(
        client: BatchClient, emulator: BatchEmulator) -> None:
    make_pool(client, "p1")
    _job(client, prep=m.BatchJobPreparationTask(command_line=GATE, wait_for_success=False))
    _task(client, "t1")
    task = wait_completed(client, "j1", "t1")
    assert task.execution_info.result == "success" and task.previous_state == "running"
    [status] = _statuses(client)
    assert status.job_preparation_task_execution_info.state == "running"
    _open_gate(emulator, task.node_info.node_id)
    wait_until(lambda: _statuses(client)[0].job_preparation_task_execution_info.state
               == "completed", what="preparation completion")


@pytest.mark.parametrize("rerun", [True, False])
def test_reboot_reruns_the_preparation_unless_told_not_to(client: BatchClient,
                                                           rerun: bool) -> None:
    make_pool(client, "p1")
    _job(client, prep=m.BatchJobPreparationTask(command_line=LOG.format(word="prep"),
                                                rerun_on_node_reboot_after_success=rerun))
    _task(client, "t1")
    node_id = wait_completed(client, "j1", "t1").node_info.node_id
    client.begin_reboot_node("p1", node_id, {"nodeRebootOption": "requeue"},
                             polling_interval=POLL).result()
    wait_until(lambda: client.get_node("p1", node_id).state == "idle", what="idle node")
    _task(client, "t2")
    wait_completed(client, "j1", "t2")
    assert len(_log(client, node_id)) == (2 if rerun else 1)


def test_job_rules_end_the_job_through_its_release_tasks(client: BatchClient) -> None:
    make_pool(client, "p1")
    _job(client, prep=m.BatchJobPreparationTask(command_line="/bin/true"),
         release=m.BatchJobReleaseTask(command_line="/bin/sh -c 'exit 4'"))
    _task(client, "t1")
    wait_completed(client, "j1", "t1")
    client.update_job("j1", m.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
    job = wait_until(lambda: (j := client.get_job("j1")).state == "completed" and j,
                     what="job completion")
    assert job.execution_info.termination_reason == "AllTasksComplete"
    assert job.previous_state == "terminating"
    release = _statuses(client)[0].job_release_task_execution_info
    assert (release.result, release.exit_code) == ("failure", 4)  # the job completes anyway


def test_release_runs_when_the_job_is_deleted(client: BatchClient) -> None:
    make_pool(client, "p1")
    _job(client, prep=m.BatchJobPreparationTask(command_line="/bin/true"),
         release=m.BatchJobReleaseTask(command_line=LOG.format(word="release")))
    _task(client, "t1")
    node_id = wait_completed(client, "j1", "t1").node_info.node_id
    client.begin_delete_job("j1", polling_interval=POLL).result()
    assert _log(client, node_id) == ["release jobrelease"]


def test_preparation_and_release_errors(client: BatchClient) -> None:
    make_pool(client, "p1")
    _job(client, "plain")
    with pytest.raises(ResourceExistsError) as none:
        _statuses(client, "plain")
    assert none.value.error.code == "JobPreparationTaskNotSpecified"
    _job(client, prep=m.BatchJobPreparationTask(id="setup", command_line="/bin/true"),
         release=m.BatchJobReleaseTask(id="teardown", command_line="/bin/true"))
    for task_id, code in (("SETUP", "TaskIdSameAsJobPreparationTask"),
                          ("teardown", "TaskIdSameAsJobReleaseTask")):
        with pytest.raises(ResourceExistsError) as same:
            _task(client, task_id)
        assert same.value.error.code == code
    with pytest.raises(HttpResponseError) as alone:
        _job(client, "j2", release=m.BatchJobReleaseTask(command_line="/bin/true"))
    assert alone.value.status_code == 400 and alone.value.error.code == "InvalidPropertyValue"
    with pytest.raises(HttpResponseError) as long:
        _job(client, "j3", prep=m.BatchJobPreparationTask(command_line="/bin/true"),
             release=m.BatchJobReleaseTask(command_line="/bin/true",
                                           max_wall_clock_time="PT20M"))
    assert long.value.error.code == "InvalidPropertyValue"
