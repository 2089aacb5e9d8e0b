"""The Batch side: pool, job, task collections, task counts, listing, terminate/delete.

Role: one `BatchService` per executor wraps the official SDK's `BatchClient`
(its own retries off; every request retried by `_retry.RetryPolicy` and
counted). It speaks JSON dicts to the SDK, compares enum strings with
``str(x).lower()`` (the real service sends PascalCase where the SDK expects
lowercase), calls ``create_task_collection`` itself (<= 100 tasks, deterministic
ids, ``TaskExists`` means accepted), and terminates jobs with an options dict
(``begin_terminate_job`` fails client-side without one). `CompletionFeed` finds
the newly completed tasks of a job at O(1) requests per tick. Task definitions are
built in `taskdef`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest

from .. import constants as C
from ..config import Settings, human_duration, iso_duration
from ..errors import ConfigurationError, QuotaError, quota_fix
from .codes import error_code
from .ports import (
    AddResult,
    BatchPort,
    CompletedTask,
    EnsuredPool,
    PoolStatus,
    PreparationFailure,
    ResizeError,
    StartTaskFailure,
)
from .retry import RequestStats, RetryPolicy, http_transport, naming_credentials

log = logging.getLogger(__name__)


def lower(value: Any) -> str:
    """An SDK enum or raw string, lowercased: the service may send PascalCase the SDK's
    case-sensitive enums do not recognise (then the SDK leaves a plain str)."""
    return str(getattr(value, "value", value)).lower()


class BatchService:
    """The executor's Batch account (a `ports.BatchPort`): counted, retried SDK calls with
    JSON bodies. `client` is the SDK's `BatchClient` for the settings unless one is given
    (a test's stand-in of it)."""

    def __init__(self, settings: Settings, stats: RequestStats, retry: RetryPolicy,
                 client: Any = None) -> None:
        self._settings = settings
        self._stats = stats
        self._retry = retry
        if client is not None:
            self.client = client
            return
        url = str(settings.batch_account_url)
        credential: Any
        if settings.batch_account_key:
            credential = AzureNamedKeyCredential(
                str(settings.batch_account_name), settings.batch_account_key
            )
        else:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        self.client = BatchClient(url, credential, retry_total=0,
                                  api_version=C.BATCH_API_VERSION,
                                  transport=http_transport(C.IO_THREADS + 4))

    def __repr__(self) -> str:
        return f"BatchService(url={self._settings.batch_account_url!r})"

    def _call(self, kind: str, fn: Any, *a: Any, **kw: Any) -> Any:
        return self._retry.call(self._stats, kind, fn, *a, **kw)

    def _auth_error(self, exc: HttpResponseError) -> ConfigurationError:
        variable = (
            f"{C.ENV_BATCH_ACCOUNT_NAME} and {C.ENV_BATCH_ACCOUNT_KEY}"
            if self._settings.batch_account_key
            else f"{C.ENV_BATCH_ACCOUNT_URL} and your Entra ID login (az login)"
        )
        code = error_code(exc) or exc.status_code
        return ConfigurationError(f"the Batch account refused the credentials ({code}); "
                                  f"check {variable}")

    # ------------------------------------------------------------------ pool and job
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
                f"(PoolQuotaReached: {_service_message(exc)}), so pool {s.pool_id} could not "
                f"be created; {quota_fix('PoolQuotaReached', self._account)}",
                code="PoolQuotaReached", account=self._account)
        if code == "poolbeingdeleted":
            return ConfigurationError(
                f"the pool {s.pool_id} is being deleted (PoolBeingDeleted): wait until it is "
                f"gone (az batch pool show --pool-id {s.pool_id}) or pass another pool_id")
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

    def create_job(self, job_id: str, environment: Mapping[str, str] | None = None,
                   preparation: Mapping[str, Any] | None = None) -> None:
        """Create the job; `environment`: variables every task of the job gets (the job's
        common environment settings); `preparation`: its job preparation task (JSON)."""
        body: dict[str, Any] = {
            "id": job_id, "poolInfo": {"poolId": self._settings.pool_id},
            "onAllTasksComplete": "noaction", "onTaskFailure": "noaction",
            "constraints": {"maxWallClockTime": iso_duration(self._settings.job_max_wall_clock),
                            "maxTaskRetryCount": self._settings.max_task_retries},
        }
        if environment:
            body["commonEnvironmentSettings"] = [{"name": k, "value": v}
                                                 for k, v in environment.items()]
        if preparation:
            body["jobPreparationTask"] = dict(preparation)
        try:
            self._call("batch.create_job", self.client.create_job, body)
        except HttpResponseError as exc:
            if error_code(exc) != "activejobandschedulequotareached":
                raise
            raise QuotaError(
                f"the Batch account {self._account} has reached its quota of active jobs and "
                f"job schedules (ActiveJobAndScheduleQuotaReached: {_service_message(exc)}), "
                f"so job {job_id} could not be created; "
                f"{quota_fix('ActiveJobAndScheduleQuotaReached', self._account)}",
                code="ActiveJobAndScheduleQuotaReached", account=self._account) from exc

    def terminate_job(self, job_id: str, reason: str = "UserTerminate") -> None:
        # The SDK's LRO poller would GET the job every `polling_interval` s in a daemon
        # thread; we do not wait for it (the job ends on its own).
        self._call("batch.terminate_job", self.client.begin_terminate_job, job_id,
                   {"terminateReason": reason}, polling_interval=1)

    def terminate_task(self, job_id: str, task_id: str) -> None:
        """Terminate one task; a task already completed (409 TaskCompleted) is not an error."""
        try:
            self._call("batch.terminate_task", self.client.terminate_task, job_id, task_id)
        except HttpResponseError as exc:
            if error_code(exc) not in ("taskcompleted", "tasknotfound", "jobcompleted"):
                raise

    def delete_job(self, job_id: str) -> None:
        """Delete the job and its tasks (not waited for, like `terminate_job`)."""
        self._call("batch.delete_job", self.client.begin_delete_job, job_id, polling_interval=1)

    def delete_pool(self) -> None:
        self._call("batch.delete_pool", self.client.begin_delete_pool,
                   self._settings.pool_id, polling_interval=1)

    def check_alive(self, job_id: str) -> None:
        """Raise if the job is no longer active or the pool is gone (a health check)."""
        job = self._call("batch.get_job", self.client.get_job, job_id, select=["id", "state"])
        state = lower(job.state)
        if state != "active":
            raise JobGone(f"job {job_id} is {state}")
        pool = self._call("batch.get_pool", self.client.get_pool, self._settings.pool_id,
                          select=["id", "state"])
        if lower(pool.state) != "active":
            raise JobGone(f"pool {self._settings.pool_id} is {lower(pool.state)}")

    # ------------------------------------------------------------------ the pool's nodes
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

    # ------------------------------------------------------------------ tasks
    def add_collection(self, job_id: str, tasks: Sequence[str]) -> list[AddResult]:
        """Add <= 100 tasks (their JSON texts, from `taskdef`) in one request; TaskExists
        counts as accepted.

        The SDK's ``create_task_collection`` would JSON-encode a body it is given; the tasks
        are already JSON text, so the request is built here and sent through the SDK client's
        own pipeline (`BatchClient.send_request`: SharedKey or Entra ID signing, the typed
        errors of the SDK); its reply is read as plain JSON, not into models.
        """
        body = ('{"value":[' + ",".join(tasks) + "]}").encode("utf-8")
        reply = self._call("batch.add", self._post_collection, job_id, body)
        out = []
        for r in reply.get("value") or []:
            status = lower(r.get("status"))
            error = r.get("error") or {}
            code = str(error.get("code") or "")
            message = error.get("message") or ""
            if isinstance(message, dict):
                message = message.get("value", "")
            if status == "success" or code.lower() == "taskexists":
                out.append(AddResult(r["taskId"], True, False))
            elif status == "servererror":
                out.append(AddResult(r["taskId"], False, True, code, str(message)))
            else:
                out.append(AddResult(r["taskId"], False, False, code, str(message)))
        return out

    def _post_collection(self, job_id: str, body: bytes) -> dict[str, Any]:
        request = HttpRequest(
            "POST", f"/jobs/{quote(job_id, safe='')}/addtaskcollection",
            params={"api-version": C.BATCH_API_VERSION},
            headers={"content-type": "application/json; odata=minimalmetadata",
                     "accept": "application/json"},
            content=body)
        response = self.client.send_request(request)
        response.raise_for_status()  # only if the SDK's error policy let one through
        reply: dict[str, Any] = json.loads(response.content)
        return reply

    def task_counts(self, job_id: str) -> tuple[int, int, int]:
        """(active, running, completed) task counts of the job: one request."""
        counts = self._call("batch.task_counts", self.client.get_job_task_counts, job_id)
        c = counts.task_counts
        return int(c.active), int(c.running), int(c.completed)

    def completed_since(self, job_id: str, since: dt.datetime | None) -> list[CompletedTask]:
        """Completed tasks whose state changed after `since` (all completed when None), with
        their last attempt's times, retry and requeue counts and node (for the usage)."""
        flt = "state eq 'completed'"
        if since is not None:
            stamp = since.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            flt += f" and stateTransitionTime gt DateTime'{stamp}'"
        pages = self.client.list_tasks(
            job_id, filter=flt,
            select=["id", "state", "stateTransitionTime", "executionInfo", "nodeInfo"],
            max_results=C.LIST_PAGE_SIZE,
        ).by_page()
        out: list[CompletedTask] = []
        while True:  # a request per page actually fetched (the end of the pages costs none)
            page = self._retry.call(_UNCOUNTED, "", _next_page, pages)
            if page is None:
                break
            self._stats.add("batch.list")
            for t in page:
                info = t.execution_info
                failure = info.failure_info if info else None
                out.append(CompletedTask(
                    task_id=t.id,
                    transition_time=t.state_transition_time,
                    result=lower(info.result) if info and info.result else "",
                    exit_code=info.exit_code if info else None,
                    failure_code=str(failure.code) if failure and failure.code else None,
                    failure_message=str(failure.message) if failure and failure.message
                    else None,
                    start_time=info.start_time if info else None,
                    end_time=info.end_time if info else None,
                    retry_count=int(info.retry_count or 0) if info else 0,
                    requeue_count=int(info.requeue_count or 0) if info else 0,
                    node_id=t.node_info.node_id if t.node_info else None,
                ))
        return out

    def preparation_failures(self, job_id: str) -> list[PreparationFailure]:
        """The nodes whose job preparation task failed for `job_id`, with the tail of its
        stderr (one listing; one file read per failed node)."""
        def listing() -> list[Any]:
            return list(self.client.list_job_preparation_and_release_task_status(job_id))

        out = []
        for entry in self._call("batch.prep_status", listing):
            info = entry.job_preparation_task_execution_info
            if info is None or lower(info.state) != "completed" or lower(info.result) != "failure":
                continue
            failure = info.failure_info
            out.append(PreparationFailure(
                node_id=entry.node_id, exit_code=info.exit_code,
                failure_code=failure.code if failure else None,
                failure_message=failure.message if failure else None,
                stderr_tail=self._node_file_tail(entry.pool_id, entry.node_id,
                                                 f"{info.task_root_directory}/stderr.txt")))
        return out

    def _node_file_tail(self, pool_id: str, node_id: str, path: str, nbytes: int = 4096
                        ) -> str:
        try:
            data = b"".join(self._call("batch.node_file", self.client.download_node_file,
                                       pool_id, node_id, path))
        except HttpResponseError:
            return ""
        return data[-nbytes:].decode("utf-8", errors="replace")

    def close(self) -> None:
        self.client.close()


