"""What real accounts meet, on the model side: quotas, allocation trouble, node trouble,
throttling and autoscale scheduling, driven by hand (no HTTP, a fake clock for autoscale).
The SDK-level behaviour is in tests/integration/emulator/test_emu_sdk_account.py and
test_emu_sdk_autoscale.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from emulator_fakes import World

from azure_batch_executor.emulator import exceptions as exc
from azure_batch_executor.emulator.quotas import Quotas, Scripted, vm_cores
from azure_batch_executor.emulator.throttling import Throttler


def _pool(world: World, pool_id: str = "p1") -> object:
    with world.backend.op(wake=False):
        return world.backend.pool(pool_id)


@pytest.mark.parametrize(("size", "cores"), [
    ("standard_d2s_v3", 2), ("Standard_NC24ads_A100_v4", 24), ("STANDARD_A1_V2", 1),
    ("Standard_E4-2s_v3", 4), ("Standard_HB120rs_v3", 120), ("weird", 1)])
def test_vm_cores_from_the_size_name(size: str, cores: int) -> None:
    assert vm_cores(size) == cores


def test_dedicated_core_quota_caps_growth_with_a_resize_error(
        make_world: Callable[..., World]) -> None:
    world = make_world(quotas=Quotas(dedicated_cores=5))
    world.pool("a", dedicated=2)  # 2 x 2 cores
    world.pool("b", dedicated=2)  # 1 core left: not a whole standard_d2s_v3
    a, b = _pool(world, "a"), _pool(world, "b")
    assert a.current(True) == 2 and not a.resize_errors  # type: ignore[attr-defined]
    assert b.current(True) == 0 and b.allocation_state == "steady"  # type: ignore[attr-defined]
    error = b.resize_errors[0]  # type: ignore[attr-defined]
    assert error["code"] == "AccountCoreQuotaReached" and "5 cores" in error["message"]


def test_low_priority_core_quota(make_world: Callable[..., World]) -> None:
    world = make_world(quotas=Quotas(low_priority_cores=2))
    world.pool("p1", dedicated=1, targetLowPriorityNodes=3)
    pool = _pool(world)
    assert (pool.current(True), pool.current(False)) == (1, 1)  # type: ignore[attr-defined]
    assert pool.resize_errors[0]["code"] == "AccountLowPriorityCoreQuotaReached"  # type: ignore[attr-defined]


def test_scripted_allocation_failures_are_used_up(world: World) -> None:
    world.settings.quotas.allocation_failures.append(
        Scripted(1, "p1", "AllocationTimedout"))
    world.pool("p1", dedicated=3)
    pool = _pool(world)
    assert pool.current(True) == 2 and pool.allocation_state == "steady"  # type: ignore[attr-defined]
    error = pool.resize_errors[0]  # type: ignore[attr-defined]
    assert error["code"] == "AllocationTimedout" and "resize timeout" in error["message"]
    assert world.settings.quotas.allocation_failures == []
    world.do("resize_pool", "p1", {"targetDedicatedNodes": 3})
    world.tick()
    assert pool.current(True) == 3 and not pool.resize_errors  # type: ignore[attr-defined]


def test_pool_quota(make_world: Callable[..., World]) -> None:
    world = make_world(quotas=Quotas(pools=1))
    world.pool("p1")
    with pytest.raises(exc.PoolExists):
        world.pool("P1")  # the existing id is the first problem
    with pytest.raises(exc.PoolQuotaReached, match="pool quota is 1"):
        world.pool("p2")


def test_unusable_node_is_not_scheduled_until_the_service_reboots_it(world: World) -> None:
    world.pool("p1", dedicated=1)
    world.job()
    world.task("t1", command="sleep 30")
    world.tick()
    task = world.get("t1")
    assert task.state == "running"
    node_id = task.node_id
    world.do("make_node_unusable", "p1", node_id)
    world.tick()
    assert task.state == "active" and task.requeue_count == 1
    with world.backend.op(wake=False):
        node = world.backend.node("p1", node_id)[1]
    assert node.state == "unusable"
    with pytest.raises(exc.OperationInvalidForCurrentState):
        world.do("make_node_unusable", "p1", node_id)
    world.do("service_reboot_node", "p1", node_id)
    assert node.state == "rebooting"
    world.tick(5)
    assert node.state == "running" and task.state == "running"


def test_nodes_can_boot_unusable(world: World) -> None:
    world.settings.quotas.unusable_boots.append(Scripted(1, None))
    world.pool("p1", dedicated=2)
    states = sorted(n.state for n in _pool(world).nodes.values())  # type: ignore[attr-defined]
    assert states == ["idle", "unusable"]


# --- throttling ------------------------------------------------------------------------------


def test_throttler_refuses_matching_requests_for_a_duration() -> None:
    now = [100.0]
    throttler = Throttler(clock=lambda: now[0])
    assert throttler.check("GET", "get_job", lambda: "/jobs/j1") is None  # off
    throttler.add(2.0, operations=["create_task_collection"])
    err = throttler.check("POST", "create_task_collection", lambda: "/jobs/j1/addtaskcollection")
    assert err is not None and err.status == 429 and err.code == "TooManyRequests"
    assert "Retry-After" not in err.headers
    assert throttler.check("GET", "get_job", lambda: "/jobs/j1") is None
    throttler.add(5.0, status=503, retry_after=0.5, method="get", path_contains="/jobs/j2")
    assert throttler.check("GET", "get_job", lambda: "/jobs/j1") is None
    busy = throttler.check("GET", "get_job", lambda: "/jobs/j2")
    assert busy is not None and busy.code == "ServerBusy" and busy.headers["Retry-After"] == "0.5"
    now[0] += 2.5  # the first throttle is over
    assert throttler.check("POST", "create_task_collection", lambda: "/jobs/j1/x") is None
    stats = throttler.stats()
    assert stats["refused"] == 2 and len(stats["active"]) == 1
    assert {(c["route"], c["count"]) for c in stats["counts"]} == {
        ("create_task_collection", 1), ("get_job", 1)}
    throttler.clear()
    assert throttler.stats() == {"refused": 0, "counts": [], "active": []}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"seconds": 0}, "seconds"), ({"seconds": 1, "status": 500}, "429"),
    ({"seconds": 1, "operations": ["create_tasks"]}, "unknown operation"),
    ({"seconds": 1, "retry_after": -1}, "retry_after")])
def test_throttle_arguments_are_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Throttler().add(**kwargs)  # type: ignore[arg-type]


# --- autoscale scheduling --------------------------------------------------------------------


def test_autoscale_evaluates_on_its_interval_and_follows_the_tasks(
        make_world: Callable[..., World]) -> None:
    world = make_world(autoscale_min_interval=1.0)  # 1 s stands for PT5M
    now = [1000.0]
    world.backend.now = lambda: now[0]
    formula = "$TargetDedicatedNodes = min(3, max($PendingTasks.GetSample(1)));"
    world.do("create_pool", {"id": "p1", "vmSize": "standard_d2s_v3", "enableAutoScale": True,
                             "autoScaleFormula": formula,
                             "autoScaleEvaluationInterval": "PT10M"})
    world.tick()
    pool = _pool(world)
    assert pool.spec["autoScaleEvaluationInterval"] == "PT10M"  # type: ignore[attr-defined]
    assert pool.target_dedicated == 0 and "timestamp" in pool.spec["autoScaleRun"]  # type: ignore[attr-defined]
    world.job()
    for i in range(5):
        world.task(f"t{i}", command="sleep 30")
    now[0] += 1.0  # half the interval: samples, no evaluation
    world.tick()
    assert pool.target_dedicated == 0  # type: ignore[attr-defined]
    now[0] += 1.0  # PT10M at 1 s per PT5M
    world.tick(4)
    assert pool.target_dedicated == 3 and pool.current(True) == 3  # type: ignore[attr-defined]
    with pytest.raises(exc.OperationInvalidForCurrentState, match="disable it first"):
        world.do("resize_pool", "p1", {"targetDedicatedNodes": 1})
    world.do("disable_autoscale", "p1")
    assert pool.spec["enableAutoScale"] is False and "autoScaleRun" not in pool.spec  # type: ignore[attr-defined]
    world.do("resize_pool", "p1", {"targetDedicatedNodes": 1})


def test_enable_autoscale_rules(make_world: Callable[..., World]) -> None:
    world = make_world(autoscale_min_interval=1.0)
    now = [1000.0]
    world.backend.now = lambda: now[0]
    world.pool("p1", dedicated=1)
    with pytest.raises(exc.MissingRequiredProperty):
        world.do("enable_autoscale", "p1", None, "PT5M")
    with pytest.raises(exc.OperationInvalidForCurrentState):
        world.do("evaluate_autoscale", "p1", "$TargetDedicatedNodes = 1")
    world.do("enable_autoscale", "p1", "$TargetDedicatedNodes = 2", None)
    with pytest.raises(exc.InvalidPropertyValue, match="PT5M"):  # checked before the gap
        world.do("enable_autoscale", "p1", None, "PT1M")
    with pytest.raises(exc.TooManyEnableAutoScaleRequests):  # 30 s: 0.1 s here
        world.do("enable_autoscale", "p1", None, "PT6M")
    now[0] += 0.11
    world.do("enable_autoscale", "p1", None, "PT6M")
    run = world.do("evaluate_autoscale", "p1", "$TargetDedicatedNodes = 7")
    assert run["results"].startswith("$TargetDedicatedNodes=7;")
    assert _pool(world).target_dedicated == 2  # type: ignore[attr-defined]
    with pytest.raises(exc.AutoScalingFormulaSyntaxError):
        world.do("evaluate_autoscale", "p1", "$TargetDedicatedNodes = ")
