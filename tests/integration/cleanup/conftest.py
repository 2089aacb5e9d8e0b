"""Fixtures for the cleanup and usage suites, on the process-wide local stack.

`make_batch_executor` builds executors that are shut down after the test; `batch_client`
and `container` read what they left on the Batch emulator and in Azurite through the
official SDKs, as a user's tools would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def local_stack(shared_stack: Any) -> Any:
    return shared_stack


@pytest.fixture
def make_batch_executor(local_stack: Any) -> Iterator[Any]:
    from azure_batch_executor import AzureBatchExecutor

    made: list[AzureBatchExecutor] = []

    def make(max_workers: int | None = None, **kwargs: Any) -> AzureBatchExecutor:
        ex = AzureBatchExecutor(max_workers=max_workers, **kwargs)
        made.append(ex)
        return ex

    yield make
    for ex in made:
        ex.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def batch_client(local_stack: Any) -> Iterator[Any]:
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    client = BatchClient(local_stack.batch_account_url, AzureNamedKeyCredential(
        local_stack.batch_account_name, local_stack.batch_account_key))
    yield client
    client.close()


@pytest.fixture
def container(local_stack: Any) -> Iterator[Any]:
    from azure.storage.blob import ContainerClient

    from azure_batch_executor import constants as C

    client = ContainerClient.from_connection_string(local_stack.storage_connection_string,
                                                    C.DEFAULT_CONTAINER_NAME)
    yield client
    client.close()
