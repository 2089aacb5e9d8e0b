"""Fixtures shared by the integration suites that run on the process-wide local stack.

`shared_stack` is `shared_local_stack()`, the stack `AzureBatchExecutor()` (and the
SuperBatch client, and the joblib backend's reusable executor) lands on when no Azure
account is configured. Azure and registry variables are removed for the session first,
so that a developer's shell cannot send these tests to a real account.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from azure_batch_executor.config import ENV_NAMES

AZURE_VARS = (*ENV_NAMES.values(), "REGISTRY_SERVER", "REGISTRY_USERNAME", "REGISTRY_PASSWORD")


@pytest.fixture(scope="session")
def shared_stack() -> Iterator[Any]:
    mp = pytest.MonkeyPatch()
    for var in AZURE_VARS:
        mp.delenv(var, raising=False)
    try:
        from azure_batch_executor.local import shared_local_stack

        yield shared_local_stack()
    finally:
        mp.undo()
