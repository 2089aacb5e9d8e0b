"""`cloud.codes`: what a reply means. Transient (retried, waited out) and gone (breaks the
executor) never overlap: throttling, however long, is never taken for a job that is gone."""

from __future__ import annotations

import pytest
from azure.core.exceptions import IncompleteReadError, ServiceRequestError, ServiceResponseError
from support.http_errors import no_connection, service_error

from azure_batch_executor.cloud.codes import is_gone, is_transient, never_reached

TRANSIENT = [
    service_error(429, "TooManyRequests"), service_error(503, "ServerBusy", retry_after=5),
    service_error(500, "InternalError"), service_error(500, "OperationTimedOut"),
    service_error(502, "BadGateway"), service_error(504, "GatewayTimeout"),
    service_error(408, "RequestTimeout"), no_connection(),
    ServiceResponseError("read timed out"), IncompleteReadError("body cut short"),
]
GONE = [
    service_error(404, "JobNotFound"), service_error(404, "PoolNotFound"),
    service_error(409, "JobCompleted"), service_error(409, "JobBeingDeleted"),
    service_error(409, "PoolBeingDeleted"), service_error(403, "AuthenticationFailed"),
    service_error(401, "InvalidAuthenticationInfo"),
    service_error(403, "AuthorizationPermissionMismatch"),
]
NEITHER = [service_error(400, "InvalidPropertyValue"), service_error(409, "TaskExists"),
           service_error(404, "TaskNotFound"), service_error(413, "RequestBodyTooLarge")]


@pytest.mark.parametrize("exc", TRANSIENT, ids=repr)
def test_transient_is_retried_and_never_gone(exc: Exception) -> None:
    assert is_transient(exc) and not is_gone(exc)


@pytest.mark.parametrize("exc", GONE, ids=repr)
def test_gone_is_never_retried(exc: Exception) -> None:
    assert is_gone(exc) and not is_transient(exc)


@pytest.mark.parametrize("exc", NEITHER, ids=repr)
def test_other_errors_are_neither(exc: Exception) -> None:
    assert not is_gone(exc) and not is_transient(exc)


def test_only_a_request_that_found_no_service_was_never_reached() -> None:
    assert never_reached(no_connection())
    reached = [e for e in TRANSIENT if not isinstance(e, ServiceRequestError)]
    assert reached and not any(never_reached(e) for e in reached)
