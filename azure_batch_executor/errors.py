"""The exception tree of azure-batch-executor.

Role: every exception the package raises on purpose. Each one says what went
wrong, the likely reason and the fix (see docs/errors.md). Classes subclass the
stdlib ones so existing ``except`` clauses keep working::

    Exception
    ├── ValueError
    │   └── ConfigurationError          settings missing, half given or rejected
    ├── pickle.PicklingError
    │   └── TaskPicklingError           submit(): a function or argument cannot be pickled
    ├── RuntimeError
    │   ├── ForkedExecutorError         an executor used in a process forked from its owner
    │   ├── NestedExecutorError         AzureBatchExecutor() inside a task on a Batch node
    │   └── QuotaError                  an account quota refused a pool, a job or nodes
    ├── concurrent.futures.BrokenExecutor
    │   └── BrokenBatchExecutor         job/pool gone, credentials revoked, initializer failed
    │       ├── VersionMismatchError    node Python/cloudpickle differ from the client's
    │       ├── EnvironmentPreparationError  the nodes could not install the environment
    │       └── PoolStartError          no node of the pool could run the job's tasks
    │           └── CoreQuotaError      ... because of a core quota (also a QuotaError)
    └── AzureBatchExecutorError
        ├── TaskFailedError             a task ended without an outcome (killed, OOM, timeout)
        ├── TasksFailedError            superbatch: some tasks of a client.run() failed
        ├── TaskRejectedError           Batch refused to add a task
        └── RemoteError                 stand-in for a remote result/exception that can't travel

    RemoteTraceback                     the remote traceback, chained as ``__cause__``
"""

from __future__ import annotations

import pickle
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor
from typing import Any


class ConfigurationError(ValueError):
    """A setting is missing, half given, or was rejected by Azure; the message names the fix."""


class TaskPicklingError(pickle.PicklingError):
    """A function, argument or initializer could not be pickled on the client."""


class BrokenBatchExecutor(BrokenExecutor):
    """The executor cannot go on: its job or pool disappeared, the credentials were revoked,
    or a task initializer failed. Every pending future fails with it; the cause is chained."""


class VersionMismatchError(BrokenBatchExecutor):
    """The node's Python major.minor or cloudpickle version differ from the client's."""


class EnvironmentPreparationError(BrokenBatchExecutor):
    """A node could not prepare the job's environment (the job preparation task failed):
    the message names the environment, the failing step, the stderr tail and the fix.
    Attributes: ``env_id``, ``node_id``, ``step``, ``exit_code``, ``stderr_tail``."""

    def __init__(self, message: str, *, env_id: str = "", node_id: str = "", step: str = "",
                 exit_code: int | None = None, stderr_tail: str = "") -> None:
        super().__init__(message)
        self.env_id = env_id
        self.node_id = node_id
        self.step = step
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return _rebuild_with_attrs, (type(self), self.args[0], self.__dict__)


def _rebuild_with_attrs(cls: type[BaseException], message: str, attrs: dict[str, Any]
                        ) -> BaseException:
    err = cls.__new__(cls)
    BaseException.__init__(err, message)
    err.__dict__.update(attrs)
    return err


# The account quotas a Batch error code names: (what is counted, the field of
# `az batch account show`, what else helps). Source: "Batch service quotas and limits",
# https://learn.microsoft.com/azure/batch/batch-quota-limit (its "Increase a quota").
QUOTAS: dict[str, tuple[str, str, str]] = {
    "PoolQuotaReached": (
        "pools", "poolQuota",
        "or delete a pool you no longer use (az batch pool list --query \"[].id\"; az batch "
        "pool delete --pool-id ID), or pass the pool_id of an existing pool"),
    "ActiveJobAndScheduleQuotaReached": (
        "active jobs and job schedules", "activeJobAndJobScheduleQuota",
        "or end jobs that are still active (az batch job list --filter \"state eq 'active'\" "
        "--query \"[].id\"; az batch job terminate --job-id ID): completed jobs do not count"),
    "AccountCoreQuotaReached": (
        "dedicated cores", "dedicatedCoreQuota",
        "or use Spot nodes (spot_nodes=, a quota of their own) or a smaller vm_size"),
    "AccountLowPriorityCoreQuotaReached": (
        "Spot (low-priority) cores", "lowPriorityCoreQuota",
        "or use dedicated nodes (dedicated_nodes=) or a smaller vm_size"),
}
QUOTA_DOCS = "https://learn.microsoft.com/azure/batch/batch-quota-limit"


