"""Helpers of the infrastructure fault table: the fault-injecting proxy (shared with the
throttling suite), the task functions the rows run, and looks at the Batch job that go
straight to the emulator (never through the proxies)."""

from __future__ import annotations

import hashlib
from typing import Any

from support.gates import Gate, wait_gate  # noqa: F401 - re-exported
from support.storage_proxy import ProxyFault, StorageProxy  # noqa: F401 - re-exported
from support.waiting import wait_until  # noqa: F401 - re-exported


# ------------------------------------------------------------------ task functions
def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def square(x: int) -> int:
    return x * x


def after_gate(path: str, value: Any) -> Any:
    return wait_gate(path, value)


# ------------------------------------------------------------------ the job, seen directly
def batch_client(stack: Any) -> Any:
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    return BatchClient(stack.batch_account_url, AzureNamedKeyCredential(
        stack.batch_account_name, stack.batch_account_key))


def job_task_ids(stack: Any, job_id: str) -> list[str]:
    """The ids of the job's tasks, as Batch lists them (duplicates would show twice)."""
    client = batch_client(stack)
    try:
        return [t.id for t in client.list_tasks(job_id, select=["id"])]
    finally:
        client.close()


def job_tasks_completed(stack: Any, job_id: str) -> bool:
    """Whether the job has tasks and every one of them has completed."""
    client = batch_client(stack)
    try:
        states = [str(t.state).lower() for t in client.list_tasks(job_id, select=["id", "state"])]
    finally:
        client.close()
    return bool(states) and all(state.endswith("completed") for state in states)


def running_on(stack: Any, job_id: str, task_id: str, requeues: int) -> str | None:
    """The node `task_id` runs on once it runs after `requeues` requeues, else None."""
    from azure.core.exceptions import ResourceNotFoundError

    client = batch_client(stack)
    try:
        try:
            task = client.get_task(job_id, task_id)
        except ResourceNotFoundError:  # not added yet
            return None
    finally:
        client.close()
    info = task.execution_info
    if (str(task.state).lower().endswith("running") and task.node_info is not None
            and info is not None and int(info.requeue_count or 0) == requeues):
        return str(task.node_info.node_id)
    return None
