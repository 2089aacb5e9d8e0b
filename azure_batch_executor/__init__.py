"""azure-batch-executor: a concurrent.futures Executor whose workers are Azure Batch tasks.

    from azure_batch_executor import AzureBatchExecutor

    with AzureBatchExecutor(max_workers=4) as ex:   # no Azure settings: the local stack
        print(sum(ex.map(work, range(100))))

Role: the public names. Imports: `executor`, `errors`, and `joblib_backend` lazily.
"""

from __future__ import annotations

from .errors import (
    AzureBatchExecutorError,
    BrokenBatchExecutor,
    ConfigurationError,
    RemoteError,
    RemoteTraceback,
    TaskFailedError,
    TaskPicklingError,
    TaskRejectedError,
    TasksFailedError,
    TaskTerminatedError,
    VersionMismatchError,
)
from .executor import AzureBatchExecutor

__all__ = [
    "AzureBatchExecutor",
    "AzureBatchExecutorError",
    "BrokenBatchExecutor",
    "ConfigurationError",
    "RemoteError",
    "RemoteTraceback",
    "TaskFailedError",
    "TaskPicklingError",
    "TaskRejectedError",
    "TaskTerminatedError",
    "TasksFailedError",
    "VersionMismatchError",
    "register_joblib",
]


def register_joblib() -> None:
    """Register the joblib backend "azure_batch" (see joblib_backend.py); calling it again is
    harmless. Without joblib: ImportError naming pip install "azure-batch-executor[joblib]"."""
    from .joblib_backend import register_joblib as register

    register()
