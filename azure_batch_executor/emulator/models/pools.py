"""Batch pools and compute nodes: allocation and node state machines, BatchPool/BatchNode JSON.

Role: `Pool` keeps its definition, targets, `allocationState` (steady / resizing /
stopping, always present) and its nodes; `Node` is one local "VM": a root directory and
`taskSlotsPerNode` slots, with the node states of docs/dev/emulator-rest.md as data
(`Node.TRANSITIONS`). Which nodes to add or remove on a resize is decided here; the
backend applies the consequences to tasks.

Imports: the standard library, `..wire` and `.base`.
"""

from __future__ import annotations

import collections
import itertools
import uuid
from pathlib import Path
from typing import Any, ClassVar

from .. import wire
from .base import Entity

NODE_COUNT_KEYS = {
    "creating": "creating", "idle": "idle", "offline": "offline", "preempted": "preempted",
    "rebooting": "rebooting", "reimaging": "reimaging", "running": "running",
    "starting": "starting", "starttaskfailed": "startTaskFailed", "leavingpool": "leavingPool",
    "unknown": "unknown", "unusable": "unusable", "waitingforstarttask": "waitingForStartTask",
    "deallocated": "deallocated", "deallocating": "deallocating", "upgradingos": "upgradingOS",
}
SCHEDULABLE = frozenset({"idle", "running"})
_ip_counter = itertools.count(0)


