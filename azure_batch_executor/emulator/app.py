"""One request in, one response out: routing, SharedKey, query checks, faults, errors.

Role: the HTTP-agnostic front door. For a Batch API request it matches the route
(`urls`), counts it, verifies the SharedKey signature (`auth`), applies a pending
injected fault (`admin.FaultInjector`) and a running throttle (`throttling.Throttler`:
429/503 for a duration, counted), checks `api-version` against the versions the
official clients send (`versions`) and the query options the route accepts (names in any
case, as the service reads them; anything else: 400 naming `--loose`), calls the handler
(`responses`) and renders any `BatchError` in the service's error shape. Any other
exception becomes 500 `InternalError` carrying the request id, and is logged.
`/_emulator/...` goes to the admin API without authentication. Every response gets
`request-id` and `Date`; every Batch API response also `DataServiceVersion: 3.0`, errors,
201/202/204 and HEAD included (docs/dev/emulator-rest.md, "Responses").

Imports: the standard library and sibling emulator modules.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from . import auth, urls, versions, wire
from . import exceptions as exc
from .admin import AdminApi, FaultInjector, RequestCounter
from .responses import BatchResponses, Headers, Request, Response
from .throttling import Throttler

log = logging.getLogger("azure_batch_executor.emulator")

ALWAYS_ALLOWED_QUERY = ("api-version", "timeOut")
# The service reads query option names in any case: azure-batch 14.x sends `timeout=30`,
# 15.x `timeOut`, and a recorded `maxResults=-5` came back naming `maxresults`
# (azure-sdk-for-js sdk/batch/batch-rest/recordings/node/pool_operations_test/
# recording_should_fail_to_list_pools_with_invalid_max.json).
_CANONICAL: dict[tuple[str, ...], dict[str, str]] = {}
DATA_SERVICE_VERSION = "3.0"  # on every recorded Batch response, errors and HEAD included


class App:
    def __init__(self, responses: BatchResponses, admin: AdminApi, *, account_name: str,
                 account_key: str, loose: bool, faults: FaultInjector,
                 counter: RequestCounter, throttler: Throttler | None = None) -> None:
        self.responses = responses
        self.admin = admin
        self.account_name = account_name
        self.account_key = account_key
        self.loose = loose
        self.faults = faults
        self.counter = counter
        self.throttler = throttler or Throttler()

    def handle(self, method: str, target: str, header_pairs: list[tuple[str, str]],
               body: bytes, default_host: str, *, oversized: bool = False) -> Response:
        request_id = str(uuid.uuid4())
        raw_path, _, raw_query = target.partition("?")
        headers = Headers(header_pairs)
        base_url = f"http://{headers.get('host') or default_host}"
        req = Request(method, raw_path, raw_query, headers, body, base_url, request_id)
        admin = urls.split_path(raw_path)[:1] == [AdminApi.PREFIX]
        try:
            resp = self.admin.handle(req) if admin else self._batch(req, oversized)
        except exc.BatchError as err:
            status, err_headers, err_body = exc.render_error(err, request_id, base_url,
                                                             head=method == "HEAD")
            resp = Response(status, err_headers, err_body)
        except Exception:
            log.exception("emulator error handling %s %s (request-id %s)", method, target,
                          request_id)
            internal = exc.InternalError(f"The Batch emulator failed while handling this "
                                         f"request; see its log for request-id {request_id}.")
            status, err_headers, err_body = exc.render_error(internal, request_id, base_url,
                                                             head=method == "HEAD")
            resp = Response(status, err_headers, err_body)
        if not admin:
            resp.headers["DataServiceVersion"] = DATA_SERVICE_VERSION
        resp.headers["request-id"] = request_id
        resp.headers["Date"] = wire.rfc1123(time.time())
        client_request_id = headers.get("client-request-id")
        if client_request_id and headers.get("return-client-request-id", "").lower() == "true":
            resp.headers["client-request-id"] = client_request_id
        return resp

    def _batch(self, req: Request, oversized: bool) -> Response:
        m = urls.match(req.method, req.raw_path)
        self.counter.incr(req.method, m.name)
        if oversized:
            raise exc.RequestBodyTooLarge(
                "The request body is too large and exceeds the maximum permissible limit "
                "of 1 MiB.")
        if m.name == "unknown":
            raise exc.InvalidUri(f"The requested URI {req.raw_path!r} does not represent any "
                                 "resource on the server.")
        if m.name == "method_not_allowed":
            raise exc.UnsupportedHttpVerb(f"The resource {req.raw_path!r} does not support "
                                          f"{req.method}.")
        auth.verify(req.method, req.raw_path, req.raw_query, req.headers.original(),
                    self.account_name, self.account_key)
        fault = self.faults.take(req.method, urls_path(req.raw_path))
        if fault is not None:
            raise fault
        throttled = self.throttler.check(req.method, m.name, lambda: urls_path(req.raw_path))
        if throttled is not None:
            raise throttled
        if m.route is None:
            raise exc.NotImplementedOperation(
                f"{req.method} {req.raw_path} is an Azure Batch operation the emulator does not "
                "emulate (see docs/emulator.md for the supported subset).")
        req.query = self._query(req, m.route.query)
        handler: Any = getattr(self.responses, m.route.name)
        result: Response = handler(req, **m.params)
        return result

    def _query(self, req: Request, allowed: tuple[str, ...]) -> dict[str, str]:
        """The query options by their canonical names; sets `req.api_version`."""
        canonical = _CANONICAL.get(allowed)
        if canonical is None:
            canonical = _CANONICAL[allowed] = {
                name.lower(): name for name in (*ALWAYS_ALLOWED_QUERY, *allowed)}
        query: dict[str, str] = {}
        for name, values in parse_qs(req.raw_query, keep_blank_values=True).items():
            known = canonical.get(name.lower())
            if known is not None:
                query.setdefault(known, values[0])
            elif not self.loose:
                raise exc.InvalidQueryParameterValue(
                    exc.with_loose_hint(f"The query parameter {name!r} is not supported on "
                                        "this operation."),
                    {"QueryParameterName": name, "QueryParameterValue": values[0]})
        version = query.get("api-version")
        if version is None:
            raise exc.MissingRequiredQueryParameter(
                "The query parameter api-version is required.",
                {"QueryParameterName": "api-version"})
        if not versions.is_supported(version) and not self.loose:
            raise exc.UnsupportedRequestVersion(
                exc.with_loose_hint(
                    f"The api-version {version!r} is not supported; the emulator accepts "
                    f"{', '.join(versions.SUPPORTED)} (docs/dev/emulator-rest.md, \"API "
                    "versions\")."),
                {"QueryParameterName": "api-version", "QueryParameterValue": version})
        req.api_version = versions.served_as(version)
        timeout = query.get("timeOut")
        if timeout is not None and not _is_int32(timeout):
            raise exc.InvalidQueryParameterValue(
                f"The value {timeout!r} of query parameter timeout is not an integer.",
                {"QueryParameterName": "timeout", "QueryParameterValue": timeout,
                 "Reason": "timeout must be an integer number of seconds (the service uses "
                           "at most 30)"})
        return query


def _is_int32(text: str) -> bool:
    """What .NET's Int32.Parse takes (invariant culture): digits, an optional sign, blanks."""
    body = text.strip()
    digits = body[1:] if body[:1] in ("+", "-") else body
    return digits.isascii() and digits.isdigit() and -2**31 <= int(body) < 2**31


def urls_path(raw_path: str) -> str:
    """The decoded path faults match against (`/jobs/j1/tasks/t1`)."""
    return "/" + "/".join(urls.split_path(raw_path))
