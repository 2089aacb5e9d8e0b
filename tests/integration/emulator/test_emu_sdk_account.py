"""What real accounts meet, through the official SDK: quotas, allocation failures,
throttling, unusable nodes and reboots, scripted with `BatchEmulator` arguments, its
methods and the admin API (docs/dev/emulator-rest.md, "What real accounts meet")."""

from __future__ import annotations

import azure.batch.models as m
import pytest
from azure.batch import BatchClient
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from emu_sdk_kit import PATH_PREFIX, POLL, admin, client_for, make_job, make_pool, wait_until

from azure_batch_executor.emulator import BatchEmulator
from azure_batch_executor.local import LocalStack

SLEEP = 'python3 -c "import time; time.sleep({})"'



def _steady(client: BatchClient, pool_id: str) -> m.BatchPool:
    return wait_until(lambda: (p := client.get_pool(pool_id)).allocation_state == "steady"
                      and all(n.state not in ("creating", "starting")
                              for n in client.list_nodes(pool_id)) and p,
                      what=f"pool {pool_id} steady")


# --- quotas ----------------------------------------------------------------------------------


def test_core_quota_ends_steady_with_fewer_nodes(client: BatchClient,
                                                 emulator: BatchEmulator) -> None:
    emulator.set_quotas(dedicated_cores=4)
    make_pool(client, "p1", nodes=1)  # standard_d2s_v3: 2 cores
    pool = make_pool(client, "p2", nodes=2)
    assert pool.allocation_state == "steady" and pool.current_dedicated_nodes == 1
    assert pool.target_dedicated_nodes == 2
    assert [e.code for e in pool.resize_errors] == ["AccountCoreQuotaReached"]
    assert {v.name: v.value for v in pool.resize_errors[0].error_values}["CoreQuota"] == "4"
    assert emulator.quotas()["dedicated_cores"] == {"quota": 4, "used": 4}


def test_low_priority_core_quota(client: BatchClient, emulator: BatchEmulator) -> None:
    emulator.set_quotas(low_priority_cores=2)
    pool = make_pool(client, "p1", nodes=0, target_low_priority_nodes=2)
    assert pool.current_low_priority_nodes == 1
    assert pool.resize_errors[0].code == "AccountLowPriorityCoreQuotaReached"


def test_allocation_failure_then_a_resize_succeeds(client: BatchClient,
                                                   emulator: BatchEmulator) -> None:
    emulator.fail_allocations(1, pool_id="p1")
    pool = make_pool(client, "p1", nodes=2)
    assert pool.current_dedicated_nodes == 1 and pool.allocation_state == "steady"
    error = pool.resize_errors[0]
    assert error.code == "AllocationFailed"
    assert error.message == "Desired number of dedicated nodes could not be allocated"
    client.begin_resize_pool("p1", m.BatchPoolResizeOptions(target_dedicated_nodes=2),
                             polling_interval=POLL).result()
    pool = _steady(client, "p1")
    assert pool.current_dedicated_nodes == 2 and not pool.resize_errors
    with pytest.raises(ValueError, match="AllocationFailed"):
        emulator.fail_allocations(1, code="Nope")


def test_pool_quota(client: BatchClient, emulator: BatchEmulator) -> None:
    emulator.set_quotas(pools=1)
    make_pool(client, "p1")
    with pytest.raises(ResourceExistsError) as info:
        make_pool(client, "p2")
    assert info.value.status_code == 409 and info.value.error.code == "PoolQuotaReached"
    client.begin_delete_pool("p1", polling_interval=POLL).result()
    wait_until(lambda: not list(client.list_pools()), what="p1 gone")
    make_pool(client, "p2")


def test_active_job_quota_counts_jobs_not_completed(client: BatchClient,
                                                     emulator: BatchEmulator) -> None:
    emulator.set_quotas(active_jobs=1)
    make_job(client, "j1", "p")
    with pytest.raises(ResourceExistsError) as info:
        make_job(client, "j2", "p")
    assert info.value.error.code == "ActiveJobAndScheduleQuotaReached"
    client.begin_terminate_job("j1", {"terminateReason": "done"}, polling_interval=POLL).result()
    make_job(client, "j2", "p")
    assert emulator.quotas()["active_jobs"] == {"quota": 1, "used": 1}


