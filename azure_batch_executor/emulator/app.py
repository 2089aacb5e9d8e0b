"""One request in, one response out: routing, SharedKey, query checks, faults, errors.

Role: the HTTP-agnostic front door. For a Batch API request it matches the route
(`urls`), counts it, verifies the SharedKey signature (`auth`), applies a pending
injected fault (`admin.FaultInjector`), checks `api-version` and the query options the
route accepts (anything else: 400 naming `--loose`), calls the handler (`responses`) and
renders any `BatchError` in the service's error shape. Any other exception becomes 500
`InternalError` carrying the request id, and is logged. `/_emulator/...` goes to the
admin API without authentication. Every response gets `request-id` and `Date`.

Imports: the standard library and sibling emulator modules.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from . import auth, urls, wire
from . import exceptions as exc
from .admin import AdminApi, FaultInjector, RequestCounter
from .responses import BatchResponses, Headers, Request, Response

log = logging.getLogger("azure_batch_executor.emulator")

ALWAYS_ALLOWED_QUERY = ("api-version", "timeOut")


class App:
    def __init__(self, responses: BatchResponses, admin: AdminApi, *, account_name: str,
                 account_key: str, loose: bool, faults: FaultInjector,
                 counter: RequestCounter) -> None:
        self.responses = responses
        self.admin = admin
        self.account_name = account_name
        self.account_key = account_key
        self.loose = loose
        self.faults = faults
        self.counter = counter

    def handle(self, method: str, target: str, header_pairs: list[tuple[str, str]],
               body: bytes, default_host: str, *, oversized: bool = False) -> Response:
        request_id = str(uuid.uuid4())
        raw_path, _, raw_query = target.partition("?")
        headers = Headers(header_pairs)
        base_url = f"http://{headers.get('host') or default_host}"
        req = Request(method, raw_path, raw_query, headers, body, base_url, request_id)
        try:
            if urls.split_path(raw_path)[:1] == [AdminApi.PREFIX]:
                resp = self.admin.handle(req)
            else:
                resp = self._batch(req, oversized)
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
        if m.route is None:
            raise exc.NotImplementedOperation(
                f"{req.method} {req.raw_path} is an Azure Batch operation the emulator does not "
                "emulate (see docs/emulator.md for the supported subset).")
        req.query = self._query(req.raw_query, m.route.query)
        handler: Any = getattr(self.responses, m.route.name)
        result: Response = handler(req, **m.params)
        return result

    def _query(self, raw_query: str, allowed: tuple[str, ...]) -> dict[str, str]:
        parsed = parse_qs(raw_query, keep_blank_values=True)
        query = {name: values[0] for name, values in parsed.items()}
        version = query.get("api-version")
        if version is None:
            raise exc.MissingRequiredQueryParameter(
                "The query parameter api-version is required.",
                {"QueryParameterName": "api-version"})
        if version != wire.API_VERSION and not self.loose:
            raise exc.UnsupportedRequestVersion(
                exc.with_loose_hint(f"The api-version {version!r} is not supported; the emulator "
                                    f"speaks {wire.API_VERSION}."),
                {"QueryParameterName": "api-version", "QueryParameterValue": version})
        for name in list(query):
            if name in ALWAYS_ALLOWED_QUERY or name in allowed:
                continue
            if self.loose:
                del query[name]
                continue
            raise exc.InvalidQueryParameterValue(
                exc.with_loose_hint(f"The query parameter {name!r} is not supported on this "
                                    "operation."),
                {"QueryParameterName": name, "QueryParameterValue": query[name]})
        return query


def urls_path(raw_path: str) -> str:
    """The decoded path faults match against (`/jobs/j1/tasks/t1`)."""
    return "/" + "/".join(urls.split_path(raw_path))
