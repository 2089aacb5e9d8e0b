"""Batch service errors: one class per error code, rendered to the wire in one place.

Role: models and request parsing raise these; `render_error` turns any of them into the
service's status, headers and OData error body (docs/dev/emulator-rest.md). Codes and
statuses follow the service's "Batch Status and Error Codes" table.

Imports: the standard library and `wire` only.
"""

from __future__ import annotations

import time
from typing import Any

from . import wire


class BatchError(Exception):
    """Base: an HTTP status, a Batch error code, a message and optional detail values."""

    status = 500
    code = "InternalError"
    default_message = "The server encountered an internal error. Please retry the request."
    values_on_wire = True  # False: `values` stay in the emulator (logs, tests), not the body

    def __init__(
        self,
        message: str | None = None,
        values: dict[str, str] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.values = dict(values or {})
        self.headers = dict(headers or {})
        super().__init__(f"{self.code}: {self.message}")


def _error(name: str, status: int, default_message: str) -> type[BatchError]:
    return type(name, (BatchError,), {"status": status, "code": name,
                                      "default_message": default_message})


# 4xx: request shape
InvalidRequestBody = _error("InvalidRequestBody", 400,
                            "The specified Request Body is not syntactically valid.")
MissingRequiredProperty = _error("MissingRequiredProperty", 400,
                                 "A required property was not specified in the request body.")
InvalidPropertyValue = _error("InvalidPropertyValue", 400,
                              "The value provided for one of the properties in the request "
                              "body is invalid.")
InvalidConstraintValue = _error("InvalidConstraintValue", 400,
                                "One of the specified constraint values is invalid.")
MissingRequiredQueryParameter = _error("MissingRequiredQueryParameter", 400,
                                       "A required query parameter was not specified for this "
                                       "request.")
InvalidQueryParameterValue = _error("InvalidQueryParameterValue", 400,
                                    "Value for one of the query parameters specified in the "
                                    "request URI is invalid.")
OutOfRangeQueryParameterValue = _error("OutOfRangeQueryParameterValue", 400,
                                       "A query parameter specified in the request URI is "
                                       "outside the permissible range.")
UnsupportedRequestVersion = _error("UnsupportedRequestVersion", 400,
                                   "The specified request version is not supported.")
InvalidHeaderValue = _error("InvalidHeaderValue", 400,
                            "The value provided for one of the HTTP headers was not in the "
                            "correct format.")
InvalidUri = _error("InvalidUri", 400,
                    "The requested URI does not represent any resource on the server.")
NotImplementedOperation = _error("NotImplemented", 400,
                                 "This operation is not emulated by the Batch emulator.")
TaskDependenciesNotSpecifiedOnJob = _error("TaskDependenciesNotSpecifiedOnJob", 400,
                                           "A task was specified as depending on other tasks, "
                                           "but the job did not specify that it would use task "
                                           "dependencies.")
InvalidAuthenticationInfo = _error("InvalidAuthenticationInfo", 400,
                                   "The authentication information was not provided in the "
                                   "correct format. Verify the value of Authorization header.")
AuthenticationFailed = _error("AuthenticationFailed", 403,
                              "Server failed to authenticate the request. Make sure the value "
                              "of Authorization header is formed correctly including the "
                              "signature.")
UnsupportedHttpVerb = _error("UnsupportedHttpVerb", 405,
                             "The resource doesn't support the specified HTTP verb.")
ConditionNotMet = _error("ConditionNotMet", 412,
                         "The condition specified using HTTP conditional header(s) is not met.")
RequestBodyTooLarge = _error("RequestBodyTooLarge", 413,
                             "The request body is too large and exceeds the maximum permissible "
                             "limit.")
InvalidRange = _error("InvalidRange", 416,
                      "The range specified is invalid for the current size of the resource.")

# 404
PoolNotFound = _error("PoolNotFound", 404, "The specified pool does not exist.")
NodeNotFound = _error("NodeNotFound", 404, "The specified node does not exist.")
JobNotFound = _error("JobNotFound", 404, "The specified job does not exist.")
# The service's JobNotFound body is code and message only, no `values` (issue 11's
# comparison with recorded exchanges; the same shape as the recorded 409 in
# azure-sdk-for-js sdk/batch/batch-rest/recordings/node/job_operations_test/
# recording_should_fail_to_job_preprelease_status.json). The other 404s keep theirs
# (unrecorded).
JobNotFound.values_on_wire = False
TaskNotFound = _error("TaskNotFound", 404, "The specified task does not exist.")
FileNotFound = _error("FileNotFound", 404, "The specified file does not exist.")

# 409
PoolExists = _error("PoolExists", 409, "The specified pool already exists.")
PoolBeingDeleted = _error("PoolBeingDeleted", 409,
                          "The specified pool has been marked for deletion and is being "
                          "reclaimed.")
PoolBeingResized = _error("PoolBeingResized", 409, "The specified pool is being resized.")
JobExists = _error("JobExists", 409, "The specified job already exists.")
JobCompleted = _error("JobCompleted", 409, "The specified job is already in a completed state.")
JobBeingTerminated = _error("JobBeingTerminated", 409, "The specified job is being terminated.")
JobBeingDeleted = _error("JobBeingDeleted", 409,
                         "The specified job has been marked for deletion and is being garbage "
                         "collected.")
JobNotActive = _error("JobNotActive", 409, "The specified job is not in active state.")
JobDisabled = _error("JobDisabled", 409, "The specified job is disabled.")
TaskExists = _error("TaskExists", 409, "The specified task already exists.")
TaskCompleted = _error("TaskCompleted", 409, "The specified task is already in a completed state.")
TaskNotCompleted = _error("TaskNotCompleted", 409,
                          "The specified task is not in a completed state, and the requested "
                          "operation can be performed only on completed tasks.")
TaskSucceeded = _error("TaskSucceeded", 409,
                       "The specified task has already completed successfully, and the requested "
                       "operation cannot be performed on successful tasks.")
TaskFilesUnavailable = _error("TaskFilesUnavailable", 409,
                              "The files of the specified task are unavailable.")
TaskFilesCleanedup = _error("TaskFilesCleanedup", 409,
                            "The files of the specified task are cleanedup.")
OperationInvalidForCurrentState = _error("OperationInvalidForCurrentState", 409,
                                         "The specified operation is not valid for the current "
                                         "state of the resource.")
ActiveJobAndScheduleQuotaReached = _error("ActiveJobAndScheduleQuotaReached", 409,
                                          "Active job and schedule quota for the account has "
                                          "been reached.")
# account quotas and autoscale (quotas.py, models/autoscale_ops.py; the codes of "Batch
# status and error codes" and BatchErrorCodeStrings)
PoolQuotaReached = _error("PoolQuotaReached", 409, "Pool quota for the account has been reached.")
AutoScalingFormulaSyntaxError = _error("AutoScalingFormulaSyntaxError", 400,
                                       "The specified auto-scaling formula has a syntax error.")
AutoScaleFormulaTooLong = _error("AutoScaleFormulaTooLong", 400,
                                 "An automatic scaling formula is too long. The maximum length "
                                 "is 8192 characters.")
TooManyEnableAutoScaleRequests = _error("TooManyEnableAutoScaleRequests", 503,
                                        "Too many Enable Pool AutoScale requests are issued on "
                                        "the pool.")
# job preparation and release tasks (REST JobPreparationTask.id, JobReleaseTask.id, List
# Preparation And Release Task Status)
JobPreparationTaskNotSpecified = _error("JobPreparationTaskNotSpecified", 409,
                                        "The specified job has no job preparation or job "
                                        "release task.")
TaskIdSameAsJobPreparationTask = _error("TaskIdSameAsJobPreparationTask", 409,
                                        "The task id is the id of the job's job preparation "
                                        "task.")
TaskIdSameAsJobReleaseTask = _error("TaskIdSameAsJobReleaseTask", 409,
                                    "The task id is the id of the job's job release task.")

# throttling / server
TooManyRequests = _error("TooManyRequests", 429, "too many requests, please retry")
InternalError = _error("InternalError", 500,
                       "The server encountered an internal error. Please retry the request.")
ServerBusy = _error("ServerBusy", 503,
                    "The server is currently unable to receive requests. Please retry your "
                    "request.")


class NotModified(BatchError):
    """304 for a read whose If-None-Match / If-Modified-Since condition says "unchanged"."""

    status = 304
    code = "ConditionNotMet"
    default_message = "The condition specified in the conditional header(s) was not met for a " \
                      "read operation."


def named(code: str, status: int, message: str | None = None) -> BatchError:
    """An error for an arbitrary code/status (used by fault injection)."""
    for cls in _all_classes():
        if cls.code == code and cls.status == status:
            return cls(message)
    err = BatchError(message or f"Injected fault {code}.")
    err.status, err.code = status, code
    return err


def _all_classes() -> list[type[BatchError]]:
    return [v for v in globals().values() if isinstance(v, type) and issubclass(v, BatchError)]


def with_loose_hint(message: str) -> str:
    return (f"{message} The Batch emulator does not emulate it; start the emulator with --loose "
            "(BatchEmulator(loose=True)) to store and echo it instead.")


def error_body(err: BatchError, request_id: str, base_url: str) -> dict[str, Any]:
    """The service's error JSON, without the odata.metadata wrapper for embedding."""
    body: dict[str, Any] = {
        "code": err.code,
        "message": {
            "lang": "en-US",
            "value": f"{err.message}\nRequestId:{request_id}\nTime:{wire.iso7(time.time())}",
        },
    }
    if err.values and err.values_on_wire:
        body["values"] = [{"key": k, "value": v} for k, v in err.values.items()]
    return body


def render_error(
    err: BatchError, request_id: str, base_url: str, *, head: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body bytes for an error response (HEAD and 304: no body)."""
    headers = dict(err.headers)
    if head or err.status == 304:
        return err.status, headers, b""
    body = {
        "odata.metadata": f"{base_url}/$metadata#Microsoft.Azure.Batch.Protocol.Entities."
                          "Container.errors/@Element",
        **error_body(err, request_id, base_url),
    }
    headers["Content-Type"] = wire.JSON_CONTENT_TYPE
    return err.status, headers, wire.dumps(body)
