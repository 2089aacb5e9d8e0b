"""Service error replies as the SDK raises them, for unit tests: `service_error(429,
"TooManyRequests", retry_after=2)` is the `HttpResponseError` (or its 404/409 subclass)
whose status, error code and headers are those of such a reply."""

from __future__ import annotations

import json
from typing import Any

from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)


class Reply:
    """The little of an azure-core HTTP response that `HttpResponseError` reads."""

    def __init__(self, status: int, code: str, headers: dict[str, str]) -> None:
        self.status_code = status
        self.reason = code
        self.headers = headers
        self._body = json.dumps({"error": {"code": code, "message": f"{code} (a test)"}})

    def text(self, encoding: str | None = None) -> str:
        return self._body


def service_error(status: int, code: str, retry_after: Any = None,
                  headers: dict[str, str] | None = None) -> HttpResponseError:
    """The SDK's error for a reply `status` with error `code` (and `Retry-After` if given)."""
    all_headers = dict(headers or {})
    if retry_after is not None:
        all_headers["Retry-After"] = str(retry_after)
    kind = {404: ResourceNotFoundError, 409: ResourceExistsError}.get(status, HttpResponseError)
    return kind(response=Reply(status, code, all_headers))


def no_connection() -> ServiceRequestError:
    """What the transport raises when no connection could be made (refused, no DNS)."""
    return ServiceRequestError("Failed to establish a new connection: [Errno 111] refused")
