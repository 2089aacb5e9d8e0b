"""Pool and node operations: create / update / resize / stop-resize / delete, node lifecycle.

Role: the pool half of the backend. Resizes are time-driven: an operation records a
pending step and `settle_pools` (called by the scheduler on every tick) performs due
steps: nodes are created (creating -> starting -> idle, via the start task when there
is one; `starting` lasts `allocation_delay` more, the VM's boot), surplus nodes leave per
`nodeDeallocationOption`, and `allocationState` returns to `steady`. A reboot
(`reboot_node`) or a preemption sends a node through `starting` again. The per-pool node
quota (`BatchEmulator(nodes=...)`) caps node counts with an `AccountCoreQuotaReached`
resize error.

Imports: the standard library, `..exceptions`, `..runner` (data classes) and sibling
model modules.
"""

from __future__ import annotations

from typing import Any

from .. import exceptions as exc
from .. import wire
from ..quotas import limit_allocation
from ..runner import RunOutcome
from .core import Run
from .pools import Node, Pool
from .prep_ops import PrepOps
from .runtime import make_node_dirs, start_task_run_spec
from .tasks import failure_info

REBOOTABLE = frozenset({"idle", "running"})  # REST Compute Node - Reboot


class PoolOps(PrepOps):
    # --- API operations -------------------------------------------------------------------

    def create_pool(self, spec: dict[str, Any]) -> Pool:
        pool_id = spec["id"]
        if not wire.valid_id(pool_id):
            raise _bad_id("id", pool_id)
        existing = self.pools.get(pool_id.lower())
        if existing is not None:
            if existing.state == "deleting":
                raise exc.PoolBeingDeleted(values={"PoolId": pool_id})
            raise exc.PoolExists(values={"PoolId": pool_id})
        if spec.get("targetDedicatedNodes") is None and spec.get("targetLowPriorityNodes") is None:
            raise exc.MissingRequiredProperty(
                "Either targetDedicatedNodes or targetLowPriorityNodes must be specified when "
                "enableAutoScale is false.", {"PropertyName": "targetDedicatedNodes"})
        self._check_slots(spec.get("taskSlotsPerNode"))
        now = self.now()
        pool = Pool(spec, now)
        pool.seq = self.next_seq()
        self.pools[pool.key] = pool
        pool.pending = (now + self.settings.transition_delay, "resize")
        return pool

    def _check_slots(self, slots: int | None) -> None:
        limit = self.settings.max_slots_per_node
        if slots is not None and slots > limit:
            raise exc.InvalidPropertyValue(
                f"The value provided for property 'taskSlotsPerNode' is invalid: {slots} exceeds "
                f"the maximum of {limit} task slots per node on this emulator (the local "
                "machine's limit, like min(4 x cores, 256) on Azure). Start the emulator with "
                f"--slots {slots} (BatchEmulator(slots_per_node={slots})) to allow it.",
                {"PropertyName": "taskSlotsPerNode", "Reason": f"Maximum is {limit}"})

    def _require_pool_open(self, pool: Pool) -> None:
        if pool.state == "deleting":
            raise exc.PoolBeingDeleted(values={"PoolId": pool.id})

    def update_pool(self, pool_id: str, changes: dict[str, Any]) -> Pool:
        pool = self.pool(pool_id)
        self._require_pool_open(pool)
        self._check_slots(changes.get("taskSlotsPerNode"))
        pool.spec.update(changes)
        pool.touch(self.now())
        return pool

    def resize_pool(self, pool_id: str, changes: dict[str, Any]) -> Pool:
        pool = self.pool(pool_id)
        self._require_pool_open(pool)
        if pool.allocation_state != "steady":
            raise exc.PoolBeingResized(values={"PoolId": pool.id})
        now = self.now()
        if "targetDedicatedNodes" in changes:
            pool.target_dedicated = changes["targetDedicatedNodes"]
        if "targetLowPriorityNodes" in changes:
            pool.target_low = changes["targetLowPriorityNodes"]
        if "resizeTimeout" in changes:
            pool.resize_timeout = wire.parse_duration(changes["resizeTimeout"]) or 900.0
        pool.deallocation = str(changes.get("nodeDeallocationOption", "requeue")).lower()
        pool.set_allocation("resizing", now)
        pool.touch(now)
        pool.pending = (now + self.settings.transition_delay, "resize")
        return pool

    def stop_resize(self, pool_id: str) -> Pool:
        pool = self.pool(pool_id)
        self._require_pool_open(pool)
        now = self.now()
        if pool.allocation_state == "resizing":
            pool.target_dedicated = pool.current(True)
            pool.target_low = pool.current(False)
        pool.set_allocation("stopping", now)
        pool.touch(now)
        pool.pending = (now + self.settings.transition_delay, "stopped")
        return pool

    def delete_pool(self, pool_id: str) -> None:
        pool = self.pool(pool_id)
        self._require_pool_open(pool)
        now = self.now()
        pool.begin_delete(now)
        for node in list(pool.nodes.values()):
            self._remove_node(pool, node, "requeue", now)
        pool.pending = (now + self.settings.transition_delay, "delete")

    # --- resize mechanics -----------------------------------------------------------------

    def _resize_step(self, pool: Pool, now: float) -> None:
        quota = self.settings.node_quota
        want_d, want_l, over = pool.plan_counts(quota)
        pool.resize_errors = []
        if over:
            pool.resize_errors.append({
                "code": "AccountCoreQuotaReached",
                "message": f"The pool asked for {pool.target_dedicated} dedicated and "
                           f"{pool.target_low} low-priority nodes but this emulator gives a pool "
                           f"at most {quota} nodes (--nodes / BatchEmulator(nodes=...)).",
                "values": [{"name": "NodeQuota", "value": str(quota)}],
            })
        # account core quotas and scripted allocation failures (quotas.py)
        want_d, want_l = limit_allocation(self.settings.quotas, self.pools, pool, want_d, want_l)
        for dedicated, want in ((True, want_d), (False, want_l)):
            alive = [n for n in pool.nodes.values() if n.dedicated == dedicated
                     and n.state != "leavingpool" and not n.leaving_when_idle]
            for _ in range(want - len(alive)):
                self._add_node(pool, dedicated, now)
            for node in pool.nodes_to_remove(dedicated, len(alive) - want):
                self._remove_node(pool, node, pool.deallocation, now)

    def _add_node(self, pool: Pool, dedicated: bool, now: float) -> Node:
        node = Node(pool, dedicated, now, self.settings.data_dir)
        pool.nodes[node.key] = node
        node.pending = (now + self.settings.transition_delay, "starting")
        root = node.root
        self.defer(lambda: make_node_dirs(root))
        return node

    def _remove_node(self, pool: Pool, node: Node, option: str, now: float) -> None:
        if option in ("taskcompletion", "retaineddata") and node.task_runs:
            node.leaving_when_idle = True
            return
        self._evict(node, option, now, "The task was terminated because its compute node "
                                       "was removed from the pool")
        node.move("leavingpool", now)
        node.pending = (now + self.settings.transition_delay, "remove")

    def _evict(self, node: Node, option: str, now: float, message: str) -> None:
        """The node stops everything it runs: its tasks are terminated (`terminate`) or
        requeued (any other option); start, preparation and release tasks are stopped."""
        for run_id in list(node.task_runs):
            run = self.runs.get(run_id)
            if run is None or run.disposition is not None:
                continue
            job = self.jobs.get(run.job_key)
            task = job.tasks.get(run.task_key) if job else None
            if task is None or task.run_id != run_id:
                continue
            if option == "terminate":
                self.terminate_task(task, now, message)
            else:
                self.requeue_task(task, now)
        for run_id, slots in list(node.runs.items()):
            if slots == 0:  # start, job preparation and release tasks
                self.stop_run(run_id, "terminated")

    def reboot_node(self, pool_id: str, node_id: str, option: str | None) -> Node:
        """REST Compute Node - Reboot: only an idle or running node; `nodeRebootOption`
        (default requeue) says what happens to its tasks, as a resize's deallocation."""
        pool, node = self.node(pool_id, node_id)
        self._require_pool_open(pool)
        if node.state not in REBOOTABLE or node.reboot_when_idle or node.leaving_when_idle:
            raise exc.OperationInvalidForCurrentState(
                f"Node {node.id} is {node.state}; only an idle or running node can be "
                "rebooted.", {"NodeId": node.id, "NodeState": node.state})
        now = self.now()
        node.touch(now)
        option = (option or "requeue").lower()
        if option in ("taskcompletion", "retaineddata") and node.task_runs:
            node.reboot_when_idle = True  # no new tasks; reboots when its tasks end
            return node
        self._reboot(node, option, now)
        return node

    def _reboot(self, node: Node, option: str, now: float) -> None:
        self._evict(node, option, now, "The task was terminated because its compute node "
                                       "was rebooted")
        self.node_restarted(node, reimage=False)
        node.move("rebooting", now)
        node.pending = (now + self.settings.transition_delay, "starting")

    def settle_pools(self, now: float) -> None:
        """Perform due pool and node steps (called on every scheduler tick)."""
        for pool in list(self.pools.values()):
            for node in list(pool.nodes.values()):
                if node.leaving_when_idle and not node.task_runs and node.state != "leavingpool":
                    node.leaving_when_idle = False
                    self._remove_node(pool, node, "requeue", now)
                if node.reboot_when_idle and not node.task_runs and node.state in REBOOTABLE:
                    node.reboot_when_idle = False
                    self._reboot(node, "requeue", now)
                if node.pending is not None and node.pending[0] <= now:
                    step = node.pending[1]
                    node.pending = None
                    self._node_step(pool, node, step, now)
            if pool.pending is not None and pool.pending[0] <= now:
                action = pool.pending[1]
                pool.pending = None
                if action == "resize" and pool.state == "active":
                    self._resize_step(pool, now)
                elif action == "delete":
                    retry = now + max(self.settings.transition_delay, 0.01)
                    pool.pending = (retry, "delete") if pool.nodes else None
                    if not pool.nodes:
                        del self.pools[pool.key]
                        self.remove_tree(self.settings.data_dir / pool.id)
                        continue
            leaving = any(n.state == "leavingpool" or n.leaving_when_idle
                          for n in pool.nodes.values())
            if pool.allocation_state != "steady" and pool.pending is None and not leaving:
                pool.set_allocation("steady", now)

    def _node_step(self, pool: Pool, node: Node, step: str, now: float) -> None:
        if step == "remove":
            pool.nodes.pop(node.key, None)
            self.remove_tree(node.root)
        elif step == "starting" and node.state in ("creating", "preempted", "rebooting"):
            node.move("starting", now)
            node.last_boot_time = now
            # the VM boots: `allocation_delay` (default 0) on top of the transition delay
            node.pending = (now + self.settings.transition_delay
                            + self.settings.allocation_delay, "ready")
        elif step == "ready" and node.state == "starting":
            start_task = pool.start_task
            if start_task:
                wait = start_task.get("waitForSuccess", True)
                node.move("waitingforstarttask" if wait else "idle", now)
                node.start_task_retries = 0
                self._launch_start_task(pool, node, start_task, now)
            else:
                node.move("idle", now)

    def _launch_start_task(self, pool: Pool, node: Node, start_task: dict[str, Any],
                           now: float) -> None:
        run_id = self.new_run_id(f"start:{pool.id}/{node.id}")
        self.runs[run_id] = Run(run_id, "start", pool.key, node.id, 0)
        node.runs[run_id] = 0
        info: dict[str, Any] = {"state": "running", "startTime": wire.iso(now),
                                "retryCount": node.start_task_retries}
        if node.start_task_retries:
            info["lastRetryTime"] = wire.iso(now)
        node.start_task_info = info
        spec = start_task_run_spec(
            run_id=run_id, base_env=self.base_env_for(start_task),
            account=(self.settings.account_name, self.settings.account_url),
            pool_id=pool.id, node_id=node.id, dedicated=node.dedicated, root=node.root,
            start_task=start_task)
        self.start_process(spec)

    def start_task_done(self, run: Run, outcome: RunOutcome, now: float) -> None:
        """REST `StartTask.waitForSuccess`: a non-zero exit is retried up to
        `maxTaskRetryCount`; still failing, a node waiting for it is `starttaskfailed`
        ("not usable for running Tasks"); without waitForSuccess the failure changes
        nothing. Pre-processing failures are not retried."""
        pool = self.pools.get(run.pool_key)
        node = pool.nodes.get(run.node_id.lower()) if pool else None
        if pool is None or node is None or run.disposition is not None:
            return
        start_task = pool.start_task or {}
        ok = outcome.reason == "exited" and outcome.exit_code == 0
        retries = int(start_task.get("maxTaskRetryCount", 0))
        if not ok and outcome.reason == "exited" and (
                retries == -1 or node.start_task_retries < retries):
            node.start_task_retries += 1
            self._launch_start_task(pool, node, start_task, now)
            return
        info = dict(node.start_task_info or {})
        info.update({"state": "completed", "endTime": wire.iso(now),
                     "result": "success" if ok else "failure"})
        if outcome.exit_code is not None:
            info["exitCode"] = outcome.exit_code
        if not ok:
            f = outcome.failure
            info["failureInfo"] = (failure_info(f.category, f.code, f.message) if f else
                                   failure_info("usererror", "FailureExitCode",
                                                f"The start task exited with exit code "
                                                f"{outcome.exit_code}"))
            info["failureInfo"]["category"] = self.casing(info["failureInfo"]["category"])
        node.start_task_info = info
        if node.state == "waitingforstarttask":
            node.move("idle" if ok else "starttaskfailed", now)

    # --- admin ----------------------------------------------------------------------------

    def preempt_node(self, pool_id: str, node_id: str) -> None:
        _, node = self.node(pool_id, node_id)
        if node.state in ("leavingpool", "preempted", "creating"):
            raise exc.OperationInvalidForCurrentState(
                f"Node {node.id} is {node.state} and cannot be preempted.")
        now = self.now()
        bump = self.settings.requeue_counts_preemption
        for run_id in list(node.task_runs):
            run = self.runs.get(run_id)
            job = self.jobs.get(run.job_key) if run else None
            task = job.tasks.get(run.task_key) if job and run else None
            if task is not None and task.run_id == run_id:
                self.requeue_task(task, now, bump=bump)
        for run_id, slots in list(node.runs.items()):
            if slots == 0:
                self.stop_run(run_id, "terminated")
        self.node_restarted(node, reimage=True)  # it comes back as a fresh VM
        node.move("preempted", now)
        node.start_task_info = None
        node.pending = (now + self.settings.transition_delay, "starting")


def _bad_id(prop: str, value: Any) -> exc.BatchError:
    return exc.InvalidPropertyValue(
        f"The value provided for property '{prop}' is invalid: ids must be 1-64 characters "
        f"of letters, digits, hyphens and underscores (got {value!r}).",
        {"PropertyName": prop, "PropertyValue": str(value)})