class Node(Entity):
    # The node states (REST `BatchNodeState`): `creating` (the VM is obtained), `starting`
    # (the Batch agent starts on it), `waitingforstarttask` (a start task with
    # waitForSuccess runs), `idle` / `running` (schedulable), `starttaskfailed` (the start
    # task failed with waitForSuccess: unusable), `rebooting` (REST Compute Node - Reboot,
    # from idle or running only), `preempted` (spot), `leavingpool`; `unusable` (the
    # service cannot use the node: scripted by the admin API, models/account_ops.py, which
    # may also reboot a node the way the service does when it recovers one).
    TRANSITIONS: ClassVar[dict[str, frozenset[str]]] = {
        "creating": frozenset({"starting", "leavingpool"}),
        "starting": frozenset({"idle", "waitingforstarttask", "leavingpool", "preempted",
                               "unusable"}),
        "waitingforstarttask": frozenset({"idle", "starttaskfailed", "leavingpool",
                                          "preempted", "unusable", "rebooting"}),
        "starttaskfailed": frozenset({"leavingpool", "preempted", "unusable", "rebooting"}),
        "idle": frozenset({"running", "rebooting", "leavingpool", "preempted", "unusable"}),
        "running": frozenset({"idle", "rebooting", "leavingpool", "preempted", "unusable"}),
        "rebooting": frozenset({"starting", "leavingpool", "preempted"}),
        "preempted": frozenset({"starting", "leavingpool"}),
        "unusable": frozenset({"rebooting", "leavingpool", "preempted"}),
        "leavingpool": frozenset(),
    }

    def __init__(self, pool: Pool, dedicated: bool, now: float, data_dir: Path) -> None:
        suffix = "d" if dedicated else "p"
        super().__init__(f"tvmps_{uuid.uuid4().hex[:24]}_{suffix}", now, "creating")
        self.pool_id = pool.id
        self.dedicated = dedicated
        self.root = data_dir / pool.id / self.id  # AZ_BATCH_NODE_ROOT_DIR
        self.vm_size = pool.vm_size
        self.allocation_time = now
        self.last_boot_time = now
        n = next(_ip_counter)
        self.ip_address = f"10.0.{n // 250 % 250}.{n % 250 + 4}"
        self.scheduling_enabled = True
        self.runs: dict[str, int] = {}  # run id -> slots held (start task holds 0)
        self.task_runs: dict[str, tuple[str, str]] = {}  # run id -> (job id, task id)
        self.total_tasks_run = 0
        self.total_tasks_succeeded = 0
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=5)
        self.start_task_info: dict[str, Any] | None = None
        self.start_task_retries = 0
        self.pending: tuple[float, str] | None = None  # (deadline, next state)
        self.leaving_when_idle = False  # taskcompletion/retaineddata removal
        self.reboot_when_idle = False  # taskcompletion/retaineddata reboot

    @property
    def slots_used(self) -> int:
        return sum(self.runs.values())

    def free_slots(self, capacity: int) -> int:
        if self.state not in SCHEDULABLE or not self.scheduling_enabled \
                or self.leaving_when_idle or self.reboot_when_idle:
            return 0
        return capacity - self.slots_used

    def move(self, state: str, now: float) -> None:
        if state != self.state:
            self._move_to(state, now)

    def refresh_busy(self, now: float) -> None:
        """idle <-> running from the task runs it holds."""
        busy = bool(self.task_runs)
        if self.state == "idle" and busy:
            self.move("running", now)
        elif self.state == "running" and not busy:
            self.move("idle", now)

    def to_json(self, base_url: str, pool: Pool) -> dict[str, Any]:
        url = f"{base_url}/pools/{pool.id}/nodes/{self.id}"
        doc: dict[str, Any] = {
            "id": self.id,
            "url": url,
            "state": self.state,
            "schedulingState": "enabled" if self.scheduling_enabled else "disabled",
            "stateTransitionTime": wire.iso(self.state_transition_time),
            "lastBootTime": wire.iso(self.last_boot_time),
            "allocationTime": wire.iso(self.allocation_time),
            "ipAddress": self.ip_address,
            "affinityId": f"TVM:{self.id}",
            "vmSize": self.vm_size,
            "totalTasksRun": self.total_tasks_run,
            "runningTasksCount": len(self.task_runs),
            "runningTaskSlotsCount": self.slots_used,
            "totalTasksSucceeded": self.total_tasks_succeeded,
            "isDedicated": self.dedicated,
            "nodeAgentInfo": {"version": "1.0.0-emulator",
                              "lastUpdateTime": wire.iso(self.allocation_time)},
            "virtualMachineInfo": {"imageReference": dict(pool.image_reference)},
        }
        recent = [
            {"taskUrl": f"{base_url}/jobs/{job}/tasks/{task}", "jobId": job, "taskId": task,
             "taskState": "running"} for job, task in self.task_runs.values()
        ] + list(self.recent)
        if recent:
            doc["recentTasks"] = recent
        if pool.spec.get("startTask"):
            doc["startTask"] = pool.spec["startTask"]
        if self.start_task_info is not None:
            doc["startTaskInfo"] = dict(self.start_task_info)
        return doc


