"""A local stack whose nodes are bare (python3 and nothing else, as a stock Batch image),
so every job prepares its environment with a real job preparation task running uv.

The other suites use the process-wide stack, whose nodes stand in for an image built
from the client's environment (faster: no preparation); these tests are the ones about
environments. uv and the packages come from the package index this machine reaches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from azure_batch_executor.config import ENV_NAMES


@pytest.fixture(scope="session")
def bare_stack() -> Iterator[Any]:
    from azure_batch_executor.local import LocalStack

    mp = pytest.MonkeyPatch()
    for var in ENV_NAMES.values():
        mp.delenv(var, raising=False)
    with LocalStack(nodes=2, slots_per_node=2, node_image="bare") as stack:
        yield stack
    mp.undo()


@pytest.fixture
def bare_settings(bare_stack: Any) -> dict[str, Any]:
    """Executor settings for the bare stack."""
    return {"batch_account_url": bare_stack.batch_account_url,
            "batch_account_name": bare_stack.batch_account_name,
            "batch_account_key": bare_stack.batch_account_key,
            "storage_connection_string": bare_stack.storage_connection_string,
            "dedicated_nodes": 2, "task_slots_per_node": 2, "poll_interval": 0.3}


@pytest.fixture
def batch_client(bare_stack: Any) -> Iterator[Any]:
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    client = BatchClient(bare_stack.batch_account_url, AzureNamedKeyCredential(
        bare_stack.batch_account_name, bare_stack.batch_account_key))
    yield client
    client.close()
