"""Drive the Batch emulator with azure-batch 14.x (`BatchServiceClient`, msrest) as a user would.

Runs in its own virtualenv (azure-batch 14.x and 15.x cannot share one), started by
`test_compat_clients.py`: `python drive_azure_batch_14.py URL ACCOUNT KEY`. Every step is
one SDK call (or one helper such as the paged iterator or the 100-per-request
`add_collection`); the script prints one JSON object: the SDK version and, per step, its
name, whether it succeeded and the error otherwise. A failed step does not stop the run.

Imports: the standard library and azure-batch 14.x only (not the package under test).
"""

from __future__ import annotations

import json
import sys
import time
import traceback

import azure.batch.models as m
from azure.batch import BatchServiceClient
from azure.batch import __version__ as sdk_version
from azure.batch.batch_auth import SharedKeyCredentials

POOL, POOL2, JOB, JOB2 = "compat14-pool", "compat14-pool2", "compat14-job", "compat14-job2"
MANY = 130  # more than one add_collection request (100 per request)
steps: list[dict[str, object]] = []


def step(name, fn, *args, **kwargs):
    try:
        result = fn(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - every failure is reported, not raised
        detail = getattr(getattr(error, "error", None), "code", None)
        steps.append({"op": name, "ok": False,
                      "error": f"{type(error).__name__}: {detail or error}",
                      "trace": traceback.format_exc(limit=3)})
        return None
    steps.append({"op": name, "ok": True})
    return result


def check(name, condition, detail=""):
    steps.append({"op": name, "ok": bool(condition), "error": "" if condition else detail})


def wait(probe, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError("condition not reached")


def pool_spec(pool_id, nodes):
    return m.PoolAddParameter(
        id=pool_id, vm_size="standard_d2s_v3", target_dedicated_nodes=nodes,
        task_slots_per_node=2,
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.ImageReference(publisher="canonical",
                                             offer="0001-com-ubuntu-server-jammy",
                                             sku="22_04-lts", version="latest"),
            node_agent_sku_id="batch.node.ubuntu 22.04"),
        start_task=m.StartTask(command_line="/bin/sh -c 'echo started'", wait_for_success=True),
        metadata=[m.MetadataItem(name="suite", value="compat")])


def main():
    url, account, key = sys.argv[1:4]
    client = BatchServiceClient(SharedKeyCredentials(account, key), batch_url=url)

    # pools
    step("pool.add", client.pool.add, pool_spec(POOL, 1))
    step("pool.add (second)", client.pool.add, pool_spec(POOL2, 0))
    step("pool.exists", client.pool.exists, POOL)
    step("pool.get", client.pool.get, POOL)
    got = step("pool.get $select", client.pool.get, POOL,
               pool_get_options=m.PoolGetOptions(select="id,state,allocationState"))
    if got is not None:
        check("pool.get $select projects", got.id == POOL and got.vm_size is None)
    step("pool.patch", client.pool.patch, POOL,
         m.PoolPatchParameter(metadata=[m.MetadataItem(name="k", value="v")]))
    step("pool wait steady", wait,
         lambda: client.pool.get(POOL).allocation_state == m.AllocationState.steady)
    pools = step("pool.list paged", lambda: list(client.pool.list(
        pool_list_options=m.PoolListOptions(max_results=1))))
    check("pool.list pages", pools is not None and {p.id for p in pools} >= {POOL, POOL2},
          f"got {pools and [p.id for p in pools]}")
    filtered = step("pool.list $filter", lambda: list(client.pool.list(
        pool_list_options=m.PoolListOptions(filter=f"id eq '{POOL}'", select="id,state"))))
    check("pool.list $filter matches", filtered is not None and [p.id for p in filtered] == [POOL])
    step("pool.resize", client.pool.resize, POOL2,
         m.PoolResizeParameter(target_dedicated_nodes=0))
    step("pool.stop_resize", client.pool.stop_resize, POOL2)
    step("account.list_pool_node_counts",
         lambda: list(client.account.list_pool_node_counts()))
    nodes = step("compute_node.list", lambda: wait(lambda: [
        n for n in client.compute_node.list(POOL) if n.state == m.ComputeNodeState.idle]))
    node_id = nodes[0].id if nodes else None
    if node_id:
        step("compute_node.get", client.compute_node.get, POOL, node_id)

    # jobs
    step("job.add", client.job.add, m.JobAddParameter(
        id=JOB, pool_info=m.PoolInformation(pool_id=POOL), priority=10,
        constraints=m.JobConstraints(max_task_retry_count=0)))
    step("job.add (second)", client.job.add, m.JobAddParameter(
        id=JOB2, pool_info=m.PoolInformation(pool_id=POOL2)))
    step("job.get", client.job.get, JOB)
    step("job.patch", client.job.patch, JOB, m.JobPatchParameter(priority=20))
    step("job.update", client.job.update, JOB, m.JobUpdateParameter(
        pool_info=m.PoolInformation(pool_id=POOL), priority=30))
    jobs = step("job.list $filter", lambda: list(client.job.list(
        job_list_options=m.JobListOptions(filter="startswith(id,'compat14-')", max_results=1))))
    check("job.list pages", jobs is not None and len(jobs) == 2)
    step("job.disable", client.job.disable, JOB2, "requeue")
    step("job wait disabled", wait,
         lambda: client.job.get(JOB2).state == m.JobState.disabled)
    step("job.enable", client.job.enable, JOB2)

    # tasks
    step("task.add", client.task.add, JOB, m.TaskAddParameter(
        id="single", command_line="/bin/sh -c 'echo hello; echo data > out.txt'",
        output_files=[], environment_settings=[m.EnvironmentSetting(name="A", value="1")]))
    many = [m.TaskAddParameter(id=f"t{i:03d}", command_line="/bin/sh -c 'exit 0'")
            for i in range(MANY)]
    added = step(f"task.add_collection ({MANY} tasks)", client.task.add_collection, JOB, many)
    if added is not None:
        check("task.add_collection all success",
              len(added.value) == MANY and all(r.status == m.TaskAddStatus.success
                                                for r in added.value))
    step("task.get", client.task.get, JOB, "single")
    step("task.add (waiting)", client.task.add, JOB2, m.TaskAddParameter(
        id="waiting", command_line="/bin/sh -c 'exit 0'"))
    step("task.update", client.task.update, JOB2, "waiting",
         constraints=m.TaskConstraints(max_task_retry_count=1))
    listed = step("task.list paged $select", lambda: list(client.task.list(
        JOB, task_list_options=m.TaskListOptions(select="id,state", max_results=50))))
    check("task.list all pages", listed is not None and len(listed) == MANY + 1,
          f"got {listed and len(listed)}")
    done = step("task wait completed", wait, lambda: client.job.get_task_counts(JOB)
                .task_counts.completed == MANY + 1)
    step("task.list $filter", lambda: list(client.task.list(
        JOB, task_list_options=m.TaskListOptions(
            filter="state eq 'completed' and executionInfo/exitCode eq 0"))))
    counts = step("job.get_task_counts", client.job.get_task_counts, JOB)
    if counts is not None and done:
        check("task counts", counts.task_counts.succeeded == MANY + 1)
    step("task.list_subtasks", client.task.list_subtasks, JOB, "single")
    step("task.reactivate (succeeded: 409)", lambda: _expect_code(
        "TaskSucceeded", client.task.reactivate, JOB, "single"))
    step("task.add (long)", client.task.add, JOB, m.TaskAddParameter(
        id="long", command_line="/bin/sh -c 'sleep 30'"))
    step("task.terminate", client.task.terminate, JOB, "long")
    step("task.reactivate", client.task.reactivate, JOB, "long")
    step("task.terminate (again)", client.task.terminate, JOB, "long")

    # files
    files = step("file.list_from_task", lambda: list(client.file.list_from_task(
        JOB, "single", recursive=True)))
    check("file.list_from_task names",
          files is not None and "wd/out.txt" in {f.name for f in files},
          f"got {files and [f.name for f in files]}")
    body = step("file.get_from_task", lambda: b"".join(client.file.get_from_task(
        JOB, "single", "stdout.txt")))
    check("file.get_from_task content", body == b"hello\n", repr(body))
    step("file.get_properties_from_task", client.file.get_properties_from_task,
         JOB, "single", "wd/out.txt")
    step("file.delete_from_task", client.file.delete_from_task, JOB, "single", "wd/out.txt")
    if node_id:
        step("file.list_from_compute_node", lambda: list(client.file.list_from_compute_node(
            POOL, node_id, recursive=False)))
        step("file.get_properties_from_compute_node",
             client.file.get_properties_from_compute_node, POOL, node_id, "startup/stdout.txt")
        step("file.get_from_compute_node", lambda: b"".join(client.file.get_from_compute_node(
            POOL, node_id, "startup/stdout.txt")))
        step("file.delete_from_compute_node", client.file.delete_from_compute_node,
             POOL, node_id, "startup/stdout.txt")

    # errors the SDK surfaces as BatchErrorException
    step("job.get missing (404)", lambda: _expect_code("JobNotFound", client.job.get, "nope"))

    # deletes
    step("task.delete", client.task.delete, JOB, "single")
    step("task.delete (active)", client.task.delete, JOB2, "waiting")
    step("job.terminate", client.job.terminate, JOB, terminate_reason="done")
    step("job.delete", client.job.delete, JOB)
    step("job.delete (second)", client.job.delete, JOB2)
    step("pool.delete", client.pool.delete, POOL)
    step("pool.delete (second)", client.pool.delete, POOL2)
    step("pool gone", wait, lambda: not client.pool.exists(POOL))

    print(json.dumps({"client": f"azure-batch {sdk_version}", "steps": steps}))


def _expect_code(code, fn, *args):
    try:
        fn(*args)
    except m.BatchErrorException as error:
        if error.error.code != code:
            raise AssertionError(f"expected {code}, got {error.error.code}") from error
        return True
    raise AssertionError(f"expected {code}, the call succeeded")


if __name__ == "__main__":
    main()