def quota_fix(code: str, account: str | None) -> str:
    """How to see and raise the quota a Batch error code names, with the `az` command and
    the portal page."""
    what, field, other = QUOTAS.get(code, ("a quota", "{dedicatedCoreQuota: dedicatedCoreQuota, "
                                           "lowPriorityCoreQuota: lowPriorityCoreQuota}", ""))
    account = account or "BATCH_ACCOUNT"
    return (f"see the account's quota of {what} with: az batch account show -n {account} "
            f"-g RESOURCE_GROUP --query {field}; raise it in the Azure portal (the Batch "
            f"account, Quotas, Request quota increase: no charge, {QUOTA_DOCS})"
            + (f", {other}" if other else ""))


class QuotaError(RuntimeError):
    """A quota of the Batch account refused what the executor needs: a pool
    (``PoolQuotaReached``), a job (``ActiveJobAndScheduleQuotaReached``) or nodes
    (``AccountCoreQuotaReached``, ``AccountLowPriorityCoreQuotaReached``: then it is a
    `CoreQuotaError`, raised by the waiting futures). The message names the quota and how
    to raise it. Attributes: ``code`` (Batch's error code), ``account``."""

    def __init__(self, message: str, *, code: str = "", account: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.account = account

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return _rebuild_with_attrs, (type(self), self.args[0], self.__dict__)


class PoolStartError(BrokenBatchExecutor):
    """No node of the pool could run the job's tasks: Batch reported a final cause (a core
    quota too small for one node, every node's start task failed), or `pool_start_timeout`
    passed without a usable node. The message names the cause as Batch reports it (resize
    error code and message, start task failure with its stderr tail, unusable nodes) and
    the fix. Attributes: ``pool_id``, ``job_id``, ``code`` (Batch's code of the cause: a
    resize error's code, ``StartTaskFailed``, ``unusable``, an autoscale run's error code;
    "" when none), ``elapsed`` (seconds waited), ``nodes`` (node counts by state),
    ``stderr_tail``."""

    def __init__(self, message: str, *, pool_id: str = "", job_id: str = "", code: str = "",
                 elapsed: float = 0.0, nodes: dict[str, int] | None = None,
                 stderr_tail: str = "") -> None:
        super().__init__(message)
        self.pool_id = pool_id
        self.job_id = job_id
        self.code = code
        self.elapsed = elapsed
        self.nodes = dict(nodes or {})
        self.stderr_tail = stderr_tail

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return _rebuild_with_attrs, (type(self), self.args[0], self.__dict__)


class CoreQuotaError(PoolStartError, QuotaError):
    """A `PoolStartError` whose cause is a core quota (``AccountCoreQuotaReached``,
    ``AccountLowPriorityCoreQuotaReached``): also a `QuotaError`."""

    def __init__(self, message: str, *, account: str = "", **kw: Any) -> None:
        PoolStartError.__init__(self, message, **kw)
        self.account = account


class ForkedExecutorError(RuntimeError):
    """An executor was used in a process forked from the one that created it.

    Its poller thread did not survive ``os.fork()``, so its futures would never resolve.
    Attributes: ``owner_pid`` (the process the executor belongs to) and ``pid``.
    """

    def __init__(self, owner_pid: int, pid: int, job_id: str = "") -> None:
        job = f" (job {job_id})" if job_id else ""
        super().__init__(
            f"this AzureBatchExecutor{job} belongs to process {owner_pid}, and this is "
            f"process {pid}, forked from it: its poller thread did not survive os.fork(), "
            f"so its futures would never resolve. After os.fork() create a new "
            f"AzureBatchExecutor in the child, or use get_reusable_executor() / the joblib "
            f"backend, which make one per process.")
        self.owner_pid = owner_pid
        self.pid = pid
        self.job_id = job_id

    def __reduce__(self) -> tuple[type[ForkedExecutorError], tuple[int, int, str]]:
        # keep the attributes when pickled
        return (ForkedExecutorError, (self.owner_pid, self.pid, self.job_id))


class NestedExecutorError(RuntimeError):
    """`AzureBatchExecutor()` was called inside a task running on a Batch node.

    The worker sets ``AZURE_BATCH_EXECUTOR_TASK`` while user code runs; an executor there
    would start a second cloud job. ``AZURE_BATCH_EXECUTOR_ALLOW_NESTED=1`` allows it.
    Attribute: ``task_id``.
    """

    def __init__(self, task_id: str) -> None:
        super().__init__(
            f"AzureBatchExecutor() was called inside task {task_id} of an Azure Batch job: "
            f"it would start a second cloud job (and a pool, if absent) from the node. Run "
            f"the inner loop sequentially (a for loop or the built-in map()), or use joblib: "
            f'joblib calls inside a task run sequentially on the node (backend "azure_batch" '
            f"is joblib's sequential backend there). To start a nested executor on purpose, "
            f"set AZURE_BATCH_EXECUTOR_ALLOW_NESTED=1 in the task's environment (the node then "
            f"needs the Batch and storage settings too).")
        self.task_id = task_id

    def __reduce__(self) -> tuple[type[NestedExecutorError], tuple[str]]:
        # keep the attribute when pickled (it comes back from the node)
        return (NestedExecutorError, (self.task_id,))


class AzureBatchExecutorError(Exception):
    """Base class for errors about one task."""


class TaskFailedError(AzureBatchExecutorError):
    """A Batch task completed with failure and left no outcome behind.

    Attributes: ``task_id``, ``job_id``, ``exit_code`` (None when no process ran),
    ``failure_code`` / ``failure_message`` (Batch's failureInfo), ``stderr_tail``,
    ``stdout_blob`` / ``stderr_blob`` (blob names in the executor's container).
    """

    def __init__(
        self,
        message: str,
        *,
        task_id: str = "",
        job_id: str = "",
        exit_code: int | None = None,
        failure_code: str | None = None,
        failure_message: str | None = None,
        stderr_tail: str = "",
        stdout_blob: str = "",
        stderr_blob: str = "",
    ) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.job_id = job_id
        self.exit_code = exit_code
        self.failure_code = failure_code
        self.failure_message = failure_message
        self.stderr_tail = stderr_tail
        self.stdout_blob = stdout_blob
        self.stderr_blob = stderr_blob

    def __reduce__(self) -> tuple[Callable[[str, dict[str, Any]], TaskFailedError],
                                  tuple[str, dict[str, Any]]]:
        # keep the attributes when pickled (joblib, multiprocessing)
        return (_rebuild_task_failed, (self.args[0], self.__dict__))

    @classmethod
    def describe(
        cls,
        *,
        task_id: str,
        job_id: str,
        exit_code: int | None,
        result: str,
        failure_code: str | None,
        failure_message: str | None,
        stderr_tail: str,
        stdout_blob: str,
        stderr_blob: str,
        container_url: str,
        missing: Sequence[str] = ("outputs.pickle",),
    ) -> TaskFailedError:
        """The error for a task that failed, or succeeded without leaving the files it
        should (`missing`, in its working directory): cause, likely reason, fix. The one
        description of a failed task, for the executor and the SuperBatch client alike."""
        parts = [f"task {task_id} of job {job_id} failed: "
                 + (f"exit code {describe_exit_code(exit_code)}" if exit_code is not None
                    else "no process ran (no exit code)")]
        if failure_code:
            parts.append(f"Batch failure {failure_code}: {failure_message or ''}".rstrip(": "))
        elif result == "success":
            names = ", ".join(repr(name) for name in missing)
            parts.append(f"it succeeded but wrote no {names} in its working directory, so "
                         "nothing was uploaded")
        hint = "" if result == "success" and not failure_code else _hint(
            failure_code or "", failure_message or "", exit_code)
        message = "; ".join(parts) + "."
        if hint:
            message += f" {hint}"
        message += (f" Its stdout/stderr are the blobs {stdout_blob} and {stderr_blob} in "
                     f"{container_url}.")
        if stderr_tail.strip():
            message += f"\nstderr tail:\n{stderr_tail.rstrip()}"
        return cls(message, task_id=task_id, job_id=job_id, exit_code=exit_code,
                   failure_code=failure_code, failure_message=failure_message,
                   stderr_tail=stderr_tail, stdout_blob=stdout_blob, stderr_blob=stderr_blob)


def describe_exit_code(code: int | None) -> str:
    """'137 (SIGKILL)' style text: exit codes above 128 (or negative) name their signal."""
    if code is None:
        return "none"
    number = code - 128 if code > 128 else -code if code < 0 else 0
    try:
        return f"{code} ({signal.Signals(number).name})" if number else str(code)
    except ValueError:
        return str(code)


def _hint(code: str, message: str, exit_code: int | None) -> str:
    code = code.lower()
    if "wall clock" in message.lower() or "wallclock" in message.lower():
        return "Likely: the task ran past its task_timeout; raise task_timeout or split the work."
    if code.startswith("blob") or code.startswith("resourcecontainer"):
        return ("Likely: a resource file could not be downloaded (SAS expired or blob "
                "deleted); rerun with a new executor.")
    if code.startswith("fileupload"):
        return "Likely: outputs could not be uploaded; check the storage account's firewall."
    if code == "commandprogramnotfound":
        return "Likely: python_command is not on the node; set python_command or container_image."
    if exit_code in (137, -9):
        return ("Likely: killed (out of memory or a time limit); use a larger vm_size or less "
                "memory per task.")
    if exit_code in (139, -11):
        return "Likely: a crash in native code (segmentation fault)."
    return ("Likely: the process exited before the worker wrote its outcome (os._exit, a "
            "crash, or a missing package on the node); see the stderr tail.")


def _rebuild_task_failed(message: str, attrs: dict[str, Any]) -> TaskFailedError:
    err = TaskFailedError(message)
    err.__dict__.update(attrs)
    return err


class TasksFailedError(AzureBatchExecutorError):
    """Some tasks of a SuperBatch `client.run()` failed; the others' outputs were downloaded.

    Attributes: ``job_id`` and ``failures``, one `TaskFailedError` per failed task
    (``task_id``, ``exit_code``, ``failure_code``, ``stderr_tail``, ``stderr_blob``, ...).
    """

    def __init__(self, message: str, *, job_id: str, failures: list[TaskFailedError]) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.failures = failures


class TaskRejectedError(AzureBatchExecutorError):
    """Batch refused to add the task (a client error other than TaskExists)."""


class TaskTerminatedError(AzureBatchExecutorError):
    """The task was terminated by `AzureBatchExecutor.terminate()` (or
    ``shutdown(terminate=True)``) before its result was collected."""


class RemoteError(AzureBatchExecutorError):
    """Stand-in for a remote exception or result that could not be pickled or unpickled.

    Attributes: ``type_name`` (qualified name of the original type), ``message``
    (its ``str()``) and ``remote_traceback`` (formatted on the node).
    """

    def __init__(self, type_name: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message
        self.remote_traceback = remote_traceback

    def __reduce__(self) -> tuple[type[RemoteError], tuple[str, str, str]]:
        return (RemoteError, (self.type_name, self.message, self.remote_traceback))


class RemoteTraceback(Exception):
    """Carries the traceback formatted on the node; chained as the ``__cause__``."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb
