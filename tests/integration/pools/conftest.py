"""A local stack of the pool suites' own: its emulator's autoscale runs fast (0.5 s stands
for the service's 5 minutes, so an `idle_timeout` of 600 s lasts 1 s), its nodes boot in
1 s (a wait for them is long enough to be said), and its account's
quotas are changed per test through the emulator's admin methods (`set_quotas`), put back
after each. Every test names its own pool; the executors reach the stack by its URL, as
they would an Azure account, so the pools they create autoscale.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from azure_batch_executor.config import ENV_NAMES

MIN_INTERVAL = 0.5  # emulator seconds standing for PT5M


@pytest.fixture(scope="session")
def pools_stack() -> Iterator[Any]:
    from azure_batch_executor.local import LocalStack

    mp = pytest.MonkeyPatch()
    for var in ENV_NAMES.values():
        mp.delenv(var, raising=False)
    with LocalStack(nodes=3, slots_per_node=1, allocation_delay=1.0, emulator_options={
            "autoscale_min_interval": MIN_INTERVAL}) as stack:
        yield stack
    mp.undo()


@pytest.fixture
def stack(pools_stack: Any) -> Iterator[Any]:
    """The stack, its quotas unlimited again after the test."""
    yield pools_stack
    pools_stack.emulator.set_quotas(pools=None, active_jobs=None, dedicated_cores=None,
                                    low_priority_cores=None)
    pools_stack.emulator.clear_faults()


@pytest.fixture
def pool_id() -> str:
    return f"abx-pools-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def account(stack: Any) -> dict[str, Any]:
    """Executor settings that reach the stack as an account."""
    return {"batch_account_url": stack.batch_account_url,
            "batch_account_name": stack.batch_account_name,
            "batch_account_key": stack.batch_account_key,
            "storage_connection_string": stack.storage_connection_string,
            "python_command": sys.executable, "environment": "none", "poll_interval": 0.2}


@pytest.fixture
def sdk(stack: Any) -> Iterator[Any]:
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    client = BatchClient(stack.batch_account_url, AzureNamedKeyCredential(
        stack.batch_account_name, stack.batch_account_key))
    yield client
    client.close()

