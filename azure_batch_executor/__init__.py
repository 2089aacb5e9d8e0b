"""azure-batch-executor: a concurrent.futures Executor whose workers are Azure Batch tasks.

    from azure_batch_executor import AzureBatchExecutor

    with AzureBatchExecutor(max_workers=4) as ex:   # no Azure settings: the local stack
        print(sum(ex.map(work, range(100))))

Role: the public names. Importing the package sets the ``azure`` logger to WARNING
unless its level is already set (`_logs.quiet_azure_loggers`: no Azure SDK HTTP dumps
under ``logging.basicConfig(level=logging.INFO)``; docs/logging.md).
"""

from __future__ import annotations

import importlib.metadata as _metadata

from .engine import logs as _logs
from .engine.attach import AttachedJob, JobInfo
from .engine.executor import AzureBatchExecutor
from .engine.usage import Usage
from .errors import (
    AzureBatchExecutorError,
    BrokenBatchExecutor,
    ConfigurationError,
    CoreQuotaError,
    EnvironmentPreparationError,
    ForkedExecutorError,
    NestedExecutorError,
    PoolStartError,
    QuotaError,
    RemoteError,
    RemoteTraceback,
    TaskFailedError,
    TaskPicklingError,
    TaskRejectedError,
    TasksFailedError,
    TaskTerminatedError,
    VersionMismatchError,
)

try:  # the version lives in pyproject.toml only
    __version__ = _metadata.version("azure-batch-executor")
except _metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

_logs.quiet_azure_loggers()

__all__ = [
    "AttachedJob",
    "AzureBatchExecutor",
    "AzureBatchExecutorError",
    "BrokenBatchExecutor",
    "ConfigurationError",
    "CoreQuotaError",
    "EnvironmentPreparationError",
    "ForkedExecutorError",
    "JobInfo",
    "NestedExecutorError",
    "PoolStartError",
    "QuotaError",
    "RemoteError",
    "RemoteTraceback",
    "TaskFailedError",
    "TaskPicklingError",
    "TaskRejectedError",
    "TaskTerminatedError",
    "TasksFailedError",
    "Usage",
    "VersionMismatchError",
    "register_joblib",
]


def register_joblib() -> None:
    """Register the joblib backend "azure_batch" (see joblib_backend.py); calling it again is
    harmless. Without joblib: ImportError naming pip install "azure-batch-executor[joblib]"."""
    from .joblib_backend import register_joblib as register

    register()
