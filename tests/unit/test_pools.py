"""Pools the executor creates and the wait for their nodes (issue 13), without a network:

- the settings (`max_nodes`, `idle_timeout`, `pool_start_timeout`, `pool_status_interval`)
  and when a created pool autoscales;
- the autoscale formula, run by the emulator's own evaluator on sample histories: nodes
  for the pending tasks, `max_nodes` at most, dedicated first, none after `idle_timeout`;
- `engine.pools.PoolWatcher` on a scripted port and a fake clock: the first INFO line, the
  status lines, the line when nodes are ready, final causes failing at once, the timeout,
  and the requests each check costs.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from support.batch_sdk_fake import FAKE_SETTINGS

from azure_batch_executor import constants as C
from azure_batch_executor.cloud.pools import autoscale_formula
from azure_batch_executor.cloud.ports import PoolStatus, ResizeError, StartTaskFailure
from azure_batch_executor.config import Settings
from azure_batch_executor.emulator.autoscale import Context, evaluate, parse
from azure_batch_executor.engine.pools import PoolWatcher
from azure_batch_executor.errors import (
    ConfigurationError,
    CoreQuotaError,
    PoolStartError,
    QuotaError,
)


def settings(**kw: Any) -> Settings:
    return Settings.resolve(env={}, **{**FAKE_SETTINGS, **kw})


# --- settings ---------------------------------------------------------------------------

def test_a_pool_on_an_account_autoscales_and_the_local_stack_keeps_its_size() -> None:
    assert settings().autoscale
    local = Settings.resolve(env={})
    assert local.local and not local.autoscale
    assert Settings.resolve(env={}, max_nodes=3).autoscale
    assert Settings.resolve(env={}, idle_timeout=120).autoscale


@pytest.mark.parametrize(("given", "caps", "most"), [
    ({}, (1, 0), 1),
    ({"max_nodes": 8}, (8, 0), 8),
    ({"dedicated_nodes": 2, "spot_nodes": 6}, (2, 6), 8),
    ({"spot_nodes": 5}, (0, 5), 5),
    ({"dedicated_nodes": 2, "spot_nodes": 30, "max_nodes": 10}, (2, 30), 10),
])
def test_node_counts_are_the_most_of_each_kind(given: dict[str, int], caps: tuple[int, int],
                                               most: int) -> None:
    s = settings(**given)
    assert (s.node_caps, s.most_nodes) == (caps, most)


def test_max_nodes_on_the_local_stack_is_not_sized_by_the_stack() -> None:
    s = Settings.resolve(env={}, max_nodes=5).with_local_stack(
        batch_account_url="http://127.0.0.1:1", batch_account_name="a",
        batch_account_key="a2V5", storage_connection_string="AccountName=a;AccountKey=a2V5",
        nodes=2, slots_per_node=2)
    assert (s.node_caps, s.most_nodes) == ((5, 0), 5)


@pytest.mark.parametrize(("given", "match"), [
    ({"max_nodes": 0}, "max_nodes=0: must be an int >= 1"),
    ({"max_nodes": 10, "dedicated_nodes": 2}, "max_nodes=10 is more than dedicated_nodes=2"),
    ({"idle_timeout": 10}, "idle_timeout=10: must be seconds >= 60"),
    ({"pool_start_timeout": 0}, "pool_start_timeout=0: must be seconds > 0"),
    ({"pool_status_interval": float("inf")}, "pool_status_interval=inf"),
])
def test_bad_scaling_settings_name_the_argument(given: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        settings(**given)


# --- the autoscale formula ----------------------------------------------------------------

def history(values: list[float], period: float = 30.0, now: float = 7200.0
            ) -> list[tuple[float, dict[str, float]]]:
    start = now - period * (len(values) - 1)
    return [(start + i * period, {"$PendingTasks": v}) for i, v in enumerate(values)]


def targets(s: Settings, pending: list[float]) -> tuple[int, int, str]:
    out = evaluate(parse(autoscale_formula(s)), Context(history=history(pending), now=7200.0))
    assert out.error is None, out.error
    return out.target_dedicated, out.target_low_priority, out.deallocation


def test_the_formula_is_in_the_emulated_subset_and_follows_the_pending_tasks() -> None:
    s = settings(max_nodes=4, task_slots_per_node=2)
    formula = parse(autoscale_formula(s))
    assert formula.not_emulated == ()
    window = int(s.idle_seconds / 30)  # samples in idle_timeout
    assert targets(s, [0.0]) == (1, 0, "taskcompletion")  # a new pool: one node at first
    assert targets(s, [5.0]) == (3, 0, "taskcompletion")  # ceil(5 / 2 slots)
    assert targets(s, [20.0] * window)[:2] == (4, 0)  # max_nodes
    busy_then_quiet = [3.0] + [0.0] * (window - 2)  # a task pending within idle_timeout
    assert targets(s, busy_then_quiet)[:2] == (2, 0)
    assert targets(s, [0.0] * (window + 1))[:2] == (0, 0)  # idle for idle_timeout: none


def test_the_formula_fills_dedicated_nodes_first_then_spot() -> None:
    s = settings(dedicated_nodes=1, spot_nodes=3)
    assert targets(s, [2.0])[:2] == (1, 1)
    assert targets(s, [9.0])[:2] == (1, 3)
    spot_only = settings(spot_nodes=2)
    assert targets(spot_only, [5.0])[:2] == (0, 2)


# --- the pool watcher ---------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedPool:
    """The pool side of a `BatchPort`: statuses set by the test, requests counted."""

    def __init__(self, nodes: dict[str, int], **status: Any) -> None:
        self.status = PoolStatus("p", nodes, **status)
        self.calls: Counter[str] = Counter()
        self.failure: StartTaskFailure | None = None
        self.elsewhere = 0

    def pool_status(self, full: bool = True) -> PoolStatus:
        self.calls["full" if full else "counts"] += 1
        return replace(self.status, full=full)

    def start_task_failure(self) -> StartTaskFailure | None:
        self.calls["start_task"] += 1
        return self.failure

    def nodes_elsewhere(self, dedicated: bool) -> int:
        self.calls["elsewhere"] += 1
        return self.elsewhere


def watcher(pool: ScriptedPool, clock: Clock, **kw: Any) -> PoolWatcher:
    s = settings(pool_id="p", pool_start_timeout=kw.pop("timeout", 600),
                 pool_status_interval=kw.pop("interval", 60), **kw)
    return PoolWatcher(pool, s, "job-1", clock=clock)  # type: ignore[arg-type]


def test_a_short_wait_is_not_worth_a_line(caplog) -> None:
    clock = Clock()
    pool = ScriptedPool({"starting": 1}, allocation_state="resizing", target_dedicated=1)
    w = watcher(pool, clock)
    with caplog.at_level(logging.INFO):
        w.check(1)
        assert w.due_in() == 1.0  # waiting: the next look comes soon
        clock.now += 1.0
        pool.status = replace(pool.status, nodes={"idle": 1})
        w.check(1)
    assert w.due_in() == 60  # nodes ready: the status interval
    assert caplog.text == ""  # nodes within the grace: nothing said


def test_usable_nodes_cost_one_request_per_status_interval(caplog) -> None:
    clock, pool = Clock(), ScriptedPool({"idle": 2})
    w = watcher(pool, clock)  # pool_status_interval 60 s
    with caplog.at_level(logging.INFO):
        w.check(3)
        clock.now += 59
        w.check(3)  # not due
        clock.now += 1
        w.check(3)
    assert pool.calls == {"counts": 2}
    assert caplog.text == ""


def test_waiting_says_so_then_a_status_line_per_interval_then_ready(caplog) -> None:
    clock = Clock()
    pool = ScriptedPool({"starting": 2}, allocation_state="resizing", target_dedicated=2)
    w = watcher(pool, clock, interval=30)
    with caplog.at_level(logging.INFO, logger="azure_batch_executor.engine.pools"):
        w.check(4)
        for _ in range(7):  # 70 s, a check every 10 s
            clock.now += C.HEALTH_CHECK_INTERVAL
            w.check(4)
        pool.status = replace(pool.status, nodes={"idle": 2}, allocation_state="steady")
        clock.now += C.HEALTH_CHECK_INTERVAL
        w.check(4)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == (
        "pool p: no node can run tasks yet (allocation resizing, 0 of 2 target node(s): "
        "2 starting); 4 task(s) of job job-1 wait. Status every 30s; the futures fail "
        "after 10m without a usable node (pool_start_timeout)")
    assert lines[1:3] == [  # said after 10 s (the grace is 5 s), then every 30 s
        "pool p: still no usable node after 40s: allocation resizing, 0 of 2 target "
        "node(s): 2 starting",
        "pool p: still no usable node after 1m10s: allocation resizing, 0 of 2 target "
        "node(s): 2 starting"]
    assert lines[3] == "pool p: 2 node(s) can run tasks, after 1m20s"
    assert len(lines) == 4


def test_the_timeout_fails_with_the_cause_batch_reports() -> None:
    clock = Clock()
    pool = ScriptedPool({"unusable": 1}, allocation_state="steady", target_dedicated=1)
    w = watcher(pool, clock, timeout=60, interval=20)
    w.check(1)
    with pytest.raises(PoolStartError) as info:
        for _ in range(10):
            clock.now += C.HEALTH_CHECK_INTERVAL
            w.check(1)
    error = info.value
    assert not isinstance(error, QuotaError)
    assert str(error).startswith(
        "no node of pool p could run the tasks of job job-1 after 1m (pool_start_timeout=60):"
        " 1 node(s) are unusable")
    assert "Fix: use another vm_size or image" in str(error)
    assert "az batch node list --pool-id p" in str(error)
    assert (error.pool_id, error.code, error.nodes, error.elapsed) == (
        "p", "unusable", {"unusable": 1}, 60.0)


def test_a_core_quota_of_zero_fails_at_once(caplog) -> None:
    clock = Clock()
    quota = ResizeError("AccountCoreQuotaReached", "The dedicated core quota of the account "
                        "(0 cores) is reached", {"CoreQuota": "0", "CoresInUse": "0"})
    pool = ScriptedPool({}, allocation_state="steady", target_dedicated=0,
                        resize_errors=(quota,))
    w = watcher(pool, clock)
    with caplog.at_level(logging.INFO), pytest.raises(CoreQuotaError) as info:
        w.check(2)
    error = info.value
    assert isinstance(error, QuotaError) and isinstance(error, PoolStartError)
    message = str(error)
    assert message.startswith("no node of pool p could run the tasks of job job-1: Batch "
                              "reports AccountCoreQuotaReached: The dedicated core quota")
    assert "az batch account show -n fake -g RESOURCE_GROUP --query dedicatedCoreQuota" \
        in message
    assert "Request quota increase" in message and "spot_nodes=" in message
    assert "Batch reports AccountCoreQuotaReached" in caplog.records[0].getMessage()
    assert pool.calls["elsewhere"] == 0  # the value said it


def test_a_core_quota_without_its_value_is_final_when_no_other_pool_holds_nodes() -> None:
    clock = Clock()
    quota = ResizeError("AccountLowPriorityCoreQuotaReached",
                        "The specified account has reached core quota")
    pool = ScriptedPool({}, allocation_state="steady", resize_errors=(quota,))
    pool.elsewhere = 3  # other pools hold Spot nodes: cores may come back
    w = watcher(pool, clock, timeout=30, spot_nodes=2)
    w.check(1)
    assert pool.calls["elsewhere"] == 1
    clock.now += C.HEALTH_CHECK_INTERVAL
    w.check(1)
    assert pool.calls["elsewhere"] == 1  # read once per wait
    with pytest.raises(CoreQuotaError, match=r"after 30s .*lowPriorityCoreQuota"):
        clock.now += 20
        w.check(1)
    alone = ScriptedPool({}, allocation_state="steady", resize_errors=(quota,))
    with pytest.raises(CoreQuotaError, match="pool p could run the tasks of job job-1: Batch"):
        watcher(alone, Clock(), spot_nodes=2).check(1)


def test_a_start_task_that_failed_on_every_node_fails_at_once_with_its_stderr() -> None:
    pool = ScriptedPool({"starttaskfailed": 2}, allocation_state="steady", target_dedicated=2)
    pool.failure = StartTaskFailure("tvm-1", 3, "FailureExitCode", "The start task exited "
                                    "with an exit code other than 0", "apt-get: not found\n")
    with pytest.raises(PoolStartError) as info:
        watcher(pool, Clock()).check(1)
    message = str(info.value)
    assert "the pool's start task failed on 2 node(s) (node tvm-1: exit code 3, " \
           "FailureExitCode: The start task exited" in message
    assert "az batch pool show --pool-id p --query startTask" in message
    assert message.endswith("start task stderr tail:\napt-get: not found")
    assert info.value.stderr_tail == "apt-get: not found\n"
    assert pool.calls["start_task"] == 1


def test_an_empty_fixed_pool_waits_then_names_the_resize() -> None:
    clock = Clock()
    pool = ScriptedPool({}, allocation_state="steady")
    w = watcher(pool, clock, timeout=15)
    w.check(1)
    clock.now += 20
    with pytest.raises(PoolStartError, match=r"the pool asks for no node .* az batch pool "
                                             r"resize --pool-id p --target-dedicated-nodes N"):
        w.check(1)


def test_the_progress_postfix_shows_the_wait_while_nodes_start() -> None:
    clock = Clock()
    pool = ScriptedPool({"starting": 2}, allocation_state="resizing", target_dedicated=2)
    w = watcher(pool, clock, interval=30)
    assert w.postfix == ""
    w.check(4)
    clock.now += C.HEALTH_CHECK_INTERVAL
    w.check(4)
    assert w.postfix == ("waiting for nodes 10s: allocation resizing, 0 of 2 target node(s): "
                         "2 starting")
    pool.status = replace(pool.status, nodes={"idle": 2}, allocation_state="steady")
    clock.now += C.HEALTH_CHECK_INTERVAL
    w.check(4)
    assert w.postfix == ""  # nodes ready: the bar shows the count only
