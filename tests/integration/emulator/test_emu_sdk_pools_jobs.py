"""Pools, nodes and jobs through the official SDK: success codes, JSON shapes, error codes."""

from __future__ import annotations

import azure.batch.models as m
import pytest
from azure.batch import BatchClient
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from emu_sdk_kit import POLL, make_job, make_pool, wait_until

from azure_batch_executor.emulator import BatchEmulator


def test_pool_lifecycle(client: BatchClient) -> None:
    pool = make_pool(client, "p1", nodes=2, slots=2,
                     metadata=[m.BatchMetadataItem(name="k", value="v")])
    assert pool.allocation_state == "steady" and pool.state == "active"
    assert pool.current_dedicated_nodes == 2 and pool.target_dedicated_nodes == 2
    assert pool.task_slots_per_node == 2 and pool.vm_size == "standard_d2s_v3"
    assert pool.task_scheduling_policy.node_fill_type == "Spread"  # as the service writes it
    assert pool.resize_timeout.total_seconds() == 900
    assert pool.etag.startswith("0x8D") and pool.last_modified.tzinfo is not None
    assert pool.metadata[0].name == "k" and not pool.resize_errors
    assert client.pool_exists("p1")
    assert [p.id for p in client.list_pools(filter="id eq 'p1'")] == ["p1"]
    assert [p.id for p in client.list_pools(filter="allocationState eq 'resizing'")] == []

    client.update_pool("p1", m.BatchPoolUpdateOptions(
        metadata=[m.BatchMetadataItem(name="k", value="w")]))
    assert client.get_pool("p1").metadata[0].value == "w"
    assert client.get_pool("p1").etag != pool.etag

    client.begin_resize_pool("p1", m.BatchPoolResizeOptions(target_dedicated_nodes=1),
                             polling_interval=POLL).result()
    resized = client.get_pool("p1")
    assert resized.allocation_state == "steady" and resized.current_dedicated_nodes == 1
    client.begin_stop_pool_resize("p1", polling_interval=POLL).result()
    assert client.get_pool("p1").allocation_state == "steady"

    client.begin_delete_pool("p1", polling_interval=POLL).result()
    with pytest.raises(ResourceNotFoundError) as info:
        client.get_pool("p1")
    assert info.value.error.code == "PoolNotFound"
    with pytest.raises(ResourceNotFoundError):
        client.pool_exists("p1")


def test_pool_errors_and_quota(client: BatchClient) -> None:
    make_pool(client, "p1", nodes=3)  # the emulator's per-pool quota is 2
    pool = client.get_pool("p1")
    assert pool.current_dedicated_nodes == 2 and pool.target_dedicated_nodes == 3
    assert pool.resize_errors[0].code == "AccountCoreQuotaReached"
    with pytest.raises(ResourceExistsError) as exists:
        make_pool(client, "P1")
    assert exists.value.error.code == "PoolExists"
    with pytest.raises(HttpResponseError) as slots:
        make_pool(client, "p2", slots=8)
    assert slots.value.status_code == 400 and "--slots" in slots.value.error.message
    with pytest.raises(ResourceNotFoundError):
        client.begin_resize_pool("nope", m.BatchPoolResizeOptions(target_dedicated_nodes=1))


def test_nodes_and_node_counts(client: BatchClient) -> None:
    make_pool(client, "p1", nodes=2)
    nodes = list(client.list_nodes("p1"))
    assert len(nodes) == 2 and all(n.state == "idle" and n.is_dedicated for n in nodes)
    node = client.get_node("p1", nodes[0].id)
    assert node.scheduling_state == "enabled" and node.ip_address and node.affinity_id
    assert node.running_task_slots_count == 0 and node.total_tasks_run == 0
    assert [n.id for n in client.list_nodes("p1", filter="state eq 'idle'",
                                            select=["id", "state"])] == [n.id for n in nodes]
    counts = list(client.list_pool_node_counts(filter="poolId eq 'p1'"))
    assert counts[0].pool_id == "p1"
    assert counts[0].dedicated.idle == 2 and counts[0].dedicated.total == 2
    assert counts[0].low_priority.total == 0
    with pytest.raises(ResourceNotFoundError) as info:
        client.get_node("p1", "tvmps_nope_d")
    assert info.value.error.code == "NodeNotFound"


def test_job_lifecycle(client: BatchClient) -> None:
    make_job(client, "j1", "nowhere", priority=5, metadata=[m.BatchMetadataItem(name="a",
                                                                                 value="b")])
    job = client.get_job("j1")
    assert job.state == "active" and job.priority == 5 and job.max_parallel_tasks == -1
    assert job.pool_info.pool_id == "nowhere" and job.execution_info.pool_id == "nowhere"
    assert job.all_tasks_complete_mode == "noaction" and job.task_failure_mode == "noaction"
    assert job.constraints.max_task_retry_count == 0
    assert job.constraints.max_wall_clock_time.days == 10675199
    assert [j.id for j in client.list_jobs(filter="state eq 'active'")] == ["j1"]

    client.update_job("j1", m.BatchJobUpdateOptions(priority=7))
    assert client.get_job("j1").priority == 7
    fetched = client.get_job("j1")
    fetched.priority = 9
    client.replace_job("j1", fetched)
    replaced = client.get_job("j1")
    assert replaced.priority == 9 and replaced.metadata[0].name == "a"

    client.begin_disable_job("j1", m.BatchJobDisableOptions(disable_tasks="requeue"),
                             polling_interval=POLL).result()
    assert client.get_job("j1").state == "disabled"
    client.begin_enable_job("j1", polling_interval=POLL).result()
    assert client.get_job("j1").state == "active"

    counts = client.get_job_task_counts("j1")
    assert counts.task_counts.active == 0 and counts.task_slot_counts.completed == 0

    client.begin_terminate_job("j1", {"terminateReason": "Done"}, polling_interval=POLL).result()
    job = client.get_job("j1")
    assert job.state == "completed" and job.execution_info.termination_reason == "Done"
    assert job.execution_info.end_time is not None and job.previous_state == "terminating"
    with pytest.raises(ResourceExistsError) as completed:
        client.create_task("j1", m.BatchTaskCreateOptions(id="t", command_line="/bin/true"))
    assert completed.value.error.code == "JobCompleted"

    client.begin_delete_job("j1", polling_interval=POLL).result()
    with pytest.raises(ResourceNotFoundError) as gone:
        client.get_job("j1")
    assert gone.value.error.code == "JobNotFound"


def test_job_errors(client: BatchClient) -> None:
    make_job(client, "j1", "p")
    with pytest.raises(ResourceExistsError) as info:
        make_job(client, "j1", "p")
    assert info.value.error.code == "JobExists"
    with pytest.raises(ResourceNotFoundError) as missing:
        client.get_job_task_counts("nope")
    assert missing.value.error.code == "JobNotFound"
    with pytest.raises(HttpResponseError) as priority:
        make_job(client, "j2", "p", priority=5000)
    assert priority.value.error.code == "InvalidPropertyValue"


def test_all_tasks_complete_trap(client: BatchClient) -> None:
    make_job(client, "trap", "p", all_tasks_complete_mode="terminatejob")
    job = wait_until(lambda: (j := client.get_job("trap")).state == "completed" and j,
                     what="the zero-task job to complete")
    assert job.execution_info.termination_reason == "AllTasksComplete"
    with pytest.raises(ResourceExistsError) as info:
        client.create_task("trap", m.BatchTaskCreateOptions(id="t1", command_line="/bin/true"))
    assert info.value.error.code == "JobCompleted"


def test_recommended_pattern_noaction_then_patch(client: BatchClient) -> None:
    make_pool(client, "p1")
    make_job(client, "j1", "p1")
    client.create_task("j1", m.BatchTaskCreateOptions(id="t1", command_line="/bin/true"))
    client.update_job("j1", m.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
    job = wait_until(lambda: (j := client.get_job("j1")).state == "completed" and j,
                     what="job completion")
    assert job.execution_info.termination_reason == "AllTasksComplete"
    assert client.get_task("j1", "t1").execution_info.result == "success"


def test_conditional_requests(client: BatchClient, emulator: BatchEmulator) -> None:
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError

    make_job(client, "j1", "p")
    etag = client.get_job("j1").etag
    client.update_job("j1", m.BatchJobUpdateOptions(priority=1), etag=etag,
                      match_condition=MatchConditions.IfNotModified)
    with pytest.raises(ResourceModifiedError) as info:
        client.update_job("j1", m.BatchJobUpdateOptions(priority=2), etag=etag,
                          match_condition=MatchConditions.IfNotModified)
    assert info.value.status_code == 412 and info.value.error.code == "ConditionNotMet"


def test_start_task_prepares_the_node(client: BatchClient) -> None:
    start = m.BatchStartTask(
        command_line="/bin/sh -c 'echo ready > $AZ_BATCH_NODE_SHARED_DIR/flag'",
        wait_for_success=True)
    pool = make_pool(client, "p1", start_task=start)
    node = next(iter(client.list_nodes("p1")))
    assert node.start_task_info.state == "completed" and node.start_task_info.exit_code == 0
    assert pool.start_task.wait_for_success
    make_job(client, "j1", "p1")
    client.create_task("j1", m.BatchTaskCreateOptions(
        id="t1", command_line="/bin/sh -c 'cat $AZ_BATCH_NODE_SHARED_DIR/flag'"))
    wait_until(lambda: client.get_task("j1", "t1").state == "completed", what="completion")
    assert b"".join(client.download_task_file("j1", "t1", "stdout.txt")) == b"ready\n"
