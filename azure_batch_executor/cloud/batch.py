"""The Batch side: pool, job, task collections, task counts, listing, terminate/delete.

Role: one `BatchService` per executor wraps the official SDK's `BatchClient`
(its own retries off; every request retried by `_retry.RetryPolicy` and
counted). It speaks JSON dicts to the SDK, compares enum strings with
``str(x).lower()`` (the real service sends PascalCase where the SDK expects
lowercase), calls ``create_task_collection`` itself (<= 100 tasks, deterministic
ids, ``TaskExists`` means accepted), and terminates jobs with an options dict
(``begin_terminate_job`` fails client-side without one). The pool's requests are
`pools.PoolRequests`; `completions.CompletionFeed` finds the newly completed tasks of
a job at O(1) requests per tick. Task definitions are built in `taskdef`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from .. import constants as C
from ..config import Settings, iso_duration
from ..errors import ConfigurationError, QuotaError, quota_fix
from .codes import JobGone, error_code, lower, service_message
from .pools import PoolRequests
from .ports import (
    AddResult,
    CompletedTask,
    JobRecord,
    ListedTask,
    PreparationFailure,
    TaskCounts,
)
from .retry import RequestStats, RetryPolicy, http_transport

log = logging.getLogger(__name__)


class BatchService(PoolRequests):
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
    def create_job(self, job_id: str, environment: Mapping[str, str] | None = None,
                   preparation: Mapping[str, Any] | None = None,
                   max_parallel_tasks: int | None = None) -> None:
        """Create the job; `environment`: variables every task of the job gets (the job's
        common environment settings); `preparation`: its job preparation task (JSON);
        `max_parallel_tasks`: the most of its tasks Batch runs at once (the job's
        ``maxParallelTasks``, REST "Job - Add": "The maximum number of tasks that can be
        executed in parallel for the job"; None: unlimited, the pool's slots bound them)."""
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
        if max_parallel_tasks is not None:
            body["maxParallelTasks"] = max_parallel_tasks
        try:
            self._call("batch.create_job", self.client.create_job, body)
        except HttpResponseError as exc:
            if error_code(exc) != "activejobandschedulequotareached":
                raise
            raise QuotaError(
                f"the Batch account {self._account} has reached its quota of active jobs and "
                f"job schedules (ActiveJobAndScheduleQuotaReached: {service_message(exc)}), "
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
        return self._listing(job_id, since, "state eq 'completed'")

    def transitions_since(self, job_id: str, since: dt.datetime | None) -> list[CompletedTask]:
        """Like `completed_since`, with the tasks that started running after `since` too
        (their `state` is "running"): one listing shows both the calls that started and
        those that ended (OData ``or``, as in "Create queries to list Batch resources
        efficiently", learn.microsoft.com/azure/batch/batch-efficient-list-queries)."""
        return self._listing(job_id, since, "(state eq 'running' or state eq 'completed')")

    def _listing(self, job_id: str, since: dt.datetime | None, flt: str) -> list[CompletedTask]:
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
            out += [_listed_task(t, CompletedTask, default_state="completed") for t in page]
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

    # ------------------------------------------------------------------ reattach and jobs
    def job_record(self, job_id: str) -> JobRecord | None:
        """The job's state, creation time and pool (one request); None when the account
        has no job of that id."""
        try:
            job = self._call("batch.get_job", self.client.get_job, job_id,
                             select=list(_JOB_FIELDS))
        except HttpResponseError as exc:
            if error_code(exc) == "jobnotfound" or exc.status_code == 404:
                return None
            raise
        return _job_record(job)

    def list_jobs(self) -> list[JobRecord]:
        """Every job of the account (one listing, paged)."""
        def listing() -> list[Any]:
            return list(self.client.list_jobs(select=list(_JOB_FIELDS),
                                              max_results=C.LIST_PAGE_SIZE))

        return [_job_record(j) for j in self._call("batch.list_jobs", listing)]

    def job_task_counts(self, job_id: str) -> TaskCounts:
        """The job's tasks by state, with succeeded and failed (one request)."""
        counts = self._call("batch.task_counts", self.client.get_job_task_counts, job_id)
        c = counts.task_counts
        return TaskCounts(int(c.active), int(c.running), int(c.completed), int(c.succeeded),
                          int(c.failed))

    def list_job_tasks(self, job_id: str) -> list[ListedTask]:
        """Every task of the job, in any state, with its displayName and its last attempt's
        execution info (one listing, a request per page)."""
        pages = self.client.list_tasks(
            job_id, select=["id", "displayName", "state", "stateTransitionTime",
                            "executionInfo", "nodeInfo"],
            max_results=C.LIST_PAGE_SIZE,
        ).by_page()
        out: list[ListedTask] = []
        while True:
            page = self._retry.call(_UNCOUNTED, "", _next_page, pages)
            if page is None:
                break
            self._stats.add("batch.list")
            out += [_listed_task(t) for t in page]
        return out

    def close(self) -> None:
        self.client.close()


_UNCOUNTED = RequestStats()


def _next_page(pages: Any) -> list[Any] | None:
    page = next(pages, None)
    return None if page is None else list(page)


_JOB_FIELDS = ("id", "state", "creationTime", "poolInfo", "executionInfo")


def _job_record(job: Any) -> JobRecord:
    info = job.execution_info
    pool = (job.pool_info.pool_id if job.pool_info else None) or (
        info.pool_id if info else None)
    return JobRecord(job.id, lower(job.state) if job.state else "", job.creation_time, pool)


Listed = TypeVar("Listed", bound=CompletedTask)


def _listed_task(t: Any, kind: type[Listed] = ListedTask,  # type: ignore[assignment]
                 default_state: str = "") -> Listed:
    """A listed SDK task as a `CompletedTask` (or `ListedTask`, with its displayName)."""
    info = t.execution_info
    failure = info.failure_info if info else None
    extra = {"display_name": str(t.display_name or "")} if kind is ListedTask else {}
    return kind(
        task_id=t.id,
        transition_time=t.state_transition_time,
        result=lower(info.result) if info and info.result else "",
        exit_code=info.exit_code if info else None,
        failure_code=str(failure.code) if failure and failure.code else None,
        failure_message=str(failure.message) if failure and failure.message else None,
        start_time=info.start_time if info else None,
        end_time=info.end_time if info else None,
        retry_count=int(info.retry_count or 0) if info else 0,
        requeue_count=int(info.requeue_count or 0) if info else 0,
        node_id=t.node_info.node_id if t.node_info else None,
        state=lower(t.state) if t.state else default_state,
        **extra,
    )
