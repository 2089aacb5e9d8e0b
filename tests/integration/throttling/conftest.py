"""Fixtures of the throttling suite: the shared local stack, a throttling proxy in front
of its Azurite (`StorageProxy`), and executors whose Blob side goes through that proxy.

The Batch side is throttled by the emulator itself (`local_stack.emulator.throttle`);
every test clears both throttles when it ends.
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
def storage_proxy(local_stack: Any) -> Iterator[StorageProxy]:
    proxy = StorageProxy(local_stack.azurite.blob_url).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def make_executor(local_stack: Any, storage_proxy: StorageProxy) -> Iterator[Any]:
    """Build executors on the local stack whose Blob requests go through `storage_proxy`
    (the nodes' too: their SAS URLs name it); each is shut down after the test, after the
    emulator's throttles are cleared."""
    proxy = storage_proxy
    proxied_class = proxied_executor_class(proxy)
    made: list[AzureBatchExecutor] = []

    def make(max_workers: int | None = None, **kwargs: Any) -> AzureBatchExecutor:
        ex = proxied_class(max_workers=max_workers, **kwargs)
        made.append(ex)
        return ex

    try:
        yield make
    finally:
        local_stack.emulator.clear_throttling()
        proxy.throttle(0.0)
        for ex in made:
            ex.shutdown(wait=True, cancel_futures=True)
