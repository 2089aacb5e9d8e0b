"""Pool autoscale through the official SDK: enableAutoScale at create, enable / evaluate /
disable, the formula evaluated on its interval (compressed with `autoscale_min_interval`),
and the service's refusals (docs/dev/emulator-rest.md, "Autoscale"). No sleeps: every wait
is a bounded `wait_until` on the pool's state."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import azure.batch.models as m
import pytest
from azure.batch import BatchClient
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from emu_sdk_kit import PATH_PREFIX, POLL, client_for, make_job, make_pool, wait_until

from azure_batch_executor.emulator import BatchEmulator

FAST = 0.2  # emulator seconds that stand for the service's 5 minutes
FIVE_MINUTES = datetime.timedelta(minutes=5)
SLEEP = 'python3 -c "import time; time.sleep({})"'
# "Pending tasks" of https://learn.microsoft.com/azure/batch/batch-automatic-scaling, with
# maxNumberofVMs 2 (the emulator's node quota)
PENDING_TASKS = """startingNumberOfVMs = 1;
maxNumberofVMs = 2;
pendingTaskSamplePercent = $PendingTasks.GetSamplePercent(180 * TimeInterval_Second);
pendingTaskSamples = pendingTaskSamplePercent < 70 ? startingNumberOfVMs : avg($PendingTasks.GetSample(180 * TimeInterval_Second));
$TargetDedicatedNodes=min(maxNumberofVMs, pendingTaskSamples);
$NodeDeallocationOption = taskcompletion;"""  # noqa: E501


@pytest.fixture
def fast(emulator: BatchEmulator) -> Iterator[BatchEmulator]:
    emulator.set_autoscale_min_interval(FAST)  # reset() after the test restores real time
    yield emulator


def _vm() -> m.VirtualMachineConfiguration:
    return m.VirtualMachineConfiguration(
        image_reference=m.BatchVmImageReference(publisher="canonical", offer="o", sku="s"),
        node_agent_sku_id="batch.node.ubuntu 22.04")


def _create(client: BatchClient, pool_id: str, formula: str | None, **kwargs: object) -> None:
    client.create_pool(m.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2s_v3", virtual_machine_configuration=_vm(),
        task_slots_per_node=4, enable_auto_scale=True, auto_scale_formula=formula,
        **kwargs))


def test_docs_pending_tasks_formula_grows_then_shrinks_the_pool(client: BatchClient,
                                                                 fast: BatchEmulator) -> None:
    _create(client, "ap", PENDING_TASKS, auto_scale_evaluation_interval=FIVE_MINUTES)
    pool = client.get_pool("ap")
    assert pool.enable_auto_scale and pool.auto_scale_formula == PENDING_TASKS
    assert pool.auto_scale_evaluation_interval == FIVE_MINUTES
    assert pool.auto_scale_run.results.startswith("$TargetDedicatedNodes=1;")  # starting VMs
    wait_until(lambda: client.get_pool("ap").current_dedicated_nodes == 1, what="1 node")
    make_job(client, "j", "ap")
    client.create_tasks("j", [m.BatchTaskCreateOptions(id=f"t{i}", command_line=SLEEP.format(1))
                              for i in range(6)])
    grown = wait_until(lambda: (p := client.get_pool("ap")).current_dedicated_nodes == 2 and p,
                       what="the formula to add a node")
    assert grown.target_dedicated_nodes == 2
    assert "$NodeDeallocationOption=taskcompletion" in grown.auto_scale_run.results
    wait_until(lambda: all(t.state == "completed" for t in client.list_tasks("j")),
               what="the tasks")
    shrunk = wait_until(lambda: (p := client.get_pool("ap")).current_dedicated_nodes == 0 and p,
                        what="the formula to remove the nodes")
    assert shrunk.target_dedicated_nodes == 0 and shrunk.auto_scale_run.error is None
    assert all(t.execution_info.result == "success" and t.execution_info.requeue_count == 0
               for t in client.list_tasks("j"))  # taskcompletion: none was interrupted


def test_formula_runs_every_interval(client: BatchClient, fast: BatchEmulator) -> None:
    _create(client, "ap", "$TargetDedicatedNodes = 0;",
            auto_scale_evaluation_interval=FIVE_MINUTES)
    first = client.get_pool("ap").auto_scale_run.timestamp
    later = wait_until(lambda: (r := client.get_pool("ap").auto_scale_run).timestamp > first
                       and r, what="the next evaluation")
    assert (later.timestamp - first).total_seconds() >= FAST * 0.9
    etag = client.get_pool("ap").etag
    fast.evaluate_autoscale_now("ap")  # the service's evaluations keep the ETag
    assert client.get_pool("ap").etag == etag


def test_enable_evaluate_disable(client: BatchClient, fast: BatchEmulator) -> None:
    make_pool(client, "p1", nodes=1)
    with pytest.raises(ResourceExistsError) as not_enabled:
        client.evaluate_pool_auto_scale("p1", m.BatchPoolEvaluateAutoScaleOptions(
            auto_scale_formula="$TargetDedicatedNodes = 1"))
    assert not_enabled.value.error.code == "OperationInvalidForCurrentState"
    etag = client.get_pool("p1").etag
    client.enable_pool_auto_scale("p1", m.BatchPoolEnableAutoScaleOptions(
        auto_scale_formula="$TargetDedicatedNodes = 2",
        auto_scale_evaluation_interval=FIVE_MINUTES))
    pool = wait_until(lambda: (p := client.get_pool("p1")).current_dedicated_nodes == 2 and p,
                      what="2 nodes")
    assert pool.enable_auto_scale and pool.etag != etag
    run = client.evaluate_pool_auto_scale("p1", m.BatchPoolEvaluateAutoScaleOptions(
        auto_scale_formula="$TargetDedicatedNodes=3"))
    # the string azure-batch's own recorded test expects
    assert run.results == "$TargetDedicatedNodes=3;$TargetLowPriorityNodes=0;" \
                          "$NodeDeallocationOption=requeue"
    assert run.error is None and client.get_pool("p1").target_dedicated_nodes == 2
    failing = client.evaluate_pool_auto_scale("p1", m.BatchPoolEvaluateAutoScaleOptions(
        auto_scale_formula="$x = 1; $TargetDedicatedNodes = $PendingTasks.GetSample("
                           "TimeInterval_Hour, 90);"))
    assert failing.error.code == "InsufficientSampleData" and failing.results.endswith("$x=1")
    assert "wanted 90%" in failing.error.error_values[0].value
    with pytest.raises(ResourceExistsError) as resize:
        client.begin_resize_pool("p1", m.BatchPoolResizeOptions(target_dedicated_nodes=1))
    assert resize.value.error.code == "OperationInvalidForCurrentState"
    client.disable_pool_auto_scale("p1")
    pool = client.get_pool("p1")
    assert pool.enable_auto_scale is False and pool.auto_scale_formula is None
    assert pool.auto_scale_run is None and pool.target_dedicated_nodes == 2
    wait_until(lambda: client.get_pool("p1").allocation_state == "steady", what="steady")
    client.begin_resize_pool("p1", m.BatchPoolResizeOptions(target_dedicated_nodes=1),
                             polling_interval=POLL).result()


ONE = "$TargetDedicatedNodes = 1"


@pytest.mark.parametrize(("formula", "extra", "code", "words"), [
    (ONE, {"target_dedicated_nodes": 1},
     "InvalidPropertyValue", "must not be specified when enableAutoScale is true"),
    (None, {}, "MissingRequiredProperty", "autoScaleFormula is required"),
    (ONE, {"auto_scale_evaluation_interval": datetime.timedelta(minutes=4)},
     "InvalidPropertyValue", "between PT5M and PT168H"),
    (ONE, {"auto_scale_evaluation_interval": datetime.timedelta(hours=169)},
     "InvalidPropertyValue", "between PT5M and PT168H"),
    ("$TargetDedicatedNodes = min($CPUPercent.GetSample(1))", {},
     "InvalidPropertyValue", "$CPUPercent, which the emulator does not evaluate"),
    ("$TargetDedicatedNodes = 1 +", {}, "AutoScalingFormulaSyntaxError", "Line 1, Col 28"),
    ("$a = 1;" + " " * 8192, {}, "AutoScaleFormulaTooLong", "8192"),
], ids=["targets", "no-formula", "below-PT5M", "above-PT168H", "not-emulated", "syntax", "long"])
def test_create_refusals(client: BatchClient, formula: str | None, extra: dict[str, object],
                         code: str, words: str) -> None:
    with pytest.raises(HttpResponseError) as info:
        _create(client, "ap", formula, **extra)
    assert info.value.status_code == 400 and info.value.error.code == code
    assert words in info.value.error.message
    assert list(client.list_pools()) == []


def test_formula_without_autoscale_is_refused(client: BatchClient) -> None:
    with pytest.raises(HttpResponseError) as info:
        client.create_pool(m.BatchPoolCreateOptions(
            id="p1", vm_size="standard_d2s_v3", virtual_machine_configuration=_vm(),
            target_dedicated_nodes=1, auto_scale_formula="$TargetDedicatedNodes = 1"))
    assert info.value.error.code == "InvalidPropertyValue"


def test_enable_refusals_without_fast_time(client: BatchClient) -> None:
    make_pool(client, "p1", nodes=1)
    with pytest.raises(HttpResponseError) as info:
        client.enable_pool_auto_scale("p1", m.BatchPoolEnableAutoScaleOptions(
            auto_scale_formula="$TargetDedicatedNodes = 1",
            auto_scale_evaluation_interval=datetime.timedelta(minutes=1)))
    assert info.value.error.code == "InvalidPropertyValue"
    assert "autoscale_min_interval" in info.value.error.message  # how to go faster in tests
    client.enable_pool_auto_scale("p1", m.BatchPoolEnableAutoScaleOptions(
        auto_scale_formula="$TargetDedicatedNodes = 1"))
    assert client.get_pool("p1").auto_scale_evaluation_interval == datetime.timedelta(minutes=15)
    with pytest.raises(HttpResponseError) as again:  # the service's 30 s between enables
        client.enable_pool_auto_scale("p1", m.BatchPoolEnableAutoScaleOptions(
            auto_scale_evaluation_interval=datetime.timedelta(minutes=6)), retry_total=0)
    assert again.value.status_code == 503
    assert again.value.error.code == "TooManyEnableAutoScaleRequests"


def test_enable_on_a_resizing_pool_is_refused(client: BatchClient) -> None:
    make_pool(client, "p1", nodes=1)
    make_job(client, "j1", "p1")
    client.create_task("j1", m.BatchTaskCreateOptions(id="t1", command_line=SLEEP.format(30)))
    wait_until(lambda: client.get_task("j1", "t1").state == "running", what="running")
    client.begin_resize_pool("p1", m.BatchPoolResizeOptions(  # resizing until t1 ends
        target_dedicated_nodes=0, node_deallocation_option="taskcompletion"))
    with pytest.raises(ResourceExistsError) as info:
        client.enable_pool_auto_scale("p1", m.BatchPoolEnableAutoScaleOptions(
            auto_scale_formula="$TargetDedicatedNodes = 1"))
    assert info.value.error.code == "PoolBeingResized"
    client.terminate_task("j1", "t1")


def test_loose_mode_stores_a_formula_it_cannot_evaluate() -> None:
    with BatchEmulator(loose=True, slots_per_node=4, path_prefix=PATH_PREFIX,
                       transition_delay=0.02, autoscale_min_interval=FAST) as emu:
        client = client_for(emu)
        _create(client, "ap", "$TargetDedicatedNodes = min($CPUPercent.GetSample(1));")
        run = client.get_pool("ap").auto_scale_run
        assert run.error.code == "NotImplemented"
        assert "$CPUPercent is not emulated" in run.error.error_values[0].value
        assert client.get_pool("ap").target_dedicated_nodes == 0


def test_admin_autoscale_routes(client: BatchClient, emulator: BatchEmulator) -> None:
    from emu_sdk_kit import admin as _admin

    assert _admin(emulator, "POST", "/_emulator/autoscale", {"min_interval": FAST})[0] == 204
    _create(client, "ap", "$TargetDedicatedNodes = 1;",
            auto_scale_evaluation_interval=FIVE_MINUTES)
    assert _admin(emulator, "POST", "/_emulator/pools/ap/evaluateautoscale")[0] == 204
    status, body = _admin(emulator, "POST", "/_emulator/pools/nope/evaluateautoscale")
    assert status == 404 and body["code"] == "PoolNotFound"
    assert _admin(emulator, "POST", "/_emulator/autoscale", {"min_interval": -1})[0] == 400
