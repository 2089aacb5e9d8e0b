"""Account quotas and scripted allocation trouble: what a real Batch account meets as it grows.

Role: `Quotas` holds the account's limits and the failures a test scripted, all off by
default: pools (create refused with 409 `PoolQuotaReached`), dedicated and
low-priority/Spot cores (a resize that would pass them ends `steady` with fewer nodes and
a `resizeErrors` entry `AccountCoreQuotaReached` / `AccountLowPriorityCoreQuotaReached`),
the next N node allocations failing (`AllocationFailed`, or `AllocationTimedout`), and the
next N nodes to boot coming up `unusable`. The active-job quota is
`Settings.max_active_jobs` (409 `ActiveJobAndScheduleQuotaReached`, in `job_ops`).
`vm_cores` reads a VM size's vCPUs from its name; `limit_allocation` is what a resize
step may still add (called by `models/pool_ops.py`). `models/account_ops.py` applies the
rest; the admin API and `BatchEmulator` methods (`account.py`) change them at run time.

Sources: quotas and their defaults, "Batch service quotas and limits"
(https://learn.microsoft.com/azure/batch/batch-quota-limit); the codes, "Batch status and
error codes" (https://learn.microsoft.com/rest/api/batchservice/batch-status-and-error-codes)
and "Azure Batch pool resizing failure"
(https://learn.microsoft.com/troubleshoot/azure/hpc/batch/azure-batch-pool-resizing-failure):
dedicated nodes count against the dedicated core quota, Spot/low-priority ones against a
single low-priority core quota; a pool that cannot reach its target goes `steady` with
resize errors.

Imports: the standard library only (model objects are duck-typed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ALLOCATION_CODES = ("AllocationFailed", "AllocationTimedout")
_VM_SIZE = re.compile(r"^(?:standard|basic)_([a-z]+)(\d+)", re.IGNORECASE)


def vm_cores(vm_size: str) -> int:
    """vCPUs of a VM size, from its name (`standard_d2s_v3` 2, `Standard_NC24ads_A100_v4`
    24, `Standard_E4-2s_v3` 4: constrained-vCPU sizes count their full size); 1 when the
    name does not say."""
    m = _VM_SIZE.match(vm_size.strip())
    return max(1, int(m.group(2))) if m else 1


@dataclass
class Scripted:
    """The next `remaining` nodes (of a pool, or any) meet this trouble."""

    remaining: int
    pool_id: str | None = None  # None: any pool
    code: str = "AllocationFailed"
    message: str | None = None

    def matches(self, pool_id: str) -> bool:
        return self.pool_id is None or self.pool_id.lower() == pool_id.lower()


@dataclass
class Quotas:
    """Limits (None: unlimited, the default) and scripted trouble."""

    pools: int | None = None
    dedicated_cores: int | None = None
    low_priority_cores: int | None = None
    allocation_failures: list[Scripted] = field(default_factory=list)
    unusable_boots: list[Scripted] = field(default_factory=list)

    def take(self, queue: list[Scripted], pool_id: str, wanted: int) -> list[Scripted]:
        """Consume up to `wanted` uses of the scripted entries matching `pool_id`; one
        entry per use."""
        used: list[Scripted] = []
        for entry in list(queue):
            while len(used) < wanted and entry.remaining > 0 and entry.matches(pool_id):
                entry.remaining -= 1
                used.append(entry)
            if entry.remaining <= 0:
                queue.remove(entry)
        return used

    def to_json(self) -> dict[str, Any]:
        return {
            "pools": self.pools, "dedicated_cores": self.dedicated_cores,
            "low_priority_cores": self.low_priority_cores,
            "allocation_failures": [vars(s) for s in self.allocation_failures],
            "unusable_boots": [vars(s) for s in self.unusable_boots]}


def check_pool_quota(quotas: Quotas, pool_count: int) -> str | None:
    """The refusal message when one more pool would pass the pool quota."""
    if quotas.pools is not None and pool_count >= quotas.pools:
        return (f"The account's pool quota is {quotas.pools} and it has {pool_count} pools "
                "(pools being deleted count until they are gone). Delete a pool, or raise the "
                "quota: BatchEmulator(pool_quota=...) or POST /_emulator/quotas.")
    return None


def cores_in_use(pools: dict[str, Any], dedicated: bool) -> int:
    """Cores held by the nodes of every pool (leaving nodes hold theirs until gone)."""
    return sum(vm_cores(p.vm_size) for p in pools.values()
               for n in p.nodes.values() if n.dedicated == dedicated)


def limit_allocation(quotas: Quotas, pools: dict[str, Any], pool: Any, want_dedicated: int,
                     want_low: int) -> tuple[int, int]:
    """Node counts a resize step of `pool` may reach (never below what it has): the core
    quotas cap growth, and scripted allocation failures withhold nodes. Each cause adds
    one entry to `pool.resize_errors`."""
    out = []
    for dedicated, want in ((True, want_dedicated), (False, want_low)):
        have = sum(1 for n in pool.nodes.values() if n.dedicated == dedicated
                   and n.state != "leavingpool" and not n.leaving_when_idle)
        if want <= have:
            out.append(want)
            continue
        kind = "dedicated" if dedicated else "low-priority"
        quota = quotas.dedicated_cores if dedicated else quotas.low_priority_cores
        if quota is not None:
            per_node = vm_cores(pool.vm_size)
            used = cores_in_use(pools, dedicated)
            room = max(0, (quota - used) // per_node)
            if want - have > room:
                code = "AccountCoreQuotaReached" if dedicated else \
                    "AccountLowPriorityCoreQuotaReached"
                pool.resize_errors.append({
                    "code": code,
                    "message": f"The {kind} core quota of the account ({quota} cores) is "
                               f"reached: {used} in use, {pool.vm_size} needs {per_node} per "
                               f"node, so {room} more of the {want - have} asked could be "
                               "allocated.",
                    "values": [{"name": "CoreQuota", "value": str(quota)},
                               {"name": "CoresInUse", "value": str(used)}]})
                want = have + room
        failed = quotas.take(quotas.allocation_failures, pool.id, want - have)
        if failed:
            code = failed[0].code
            message = failed[0].message or (
                f"Desired number of {kind} nodes could not be allocated"
                + (" as the resize timeout was reached" if code == "AllocationTimedout" else ""))
            pool.resize_errors.append({
                "code": code, "message": message,
                "values": [{"name": "Reason", "value": "Injected by the emulator's "
                                                       "allocation failures"},
                           {"name": "NodesNotAllocated", "value": str(len(failed))}]})
            want -= len(failed)
        out.append(want)
    return out[0], out[1]
