"""The pool side of the Batch service: creating or reusing the pool, and reading its nodes.

Role: `PoolRequests`, a part of `batch.BatchService` (its mixin): read-then-create the
pool (bounded tries, quota errors that name the quota), its JSON body with the autoscale
formula and the metadata marking it as this package's, the check that an existing pool
can serve the settings, and the reads of its nodes (`pool_status`, start-task failures,
nodes of other pools). `autoscale_formula` and `pool_metadata` are its module functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from .. import constants as C
from ..config import Settings, human_duration
from ..errors import ConfigurationError, QuotaError, quota_fix
from .codes import error_code, lower, service_message
from .ports import EnsuredPool, PoolStatus, ResizeError, StartTaskFailure
from .retry import naming_credentials

log = logging.getLogger(__name__)


class PoolRequests:
    """The pool requests of `batch.BatchService` (which gives `_settings`, `client`,
    `_call`, `_auth_error` and `_node_file_tail`)."""

    _settings: Settings
    client: Any
    _call: Callable[..., Any]
    _auth_error: Callable[[HttpResponseError], ConfigurationError]
    _node_file_tail: Callable[..., str]

    def _get_pool(self, pool_id: str, select: list[str] | None = None) -> Any:
        """The pool, or None when it does not exist; refused credentials name the variables."""
        with naming_credentials(self._auth_error):
            try:
                return self._call("batch.get_pool", self.client.get_pool, pool_id,
                                  select=select)
            except ResourceNotFoundError:
                return None

    def pool_exists(self, pool_id: str | None = None) -> bool:
        """Whether the pool (default: the settings' pool) exists: one GET, 404 meaning no
        (the SDK's own ``pool_exists`` raises on 404)."""
        return self._get_pool(pool_id or self._settings.pool_id, select=["id"]) is not None

    def ensure_pool(self, registries: Sequence[Mapping[str, Any]] = ()) -> EnsuredPool:
        """Create the pool if absent; return its task-slot capacity (its most nodes x slots)
        and whether this call created it.

        `registries`: credentials (``registryServer``, ``username``, ``password``) of the
        private container registries a new pool pulls ``container_image`` from. At most
        `ENSURE_POOL_TRIES` reads and creates: a pool another client created meanwhile
        (409 ``PoolExists``) is read again; the account's pool quota (409
        ``PoolQuotaReached``) is a `QuotaError`, a pool being deleted a
        `ConfigurationError`, both naming the fix."""
        s = self._settings
        for _ in range(ENSURE_POOL_TRIES):
            pool = self._get_pool(s.pool_id)
            if pool is not None:
                return EnsuredPool(self._existing_capacity(pool), created=False)
            try:
                self._call("batch.create_pool", self.client.create_pool,
                           self.pool_body(registries))
            except HttpResponseError as exc:
                if error_code(exc) == "poolexists":
                    continue  # created meanwhile by another client: read it
                raise self._pool_refused(exc) from exc
            self._log_created(registries)
            return EnsuredPool(max(1, s.most_nodes * s.slots_per_node), created=True)
        raise ConfigurationError(
            f"the pool {s.pool_id} was refused as existing {ENSURE_POOL_TRIES} times but could "
            f"not be read: it is probably being deleted; wait until it is gone (az batch pool "
            f"show --pool-id {s.pool_id}) or pass another pool_id")

    def _log_created(self, registries: Sequence[Mapping[str, Any]]) -> None:
        s = self._settings
        registry = "".join(f", private registry {r['registryServer']}" for r in registries)
        if s.autoscale:
            dedicated, spot = s.node_caps
            log.info("created pool %s: %s nodes with %d slots each, autoscaled on the pending "
                     "tasks up to %d (%d dedicated, %d spot) and to none after %s without any%s",
                     s.pool_id, s.vm_size, s.slots_per_node, s.most_nodes, dedicated, spot,
                     human_duration(s.idle_seconds), registry)
        else:
            dedicated, spot = s.pool_nodes
            log.info("created pool %s: %d dedicated + %d spot nodes of %s, %d slots each%s",
                     s.pool_id, dedicated, spot, s.vm_size, s.slots_per_node, registry)

    def _existing_capacity(self, pool: Any) -> int:
        """The task slots an existing pool offers (used as it is): its target nodes, or for
        an autoscaling pool made by this package the most nodes its formula asks."""
        self._check_existing_pool(pool)
        slots = pool.task_slots_per_node or 1
        nodes = (pool.target_dedicated_nodes or 0) + (pool.target_low_priority_nodes or 0)
        if pool.enable_auto_scale:
            most = pool_metadata(pool).get(C.POOL_MAX_NODES_KEY, "")
            nodes = int(most) if most.isdigit() else nodes
            log.info("pool %s exists and autoscales: used as it is (up to %d nodes by its "
                     "formula), its settings were not changed", pool.id, nodes)
        else:
            log.info("pool %s exists: used as it is, its settings were not changed", pool.id)
        return max(1, nodes * slots)

    def _pool_refused(self, exc: HttpResponseError) -> Exception:
        """The error for a refused pool creation: a quota or a pool being deleted named with
        the fix; anything else as it came."""
        s = self._settings
        code = error_code(exc)
        if code == "poolquotareached":
            return QuotaError(
                f"the Batch account {self._account} has reached its quota of pools "
                f"(PoolQuotaReached: {service_message(exc)}), so pool {s.pool_id} could not "
                f"be created; {quota_fix('PoolQuotaReached', self._account)}",
                code="PoolQuotaReached", account=self._account)
        if code == "poolbeingdeleted":
            return ConfigurationError(
                f"the pool {s.pool_id} is being deleted (PoolBeingDeleted): wait until it is "
                f"gone (az batch pool show --pool-id {s.pool_id}) or pass another pool_id")
        if code == "invalidpropertyvalue" and _names_vm_size(exc):
            return ConfigurationError(
                f"Batch refused to create pool {s.pool_id} (InvalidPropertyValue: "
                f"{service_message(exc)}): vm_size={s.vm_size!r} (POOL_VM_SIZE for the "
                f"SuperBatch client) is not a size Batch offers in this region; list those it "
                f"does with: az batch location list-skus --location REGION -o table, and pass "
                f"one as vm_size (or the pool_id of an existing pool)")
        return exc

    @property
    def _account(self) -> str:
        return self._settings.batch_account

    def _check_existing_pool(self, pool: Any) -> None:
        """An existing pool that cannot serve these settings is an error naming what differs
        and the fix, never a silent mismatch (a container image asked of a pool that runs
        none, or runs another)."""
        image = self._settings.container_image
        if not image:
            return
        vm = getattr(pool, "virtual_machine_configuration", None)
        containers = getattr(vm, "container_configuration", None)
        fix = (f"pass another pool_id (a new pool is created with the image), or delete this "
               f"one: az batch pool delete --pool-id {pool.id}")
        if containers is None:
            raise ConfigurationError(
                f"container_image={image!r} was asked, but the existing pool {pool.id} has no "
                f"container configuration (its nodes run no containers); {fix}")
        names = list(getattr(containers, "container_image_names", None) or [])
        if names and image not in names:
            raise ConfigurationError(
                f"container_image={image!r} was asked, but the existing pool {pool.id} "
                f"prefetches {', '.join(names)}: its nodes would pull the image at every "
                f"task's start; {fix}")

    def pool_body(self, registries: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
        """The new pool's JSON; `registries` are added when the pool runs containers. It is
        tagged in its metadata as created by this package; it autoscales
        (`autoscale_formula`) or has a fixed size as `Settings.autoscale` says."""
        s = self._settings
        vm: dict[str, Any] = {
            "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts",
                               "sku": "server", "version": "latest"},
            "nodeAgentSKUId": "batch.node.ubuntu 24.04",
        }
        if s.container_image:
            vm["imageReference"] = {"publisher": "microsoft-dsvm", "offer": "ubuntu-hpc",
                                    "sku": "2204", "version": "latest"}
            vm["nodeAgentSKUId"] = "batch.node.ubuntu 22.04"
            vm["containerConfiguration"] = {"type": "dockerCompatible",
                                            "containerImageNames": [s.container_image]}
            if registries:
                vm["containerConfiguration"]["containerRegistries"] = [
                    dict(r) for r in registries]
        body: dict[str, Any] = {
            "id": s.pool_id, "vmSize": s.vm_size, "virtualMachineConfiguration": vm,
            "taskSlotsPerNode": s.slots_per_node,
            "taskSchedulingPolicy": {"nodeFillType": "spread"},
            "metadata": [{"name": C.POOL_CREATOR[0], "value": C.POOL_CREATOR[1]},
                         {"name": C.POOL_MAX_NODES_KEY, "value": str(s.most_nodes)}],
        }
        if s.autoscale:
            body.update(enableAutoScale=True, autoScaleFormula=autoscale_formula(s),
                        autoScaleEvaluationInterval=C.AUTOSCALE_INTERVAL)
        else:
            body["targetDedicatedNodes"], body["targetLowPriorityNodes"] = s.pool_nodes
        return body

    def delete_pool(self) -> None:
        self._call("batch.delete_pool", self.client.begin_delete_pool,
                   self._settings.pool_id, polling_interval=1)

    def pool_status(self, full: bool = True) -> PoolStatus | None:
        """The pool's node counts by state (one request: list_pool_node_counts); `full`
        adds the pool's allocation state, targets, resize errors and autoscale run (one
        GET). None when a full read finds no pool."""
        pool_id = self._settings.pool_id

        def counts() -> list[Any]:
            return list(self.client.list_pool_node_counts(filter=f"poolId eq '{pool_id}'"))

        nodes: dict[str, int] = {}
        for row in self._call("batch.node_counts", counts):
            for kind in (row.dedicated, row.low_priority):
                for state, count in (kind or {}).items():
                    if state != "total" and count:
                        nodes[state.lower()] = nodes.get(state.lower(), 0) + int(count)
        if not full:
            return PoolStatus(pool_id, nodes)
        pool = self._get_pool(pool_id, select=[
            "id", "allocationState", "vmSize", "targetDedicatedNodes", "targetLowPriorityNodes",
            "enableAutoScale", "autoScaleRun", "resizeErrors"])
        if pool is None:
            return None
        run_error = getattr(pool.auto_scale_run, "error", None)
        return PoolStatus(
            pool_id, nodes, full=True,
            allocation_state=lower(pool.allocation_state) if pool.allocation_state else "",
            target_dedicated=pool.target_dedicated_nodes or 0,
            target_spot=pool.target_low_priority_nodes or 0,
            autoscale=bool(pool.enable_auto_scale),
            autoscale_error=(f"{run_error.code}: {run_error.message}" if run_error else ""),
            resize_errors=tuple(
                ResizeError(str(e.code or ""), str(e.message or ""),
                            {str(v.name): str(v.value) for v in e.error_values or []})
                for e in pool.resize_errors or []),
            vm_size=str(pool.vm_size or ""))

    def start_task_failure(self) -> StartTaskFailure | None:
        """A node of the pool whose start task failed, with its stderr tail (one listing of
        one node, one file read), or None."""
        pool_id = self._settings.pool_id

        def first() -> Any:
            return next(iter(self.client.list_nodes(
                pool_id, filter="state eq 'starttaskfailed'", select=["id", "startTaskInfo"],
                max_results=1)), None)

        node = self._call("batch.list_nodes", first)
        if node is None:
            return None
        info = node.start_task_info
        failure = getattr(info, "failure_info", None)
        return StartTaskFailure(
            node_id=node.id, exit_code=getattr(info, "exit_code", None),
            failure_code=getattr(failure, "code", None),
            failure_message=getattr(failure, "message", None),
            stderr_tail=self._node_file_tail(pool_id, node.id, "startup/stderr.txt",
                                             C.STDERR_TAIL_BYTES))

    def nodes_elsewhere(self, dedicated: bool) -> int:
        """Dedicated (or Spot) nodes that the account's other pools hold (one listing): the
        cores they would give back."""
        field = "currentDedicatedNodes" if dedicated else "currentLowPriorityNodes"

        def pools() -> list[Any]:
            return list(self.client.list_pools(select=["id", field]))

        return sum((p.current_dedicated_nodes if dedicated else p.current_low_priority_nodes)
                   or 0 for p in self._call("batch.list_pools", pools)
                   if p.id != self._settings.pool_id)


ENSURE_POOL_TRIES = 3  # reads and creates of a pool that other clients create or delete

def _names_vm_size(exc: HttpResponseError) -> bool:
    """Whether an InvalidPropertyValue reply to a pool creation names vmSize as the property
    (its ``PropertyName`` detail), or names no property at all (then vmSize is the likely one:
    the executor builds the rest of the pool's body itself)."""
    try:
        body = exc.response.text() if exc.response is not None else ""
    except Exception:  # noqa: BLE001 - a body that cannot be read: judge by the message
        body = ""
    text = f"{exc} {body}".lower()
    return "vmsize" in text or "propertyname" not in text


def autoscale_formula(settings: Settings) -> str:
    """The autoscale formula of a pool the executor creates: as many nodes as the pending
    (active and running) tasks need, `Settings.most_nodes` at most (dedicated first, then
    Spot), none once no task was pending for `idle_timeout`; nodes leave once their tasks
    end (``taskcompletion``). While Batch holds less than 70% of the samples of that window
    (a new pool: the first minutes), the last sample counts, and one node at least.

    After Microsoft's task-driven formulas ("Sample autoscale formulas", "Example 3:
    Accounting for parallel tasks": the ``(x + slots - 1) / slots`` ceiling, fractions
    truncated), https://learn.microsoft.com/azure/batch/batch-automatic-scaling, in the
    subset the emulator evaluates (docs/dev/emulator-rest.md, "Autoscale formulas")."""
    dedicated, spot = settings.node_caps
    slots = settings.slots_per_node
    return "\n".join([
        "// azure-batch-executor: nodes for the pending tasks, none after idle_timeout",
        f"$idle = TimeInterval_Second * {settings.idle_seconds:g};",
        "$percent = $PendingTasks.GetSamplePercent($idle);",
        "$last = max($PendingTasks.GetSample(1));",
        "$tasks = $percent < 70 ? max($last, 1) : "
        "max($last, max($PendingTasks.GetSample($idle)));",
        f"$nodes = min({settings.most_nodes}, ($tasks + {slots - 1}) / {slots});",
        f"$TargetDedicatedNodes = min({dedicated}, $nodes);",
        f"$TargetLowPriorityNodes = min({spot}, $nodes - $TargetDedicatedNodes);",
        "$NodeDeallocationOption = taskcompletion;",
    ])


def pool_metadata(pool: Any) -> dict[str, str]:
    """A pool's metadata as a dict (name -> value)."""
    return {str(m.name): str(m.value) for m in getattr(pool, "metadata", None) or []}