def test_quotas_from_arguments_and_reset() -> None:
    with BatchEmulator(pool_quota=1, max_active_jobs=0, core_quota=2,
                       path_prefix=PATH_PREFIX, transition_delay=0.02) as emu:
        client = client_for(emu)
        with pytest.raises(ResourceExistsError) as jobs:
            make_job(client, "j1", "p")
        assert jobs.value.error.code == "ActiveJobAndScheduleQuotaReached"
        pool = make_pool(client, "p1", nodes=2)
        assert pool.current_dedicated_nodes == 1
        with pytest.raises(ResourceExistsError):
            make_pool(client, "p2")
        emu.set_quotas(pools=None, active_jobs=None)
        make_pool(client, "p2", nodes=0)
        emu.reset()  # back to the arguments
        assert emu.quotas()["pools"] == {"quota": 1, "used": 0}
    with pytest.raises(ValueError, match="pool_quota"):
        BatchEmulator(pool_quota=-1)
    stack = LocalStack(emulator_options={"pool_quota": 3, "autoscale_min_interval": 0.5})
    assert stack.emulator_options == {"pool_quota": 3, "autoscale_min_interval": 0.5}


# --- throttling ------------------------------------------------------------------------------


def test_throttled_post_429_without_retry_after_fails_at_once(client: BatchClient,
                                                              emulator: BatchEmulator) -> None:
    make_pool(client, "p1")
    emulator.throttle(30, operations=["create_job"])
    with pytest.raises(HttpResponseError) as info:
        make_job(client, "j1", "p1")
    assert info.value.status_code == 429 and info.value.error.code == "TooManyRequests"
    assert "Retry-After" not in info.value.response.headers
    assert client.get_pool("p1").id == "p1"  # other operations pass
    stats = emulator.throttling()
    assert stats["refused"] == 1
    assert stats["counts"] == [{"method": "POST", "route": "create_job", "count": 1}]
    emulator.clear_throttling()
    make_job(client, "j1", "p1")


def test_throttle_with_retry_after_is_retried_until_it_ends(client: BatchClient,
                                                            emulator: BatchEmulator) -> None:
    make_job(client, "j1", "p")
    emulator.reset_request_counts()
    emulator.throttle(0.3, status=503, retry_after=0.2, operations=["get_job"])
    assert client.get_job("j1").id == "j1"  # the SDK waits Retry-After, then it passes
    refused = emulator.throttling()["refused"]
    assert refused >= 1
    assert emulator.request_counts()[("GET", "get_job")] == refused + 1
    assert emulator.throttling()["active"] == []


def test_throttle_by_path_and_method_on_all_operations(client: BatchClient,
                                                       emulator: BatchEmulator) -> None:
    make_job(client, "j1", "p")
    make_job(client, "j2", "p")
    emulator.throttle(30, status=503, method="GET", path_contains="/jobs/j2")
    assert client.get_job("j1").id == "j1"
    with pytest.raises(HttpResponseError) as info:
        client.get_job("j2", retry_total=0)
    assert info.value.status_code == 503 and info.value.error.code == "ServerBusy"
    client.update_job("j2", m.BatchJobUpdateOptions(priority=5))  # PATCH is not throttled
    with pytest.raises(HttpResponseError):
        client.get_job_task_counts("j2", retry_total=0)
    assert emulator.throttling()["refused"] == 2


def test_throttle_ends_after_its_duration(client: BatchClient, emulator: BatchEmulator) -> None:
    make_job(client, "j1", "p")
    emulator.throttle(1.0)
    with pytest.raises(HttpResponseError):
        client.get_job("j1", retry_total=0)

    def passes() -> bool:
        try:
            return client.get_job("j1", retry_total=0).id == "j1"
        except HttpResponseError:
            return False

    wait_until(passes, what="the throttle to end")
    assert emulator.throttling()["active"] == []


