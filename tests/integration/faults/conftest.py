"""Fixtures of the infrastructure fault table: the shared local stack, two fault-injecting
proxies (`support.storage_proxy.StorageProxy`): one in front of its
Azurite, one in front of its Batch emulator, and executors whose Blob *and* Batch requests
go through them (the nodes' Blob requests too: their SAS URLs name the Blob proxy).

Every test clears both proxies' faults before its executors are shut down.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support.storage_proxy import StorageProxy, proxied_executor_class

from azure_batch_executor import AzureBatchExecutor


@pytest.fixture(scope="session")
def local_stack(shared_stack: Any) -> Any:
    return shared_stack


@pytest.fixture
def blob_proxy(local_stack: Any) -> Iterator[StorageProxy]:
    proxy = StorageProxy(local_stack.azurite.blob_url).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def batch_proxy(local_stack: Any) -> Iterator[StorageProxy]:
    proxy = StorageProxy(local_stack.batch_account_url).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def make_proxied_executor(local_stack: Any, blob_proxy: StorageProxy,
                          batch_proxy: StorageProxy) -> Iterator[Any]:
    """Build executors on the local stack whose Blob and Batch requests go through the two
    proxies; each is shut down after the test, once the proxies' faults are cleared."""

    proxied_class = proxied_executor_class(blob_proxy, batch_proxy)
    made: list[AzureBatchExecutor] = []

    def make(max_workers: int | None = None, **kwargs: Any) -> AzureBatchExecutor:
        ex = proxied_class(max_workers=max_workers, **kwargs)
        made.append(ex)
        return ex

    try:
        yield make
    finally:
        blob_proxy.clear_faults()
        batch_proxy.clear_faults()
        for ex in made:
            ex.shutdown(wait=True, cancel_futures=True)