_UNCOUNTED = RequestStats()
ENSURE_POOL_TRIES = 3  # reads and creates of a pool that other clients create or delete


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


def _service_message(exc: HttpResponseError) -> str:
    """The service's message of an error reply, its first line."""
    message = getattr(getattr(exc, "error", None), "message", None) or exc.message or ""
    return str(message).splitlines()[0] if message else type(exc).__name__





def _next_page(pages: Any) -> list[Any] | None:
    page = next(pages, None)
    return None if page is None else list(page)


class JobGone(Exception):
    """The job is no longer active or the pool was deleted."""


class CompletionFeed:
    """Finds the newly completed tasks of one job at O(1) requests per tick, never
    re-listing every completed task.

    Idle: one request (the job's task counts). When the completed count moved: one listing
    of the tasks completed since a watermark (the latest stateTransitionTime seen, minus a
    safety overlap for listing lag), deduplicated by id. While results flow (`flowing`,
    the last listing found new tasks) the count is skipped: the listing is the one request.
    If the counts ever show more completed tasks than were seen, the overlap widens, and
    after a few such ticks one full listing settles it. Completions never depend on the
    count alone: every `LIST_EVERY`-th quiet tick lists instead of counting (the tasks
    completed since the watermark minus the wide overlap: one short page when nothing was
    missed), so a count that lags or never moves hides nothing for long.
    """

    OVERLAP = dt.timedelta(seconds=2)
    WIDE_OVERLAP = dt.timedelta(seconds=60)
    LIST_EVERY = 10  # quiet ticks (the count unchanged) between two safety listings

    def __init__(self, batch: BatchPort, job_id: str) -> None:
        self._batch = batch
        self._job_id = job_id
        self._seen: set[str] = set()
        self._watermark: dt.datetime | None = None
        self._last_completed = 0
        self._deficit_ticks = 0
        self._quiet_ticks = 0
        self.flowing = False

    def poll(self) -> list[CompletedTask]:
        completed: int | None = None
        safety = False
        if not self.flowing:
            if self._quiet_ticks >= self.LIST_EVERY - 1:
                safety = True  # this tick lists whatever the count would say
            else:
                completed = self._batch.task_counts(self._job_id)[2]
                if completed == self._last_completed and len(self._seen) >= completed:
                    self._quiet_ticks += 1
                    return []
        self._quiet_ticks = 0
        since = None
        if self._watermark is not None and self._deficit_ticks <= 5:
            wide = safety or self._deficit_ticks > 0
            since = self._watermark - (self.WIDE_OVERLAP if wide else self.OVERLAP)
        tasks = self._batch.completed_since(self._job_id, since)
        new = [t for t in tasks if t.task_id not in self._seen]
        for t in tasks:
            self._seen.add(t.task_id)
            if t.transition_time and (self._watermark is None
                                      or t.transition_time > self._watermark):
                self._watermark = t.transition_time
        if completed is not None:
            self._last_completed = completed
            self._deficit_ticks = self._deficit_ticks + 1 if len(self._seen) < completed else 0
        self.flowing = bool(new)
        return new
