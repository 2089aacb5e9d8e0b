"""Fixtures for the executor's integration tests: one local stack per session.

The stack is `shared_stack` (tests/integration/conftest.py): the one
`AzureBatchExecutor()` uses when no Azure account is configured, so executors
built with no settings at all land on it.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def local_stack(shared_stack: Any) -> Any:
    return shared_stack


@pytest.fixture
def make_batch_executor(local_stack):
    """Build AzureBatchExecutors on the local stack; each is shut down after the test."""
    from azure_batch_executor import AzureBatchExecutor

    made: list[AzureBatchExecutor] = []

    def make(max_workers=None, **kwargs):
        ex = AzureBatchExecutor(max_workers=max_workers, **kwargs)
        made.append(ex)
        return ex

    yield make
    for ex in made:
        ex.shutdown(wait=True, cancel_futures=True)