def test_throttle_and_quota_admin_routes(client: BatchClient, emulator: BatchEmulator) -> None:
    make_job(client, "j1", "p")
    throttle = {"seconds": 30, "status": 429, "retry_after": 0, "operations": ["get_job"]}
    assert admin(emulator, "POST", "/_emulator/throttle", throttle)[0] == 204
    with pytest.raises(HttpResponseError):
        client.get_job("j1", retry_total=0)
    status, stats = admin(emulator, "GET", "/_emulator/throttle")
    assert status == 200 and stats["refused"] == 1 and stats["active"][0]["retry_after"] == 0
    assert admin(emulator, "DELETE", "/_emulator/throttle")[0] == 204
    assert client.get_job("j1").id == "j1"
    bad = admin(emulator, "POST", "/_emulator/throttle", {"seconds": 1, "operations": ["x"]})
    assert bad[0] == 400 and bad[1]["code"] == "InvalidRequestBody"
    status, quotas = admin(emulator, "POST", "/_emulator/quotas",
                            {"pools": 5, "active_jobs": None})
    assert status == 200 and quotas["pools"] == {"quota": 5, "used": 0}
    assert admin(emulator, "GET", "/_emulator/quotas")[1]["active_jobs"]["quota"] is None
    failure = {"count": 2, "pool_id": "p1", "code": "AllocationTimedout"}
    assert admin(emulator, "POST", "/_emulator/allocation-failures", failure)[0] == 204
    assert emulator.quotas()["allocation_failures"][0]["remaining"] == 2
    assert admin(emulator, "POST", "/_emulator/unusable-boots", {"count": 1})[0] == 204


# --- node trouble ----------------------------------------------------------------------------


def test_unusable_node_requeues_its_task_until_rebooted(client: BatchClient,
                                                         emulator: BatchEmulator) -> None:
    make_pool(client, "p1", nodes=2)
    make_job(client, "j1", "p1")
    client.create_task("j1", m.BatchTaskCreateOptions(id="t1", command_line=SLEEP.format(30)))
    running = wait_until(lambda: (t := client.get_task("j1", "t1")).state == "running" and t,
                         what="running")
    first = running.node_info.node_id
    emulator.make_node_unusable("p1", first)
    assert client.get_node("p1", first).state == "unusable"
    moved = wait_until(lambda: (t := client.get_task("j1", "t1")).state == "running"
                       and t.node_info.node_id != first and t, what="the task elsewhere")
    assert moved.execution_info.requeue_count == 1
    counts = next(iter(client.list_pool_node_counts(filter="poolId eq 'p1'")))
    assert counts.dedicated.unusable == 1 and counts.dedicated.running == 1
    assert [n.id for n in client.list_nodes("p1", filter="state eq 'unusable'")] == [first]
    assert admin(emulator, "POST", f"/_emulator/pools/p1/nodes/{first}/reboot")[0] == 204
    wait_until(lambda: client.get_node("p1", first).state == "idle", what="recovered node")
    client.terminate_task("j1", "t1")


def test_service_reboot_requeues_running_tasks(client: BatchClient,
                                               emulator: BatchEmulator) -> None:
    make_pool(client, "p1", nodes=1)
    make_job(client, "j1", "p1")
    client.create_task("j1", m.BatchTaskCreateOptions(id="t1", command_line=SLEEP.format(30)))
    running = wait_until(lambda: (t := client.get_task("j1", "t1")).state == "running" and t,
                         what="running")
    emulator.reboot_node("p1", running.node_info.node_id)
    assert client.get_node("p1", running.node_info.node_id).state in ("rebooting", "starting",
                                                                      "running", "idle")
    again = wait_until(lambda: (t := client.get_task("j1", "t1")).state == "running"
                       and t.execution_info.requeue_count == 1 and t, what="rerun after reboot")
    assert again.node_info.node_id == running.node_info.node_id
    client.terminate_task("j1", "t1")


def test_nodes_that_boot_unusable(client: BatchClient, emulator: BatchEmulator) -> None:
    emulator.unusable_on_boot(1, pool_id="p1")
    client.create_pool(m.BatchPoolCreateOptions(
        id="p1", vm_size="standard_d2s_v3", target_dedicated_nodes=2,
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.BatchVmImageReference(publisher="canonical", offer="o", sku="s"),
            node_agent_sku_id="batch.node.ubuntu 22.04")))
    wait_until(lambda: sorted(n.state for n in client.list_nodes("p1")) == ["idle", "unusable"],
               what="one unusable node")
    assert admin(emulator, "POST", "/_emulator/pools/p1/nodes/none/unusable")[1]["code"] == \
        "NodeNotFound"
    assert emulator.quotas()["unusable_boots"] == []
