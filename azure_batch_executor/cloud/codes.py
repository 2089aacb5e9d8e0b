"""What a Batch or Blob error means: the one place where replies are classified.

Role: every decision taken on a service error goes through here: its code
(`error_code`), whether it is worth retrying (`is_transient`; `never_reached` for a
request that found no service at all), whether the job, pool or credentials are gone
for good (`is_gone`, `refused_credentials`), and whether a job is already over
(`ENDED_CODES`). The two never overlap: a transient error, however long it lasts, never
means gone; only `is_gone` may break an executor. The SDK's exception types that the
layers above need to catch are re-exported under the names of what they mean
(`ServiceError`, `AlreadyExists`, `NotFound`), so that nothing above the Azure
side imports ``azure.*``.
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    IncompleteReadError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

ServiceError = HttpResponseError  # any error reply of Batch or Blob
AlreadyExists = ResourceExistsError  # 409 for a resource that exists
NotFound = ResourceNotFoundError  # 404

# HTTP statuses worth another try (the azure-core retry policy's list).
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})

# Error codes that mean the job or pool is gone for good (BrokenBatchExecutor).
GONE_CODES = frozenset({
    "jobnotfound", "poolnotfound", "jobcompleted", "jobbeingterminated", "jobbeingdeleted",
    "poolbeingdeleted", "authenticationfailed", "invalidauthenticationinfo",
    "authorizationfailure", "authorizationpermissionmismatch", "insufficientaccountpermissions",
})

# Error codes of a terminate that found the job already over (nothing left to end).
ENDED_CODES = frozenset({"jobcompleted", "jobbeingterminated", "jobnotfound",
                         "jobbeingdeleted"})


def error_code(exc: BaseException) -> str:
    """The Batch/Blob error code of `exc`, lowercased ('' when none)."""
    err = getattr(exc, "error", None)
    code = getattr(err, "code", None) or getattr(exc, "error_code", None) or ""
    return str(code).lower()


def refused_credentials(exc: BaseException) -> bool:
    """True when a Batch or Blob reply refused the credentials (401/403)."""
    return isinstance(exc, ClientAuthenticationError) or (
        isinstance(exc, HttpResponseError) and exc.status_code in (401, 403))


def is_gone(exc: BaseException) -> bool:
    """True when `exc` means the executor cannot go on (job/pool gone, auth revoked)."""
    return refused_credentials(exc) or (
        isinstance(exc, HttpResponseError) and error_code(exc) in GONE_CODES)


def is_transient(exc: BaseException) -> bool:
    """True for a failure worth another try: no connection, a timeout, a body cut short,
    or a throttled or busy reply."""
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, ConnectionError,
                        IncompleteReadError)):
        return True
    if isinstance(exc, HttpResponseError):
        return exc.status_code in TRANSIENT_STATUS
    return False


def never_reached(exc: BaseException) -> bool:
    """True when a request found no service at all (no connection, no name resolution):
    unlike a throttled reply or a timeout, it may be a wrong address, so its retries get
    a shorter budget (`retry.RetryPolicy.connect_budget`)."""
    return isinstance(exc, (ServiceRequestError, ConnectionError))


def is_service_error(exc: BaseException) -> bool:
    """True for an error reply of the service (as opposed to a bug of ours)."""
    return isinstance(exc, HttpResponseError) or bool(error_code(exc))


def lower(value: Any) -> str:
    """An SDK enum or raw string, lowercased: the service may send PascalCase the SDK's
    case-sensitive enums do not recognise (then the SDK leaves a plain str)."""
    return str(getattr(value, "value", value)).lower()


def service_message(exc: HttpResponseError) -> str:
    """The service's message of an error reply, its first line."""
    message = getattr(getattr(exc, "error", None), "message", None) or exc.message or ""
    return str(message).splitlines()[0] if message else type(exc).__name__


class JobGone(Exception):
    """The job is no longer active or the pool was deleted."""