class Pool(Entity):
    TRANSITIONS: ClassVar[dict[str, frozenset[str]]] = {
        "active": frozenset({"deleting"}),
        "deleting": frozenset(),
    }
    ALLOCATION: ClassVar[dict[str, frozenset[str]]] = {
        "steady": frozenset({"resizing", "stopping"}),
        "resizing": frozenset({"steady", "stopping"}),
        "stopping": frozenset({"steady"}),
    }

    def __init__(self, spec: dict[str, Any], now: float) -> None:
        super().__init__(spec["id"], now, "active")
        self.spec = {k: v for k, v in spec.items() if k != "id"}
        self.seq = 0  # creation order (the paging cursor)
        self.target_dedicated = int(spec.get("targetDedicatedNodes", 0))
        self.target_low = int(spec.get("targetLowPriorityNodes", 0))
        self.resize_timeout = wire.parse_duration(spec.get("resizeTimeout") or "PT15M") or 900.0
        self.allocation_state = "resizing"
        self.allocation_state_transition_time = now
        self.resize_errors: list[dict[str, Any]] = []
        self.nodes: dict[str, Node] = {}
        self.pending: tuple[float, str] | None = None  # (deadline, action)
        self.deallocation = "requeue"

    @property
    def vm_size(self) -> str:
        return str(self.spec.get("vmSize", ""))

    @property
    def slots_per_node(self) -> int:
        return int(self.spec.get("taskSlotsPerNode", 1))

    @property
    def fill_type(self) -> str:
        policy = self.spec.get("taskSchedulingPolicy") or {}
        return str(policy.get("nodeFillType", "spread")).lower()

    @property
    def image_reference(self) -> dict[str, Any]:
        return dict((self.spec.get("virtualMachineConfiguration") or {})
                    .get("imageReference") or {})

    @property
    def has_containers(self) -> bool:
        vmc = self.spec.get("virtualMachineConfiguration") or {}
        return bool(vmc.get("containerConfiguration"))

    @property
    def start_task(self) -> dict[str, Any] | None:
        return self.spec.get("startTask")

    def begin_delete(self, now: float) -> None:
        self._move_to("deleting", now)
        self.target_dedicated = self.target_low = 0
        if self.allocation_state == "steady":
            self.set_allocation("resizing", now)

    def set_allocation(self, state: str, now: float) -> None:
        if state == self.allocation_state:
            return
        if state not in self.ALLOCATION[self.allocation_state]:
            raise RuntimeError(f"pool {self.id}: allocation {self.allocation_state} -> {state}")
        self.allocation_state = state
        self.allocation_state_transition_time = now

    def current(self, dedicated: bool) -> int:
        return sum(1 for n in self.nodes.values() if n.dedicated == dedicated)

    def plan_counts(self, quota: int) -> tuple[int, int, bool]:
        """Node counts to reach under the per-pool quota (dedicated first); over quota?"""
        dedicated = min(self.target_dedicated, quota)
        low = min(self.target_low, quota - dedicated)
        return dedicated, low, dedicated + low < self.target_dedicated + self.target_low

    def nodes_to_remove(self, dedicated: bool, count: int) -> list[Node]:
        """Prefer nodes doing nothing, then the least busy (the service's choice is opaque)."""
        candidates = [n for n in self.nodes.values()
                      if n.dedicated == dedicated and n.state != "leavingpool"
                      and not n.leaving_when_idle]
        candidates.sort(key=lambda n: (n.state in SCHEDULABLE, len(n.task_runs)))
        return candidates[:max(count, 0)]

    def to_json(self, base_url: str, casing: Any) -> dict[str, Any]:
        doc = self.base_json(f"{base_url}/pools/{self.id}")
        spec = dict(self.spec)
        policy = dict(spec.get("taskSchedulingPolicy") or {"nodeFillType": "spread"})
        if casing.realistic or "taskSchedulingPolicy" not in self.spec:
            policy["nodeFillType"] = casing(str(policy["nodeFillType"]).lower())
        spec["taskSchedulingPolicy"] = policy
        spec["resizeTimeout"] = wire.format_duration(self.resize_timeout)
        spec["targetDedicatedNodes"] = self.target_dedicated
        spec["targetLowPriorityNodes"] = self.target_low
        spec.setdefault("taskSlotsPerNode", 1)
        spec.setdefault("enableAutoScale", False)
        spec.setdefault("enableInterNodeCommunication", False)
        doc.update(spec)
        doc["allocationState"] = self.allocation_state
        doc["allocationStateTransitionTime"] = wire.iso(self.allocation_state_transition_time)
        doc["currentDedicatedNodes"] = self.current(True)
        doc["currentLowPriorityNodes"] = self.current(False)
        if self.resize_errors:
            doc["resizeErrors"] = [dict(e) for e in self.resize_errors]
        return doc

    def node_counts(self) -> dict[str, Any]:
        blocks = {}
        for name, dedicated in (("dedicated", True), ("lowPriority", False)):
            block = dict.fromkeys(NODE_COUNT_KEYS.values(), 0)
            for node in self.nodes.values():
                if node.dedicated == dedicated:
                    block[NODE_COUNT_KEYS[node.state]] += 1
            block["total"] = sum(block.values())
            blocks[name] = block
        return {"poolId": self.id, **blocks}
