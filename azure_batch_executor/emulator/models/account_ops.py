"""What a real account meets, on the model side: the pool quota, unusable nodes, reboots.

Role: `AccountOps` extends the pool operations with the account's trouble that tests
script through the admin API (`account.py`): the pool quota on create (409
`PoolQuotaReached`), a node made `unusable` (its running tasks are requeued, it is never
scheduled, it stays until the service reboots it or a resize removes it), the next N
nodes to boot coming up `unusable`, and a reboot the service starts on its own (any live
node, including an unusable one: `rebooting` -> `starting` -> start task -> `idle`, as a
REST reboot with `requeue`). The core quotas and allocation failures act inside a resize
step (`quotas.limit_allocation`, called by `pool_ops`); the active-job quota in `job_ops`.

Sources: node states and unusable nodes, "Check for pool and node errors"
(https://learn.microsoft.com/azure/batch/batch-pool-node-error-checking): an `unusable`
node gets no tasks, and without `errors` it means the service cannot talk to the VM and
tries to recover it; quotas, https://learn.microsoft.com/azure/batch/batch-quota-limit.

Imports: the standard library, `..exceptions`, `..quotas` and sibling model modules.
"""

from __future__ import annotations

from typing import Any

from .. import exceptions as exc
from ..quotas import check_pool_quota
from .pool_ops import PoolOps
from .pools import Node, Pool

SERVICE_REBOOTABLE = frozenset({"idle", "running", "unusable", "starttaskfailed",
                                "waitingforstarttask"})
CAN_BECOME_UNUSABLE = frozenset({"starting", "waitingforstarttask", "starttaskfailed", "idle",
                                 "running"})


class AccountOps(PoolOps):
    def create_pool(self, spec: dict[str, Any]) -> Pool:
        if self.pools.get(str(spec.get("id", "")).lower()) is None:  # else PoolExists first
            message = check_pool_quota(self.settings.quotas, len(self.pools))
            if message is not None:
                raise exc.PoolQuotaReached(message, {"PoolQuota": str(self.settings.quotas.pools)})
        return super().create_pool(spec)

    # --- admin: node trouble ----------------------------------------------------------------

    def make_node_unusable(self, pool_id: str, node_id: str) -> Node:
        """The node goes `unusable`: running tasks requeued, start task stopped."""
        _, node = self.node(pool_id, node_id)
        if node.state not in CAN_BECOME_UNUSABLE:
            raise exc.OperationInvalidForCurrentState(
                f"Node {node.id} is {node.state}; only a starting, idle, running or "
                "start-task node can be made unusable.",
                {"NodeId": node.id, "NodeState": node.state})
        now = self.now()
        self._evict(node, "requeue", now, "The task was requeued because its compute node "
                                          "became unusable")
        node.pending = None
        node.reboot_when_idle = False
        node.move("unusable", now)
        return node

    def service_reboot_node(self, pool_id: str, node_id: str) -> Node:
        """The service reboots a node (host maintenance, recovering an unusable node): as a
        REST reboot with `requeue`, from any live state."""
        pool, node = self.node(pool_id, node_id)
        self._require_pool_open(pool)
        if node.state not in SERVICE_REBOOTABLE or node.leaving_when_idle:
            raise exc.OperationInvalidForCurrentState(
                f"Node {node.id} is {node.state} and cannot be rebooted now.",
                {"NodeId": node.id, "NodeState": node.state})
        node.reboot_when_idle = False
        self._reboot(node, "requeue", self.now())
        return node

    def _node_step(self, pool: Pool, node: Node, step: str, now: float) -> None:
        quotas = self.settings.quotas
        if step == "ready" and node.state == "starting" and quotas.unusable_boots \
                and quotas.take(quotas.unusable_boots, pool.id, 1):
            node.move("unusable", now)  # scripted: the node boots but cannot be used
            return
        super()._node_step(pool, node, step, now)
