"""Accounts: the Blob and Batch sides of one resolved configuration.

Role: what the executor and the SuperBatch client both do once their settings are
resolved: complete them with the local stack when no Azure account is configured
(`with_local_stack`), and build the Blob and Batch sides (`connect`, no request
yet): the default `ports.Connect` of `AzureBatchExecutor.connect` and
`superbatch.client.connect`, which a subclass (the unit tests' fakes) may replace.
"""

from __future__ import annotations

from ..cloud.batch import BatchService
from ..cloud.ports import BatchPort, BlobPort
from ..cloud.retry import RequestStats, RetryPolicy
from ..cloud.storage import BlobStore
from ..config import Settings


def with_local_stack(settings: Settings) -> Settings:
    """`settings` completed by the process-wide local stack (started on first use)."""
    from ..local import shared_local_stack

    stack = shared_local_stack()
    return settings.with_local_stack(
        batch_account_url=stack.batch_account_url,
        batch_account_name=stack.batch_account_name,
        batch_account_key=stack.batch_account_key,
        storage_connection_string=stack.storage_connection_string,
        nodes=stack.nodes,
        slots_per_node=stack.slots_per_node,
        node_image=stack.node_image,
    )


def connect(settings: Settings, stats: RequestStats, retry: RetryPolicy
            ) -> tuple[BlobPort, BatchPort]:
    """The Blob and Batch sides (no request yet), sharing the request counters."""
    return BlobStore(settings, stats, retry), BatchService(settings, stats, retry)
