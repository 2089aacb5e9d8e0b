"""Request/response plumbing shared by the resource handlers.

Role: the `Request` and `Response` value types the server and handlers exchange, and the
helpers every handler uses: parse and validate a JSON body against a `schema`, read
query options, shape entity responses (ETag / Last-Modified / Location headers in RFC
1123) and list responses (`odata.metadata`, `value`, self-contained `odata.nextLink`).

Imports: the standard library and sibling emulator modules (`exceptions`, `odata`,
`schema`, `wire`, `models`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .. import exceptions as exc
from .. import odata, paging, schema, versions, wire
from ..models import BatchBackend, Settings

MAX_BODY = 1024 * 1024  # bytes; the service answers 413 RequestBodyTooLarge at 1 MiB

TASK_FIELDS = frozenset({
    "id", "displayName", "url", "eTag", "lastModified", "creationTime", "exitConditions",
    "state", "stateTransitionTime", "previousState", "previousStateTransitionTime",
    "commandLine", "containerSettings", "resourceFiles", "outputFiles", "environmentSettings",
    "affinityInfo", "constraints", "requiredSlots", "userIdentity", "executionInfo", "nodeInfo",
    "multiInstanceSettings", "stats", "dependsOn", "applicationPackageReferences"})
TASK_NESTED = {
    "executionInfo": frozenset({"startTime", "endTime", "exitCode", "containerInfo",
                                "failureInfo", "retryCount", "lastRetryTime", "requeueCount",
                                "lastRequeueTime", "result"}),
    "nodeInfo": frozenset({"affinityId", "nodeUrl", "poolId", "nodeId", "taskRootDirectory",
                           "taskRootDirectoryUrl"}),
}
JOB_FIELDS = frozenset({
    "id", "displayName", "usesTaskDependencies", "url", "eTag", "lastModified", "creationTime",
    "state", "stateTransitionTime", "previousState", "previousStateTransitionTime", "priority",
    "allowTaskPreemption", "maxParallelTasks", "constraints", "jobManagerTask",
    "jobPreparationTask", "jobReleaseTask", "commonEnvironmentSettings", "poolInfo",
    "onAllTasksComplete", "onTaskFailure", "networkConfiguration", "metadata", "executionInfo",
    "stats"})
POOL_FIELDS = frozenset({
    "id", "displayName", "url", "eTag", "lastModified", "creationTime", "state",
    "stateTransitionTime", "allocationState", "allocationStateTransitionTime", "vmSize",
    "virtualMachineConfiguration", "resizeTimeout", "resizeErrors", "currentDedicatedNodes",
    "currentLowPriorityNodes", "targetDedicatedNodes", "targetLowPriorityNodes",
    "enableAutoScale", "autoScaleFormula", "autoScaleEvaluationInterval", "autoScaleRun",
    "enableInterNodeCommunication", "networkConfiguration", "startTask",
    "applicationPackageReferences", "taskSlotsPerNode", "taskSchedulingPolicy", "userAccounts",
    "metadata", "stats", "mountConfiguration", "identity", "upgradePolicy"})
NODE_FIELDS = frozenset({
    "id", "url", "state", "schedulingState", "stateTransitionTime", "lastBootTime",
    "allocationTime", "ipAddress", "ipv6Address", "affinityId", "vmSize", "totalTasksRun",
    "runningTasksCount", "runningTaskSlotsCount", "totalTasksSucceeded", "recentTasks",
    "startTask", "startTaskInfo", "errors", "isDedicated", "endpointConfiguration",
    "nodeAgentInfo", "virtualMachineInfo"})
PREP_STATUS_FIELDS = frozenset({
    "poolId", "nodeId", "nodeUrl", "jobPreparationTaskExecutionInfo",
    "jobReleaseTaskExecutionInfo"})


class Headers(dict[str, str]):
    """Case-insensitive header lookup over the received (name, value) pairs."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        self.raw: list[tuple[str, str]] = list(pairs)
        for name, value in self.raw:
            super().__setitem__(name.lower(), value)

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def original(self) -> dict[str, str]:
        return dict(self.raw)


