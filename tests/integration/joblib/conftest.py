"""Fixtures for the joblib backend's integration tests: one local stack per session.

The stack is `shared_stack` (tests/integration/conftest.py), the one
`AzureBatchExecutor()` (and so the backend's reusable executor) lands on when no
Azure account is configured. The backend is registered once; the reusable executor lives
across the tests (that is what it is for) and is shut down at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def local_stack(shared_stack: Any) -> Iterator[Any]:
    from azure_batch_executor import reusable
    from azure_batch_executor.joblib_backend import register_joblib

    register_joblib()
    yield shared_stack
    executor = reusable.current_executor()
    if executor is not None:
        reusable.discard(executor)
        executor.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def batch_client(local_stack: Any) -> Iterator[Any]:
    """The official SDK's BatchClient on the local stack's emulator, to look at jobs."""
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    client = BatchClient(local_stack.batch_account_url, AzureNamedKeyCredential(
        local_stack.batch_account_name, local_stack.batch_account_key))
    yield client
    client.close()
