"""Fixtures for the executor's integration tests: one local stack per session.

The stack is `shared_local_stack()`, the same one `AzureBatchExecutor()` uses
when no Azure account is configured, so executors built with no settings at
all land on it. Azure variables are removed for the session so that a
developer's shell cannot send these tests to a real account.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from azure_batch_executor.config import ENV_NAMES


@pytest.fixture(scope="session")
def local_stack() -> Iterator[object]:
    mp = pytest.MonkeyPatch()
    for var in ENV_NAMES.values():
        mp.delenv(var, raising=False)
    try:
        from azure_batch_executor.local import shared_local_stack

        yield shared_local_stack()
    finally:
        mp.undo()


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
