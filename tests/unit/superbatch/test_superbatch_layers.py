"""What the SuperBatch client asks of the shared layers: registry credentials for a new pool
and its tasks, the task definitions of `taskdef`, and the DELETE_*_WHEN_DONE cleanups."""

from __future__ import annotations

import logging

import pytest

from azure_batch_executor import errors, superbatch

REGISTRY = dict(REGISTRY_SERVER="myregistry.azurecr.io", REGISTRY_USERNAME="myregistry",
                REGISTRY_PASSWORD="registry-secret")


def _add(c: superbatch.client, i: int, command: str | None = None) -> None:
    c.add_task([], [c.build_output_file("outputs.pickle", f"iter_{i}_outputs.pickle")],
               command_line=command)


def test_a_private_registry_reaches_the_new_pool_and_each_task(fakes, make_client) -> None:
    c = make_client(**REGISTRY)
    _add(c, 0)
    c.run()
    expected = {"registryServer": "myregistry.azurecr.io", "username": "myregistry",
                "password": "registry-secret"}
    assert fakes.batch is not None and fakes.batch.registries == [expected]
    assert c.tasks[0]["containerSettings"] == {"imageName": "myusername/sum-of-powers:v1",
                                               "registry": expected}


def test_a_public_image_sends_no_registry(fakes, make_client) -> None:
    c = make_client()
    _add(c, 0)
    c.run()
    assert fakes.batch is not None and fakes.batch.registries == []
    assert c.tasks[0]["containerSettings"] == {"imageName": "myusername/sum-of-powers:v1"}


def test_task_definitions_come_from_the_shared_builder(make_client) -> None:
    c = make_client()
    _add(c, 0, command="python3 worker.py --seed 1")
    task = c.tasks[0]
    assert task["id"] == "task-000000"
    assert task["commandLine"] == "python3 worker.py --seed 1"
    assert [(o["filePattern"], o["destination"]["container"]["path"],
             o["uploadOptions"]["uploadCondition"]) for o in task["outputFiles"]] == [
        ("outputs.pickle", f"{c.job_id}/iter_0_outputs.pickle", "tasksuccess"),
        ("../stdout.txt", f"{c.job_id}/iter_0_stdout.txt", "taskcompletion"),
        ("../stderr.txt", f"{c.job_id}/iter_0_stderr.txt", "taskcompletion")]
    # the job's own retry default; the task's directory kept an hour on its node
    assert task["constraints"] == {"maxTaskRetryCount": 0, "retentionTime": "PT1H"}


def test_delete_container_when_done_deletes_the_runs_blobs(fakes, make_client, tmp_path) -> None:
    (tmp_path / "config.pickle").write_bytes(b"global")
    fakes.store.blobs["another-run/iter_0_outputs.pickle"] = b"kept"
    c = make_client(DELETE_CONTAINER_WHEN_DONE=True)
    resource = c.build_resource_file("config.pickle", "config.pickle")
    c.add_task([resource], [c.build_output_file("outputs.pickle", "iter_0_outputs.pickle")])
    c.run()
    assert (tmp_path / "iter_0_outputs.pickle").read_bytes() == b"task-000000"
    assert list(fakes.store.blobs) == ["another-run/iter_0_outputs.pickle"]


def test_failed_runs_keep_their_blobs_for_the_logs(fakes, make_client, caplog) -> None:
    c = make_client(DELETE_CONTAINER_WHEN_DONE=True)
    _add(c, 0, command="python3 worker.py --fail")
    with (caplog.at_level(logging.WARNING, logger="azure_batch_executor.superbatch"),
          pytest.raises(errors.TasksFailedError)):
        c.run()
    assert f"{c.job_id}/iter_0_stderr.txt" in fakes.store.blobs
    assert f"the blobs of job {c.job_id} are kept for their logs" in caplog.text


def test_delete_job_when_done_deletes_the_job(fakes, make_client) -> None:
    c = make_client(DELETE_JOB_WHEN_DONE=True)
    _add(c, 0)
    c.run()
    assert fakes.batch is not None and fakes.batch.jobs == {}


def test_tasks_failed_error_is_the_errors_module_class() -> None:
    assert superbatch.TasksFailedError is errors.TasksFailedError
    assert issubclass(errors.TasksFailedError, errors.AzureBatchExecutorError)