@dataclass
class Request:
    method: str
    raw_path: str
    raw_query: str
    headers: Headers
    body: bytes
    base_url: str
    request_id: str
    query: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    api_version: str = versions.LATEST  # the version whose shape the reply takes


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class BaseResponses:
    """Helpers shared by the resource handler mixins."""

    def __init__(self, backend: BatchBackend, settings: Settings) -> None:
        self.backend = backend
        self.settings = settings
        self.casing = wire.Casing(settings.realistic_casing)

    # --- request parsing ------------------------------------------------------------------

    def json_body(self, req: Request, *, optional: bool = False) -> Any:
        if len(req.body) >= MAX_BODY:
            raise exc.RequestBodyTooLarge(
                f"The request body is {len(req.body)} bytes; the maximum is {MAX_BODY - 1}.",
                {"MaxLimit": str(MAX_BODY - 1)})
        if not req.body.strip():
            if optional:
                return None
            raise exc.InvalidRequestBody("The request body is empty; a JSON object is required.")
        try:
            return json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise exc.InvalidRequestBody(
                f"The request body is not valid JSON: {error}.", {"Reason": str(error)}) from None

    def body(self, req: Request, spec: dict[str, schema.F], *, optional: bool = False
             ) -> dict[str, Any]:
        raw = self.json_body(req, optional=optional)
        if raw is None:
            return {}
        return schema.validate_owned(raw, spec, loose=self.settings.loose)  # raw: just parsed

    def no_body(self, req: Request) -> None:
        """Actions without a body: accept an empty body or `{}` only."""
        raw = self.json_body(req, optional=True)
        if raw not in (None, {}):
            schema.validate(raw, {}, loose=self.settings.loose)

    def flag(self, req: Request, name: str) -> bool:
        value = req.query.get(name)
        if value is None:
            return False
        if value.lower() not in ("true", "false"):
            raise exc.InvalidQueryParameterValue(
                f"The value {value!r} of query parameter {name} is not true or false.",
                {"QueryParameterName": name, "QueryParameterValue": value})
        return value.lower() == "true"

    def expand(self, req: Request) -> None:
        if "$expand" in req.query and not self.settings.loose:
            raise exc.InvalidQueryParameterValue(
                exc.with_loose_hint("The query parameter $expand (statistics) is not "
                                    "supported."),
                {"QueryParameterName": "$expand", "QueryParameterValue": req.query["$expand"]})

    def select(self, req: Request, fields: Iterable[str],
               nested: dict[str, frozenset[str]] | None = None) -> list[list[str]] | None:
        return paging.parse_select(req.query.get("$select"), fields, self.settings.loose, nested)

    # --- responses ------------------------------------------------------------------------

    @staticmethod
    def entity_headers(etag: str, last_modified: float, url: str | None = None,
                       created: bool = False) -> dict[str, str]:
        headers = {"ETag": etag, "Last-Modified": wire.rfc1123(last_modified)}
        if url is not None:
            headers["DataServiceId"] = url
            if created:
                headers["Location"] = url
        return headers

    def action_headers(self, req: Request, etag: str, last_modified: float) -> dict[str, str]:
        """An action's reply headers: `DataServiceId` is the action's own URL
        (`.../jobs/j/terminate`), as the service sends it (recorded for terminate, disable,
        enable, resize and updateproperties: azure-sdk-for-python sdk/batch/azure-batch/
        tests/recordings/test_batch.pyTestBatchtest_batch_jobs[sync].json,
        test_batch.pyTestBatchtest_batch_update_pools.json; azure-cli
        .../batch/tests/latest/recordings/test_batch_pools_and_nodes.yaml)."""
        return self.entity_headers(etag, last_modified, f"{req.base_url}{req.raw_path}")

    @staticmethod
    def json_response(doc: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
                      ) -> Response:
        out = {"Content-Type": wire.JSON_CONTENT_TYPE, "DataServiceVersion": "3.0"}
        out.update(headers or {})
        return Response(status, out, wire.dumps(doc))

    def entity(self, req: Request, kind: str, doc: dict[str, Any], etag: str, modified: float,
               select: list[list[str]] | None = None) -> Response:
        body = {"odata.metadata": f"{req.base_url}/$metadata#{kind}/@Element"}
        body.update(paging.project(doc, select))
        return self.json_response(body, 200, self.entity_headers(etag, modified))

    def listing(
        self,
        req: Request,
        kind: str,
        filter_kind: str,
        entries: Callable[[int], Iterable[tuple[int, Callable[[], dict[str, Any]]]]],
        select: list[list[str]] | None = None,
    ) -> Response:
        """A list response from (position, render) pairs starting at the `$skiptoken`.

        `odata.nextLink` is the request's own URL with its own query (its api-version,
        `timeout`, `maxresults`, `$filter`, `$select`, `recursive`, as sent) and the next
        `$skiptoken`: azure-batch 14.x and @azure/batch follow the link as given, so a
        link carrying another api-version would switch versions mid-listing.
        """
        flt = odata.parse_filter(req.query.get("$filter"), filter_kind)
        limit = paging.parse_maxresults(req.query.get("maxresults"), self.settings.page_size)
        start = paging.decode_token(req.query.get("$skiptoken"))
        with self.backend.op(wake=False):
            result = paging.page(entries(start), flt, select, limit)
        body: dict[str, Any] = {"odata.metadata": f"{req.base_url}/$metadata#{kind}",
                                "value": result.items}
        if result.next_position is not None:
            kept = [pair for pair in req.raw_query.split("&")
                    if pair and unquote(pair.partition("=")[0]).lower() != "$skiptoken"]
            kept.append(f"$skiptoken={paging.encode_token(result.next_position)}")
            body["odata.nextLink"] = f"{req.base_url}{req.raw_path}?{'&'.join(kept)}"
        return self.json_response(body)

    @staticmethod
    def accepted(headers: dict[str, str] | None = None, status: int = 202) -> Response:
        return Response(status, dict(headers or {}))
