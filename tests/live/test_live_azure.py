"""The executor on a real Azure Batch account (skipped unless one is configured).

Run with a Batch and a storage account set up as docs/azure-setup.md describes:

    export AZURE_BATCH_EXECUTOR_LIVE=1 BATCH_ACCOUNT_URL=... (and keys or az login)
    .venv/bin/python -m pytest tests/live -ra

Set ABX_LIVE_IMAGE to a worker image made with `azure-batch-executor dockerfile`
(docs/images.md): the default VM image has Python but not cloudpickle.
It creates a small spot pool (deleted at the end), runs the sum-of-powers
walkthrough and checks a remote exception. Nothing here runs in CI: no machine
of this project reaches Azure.
"""

from __future__ import annotations

import os

import pytest

from azure_batch_executor import AzureBatchExecutor

pytestmark = pytest.mark.azure

_missing = [name for name in ("AZURE_BATCH_EXECUTOR_LIVE", "BATCH_ACCOUNT_URL")
            if not os.environ.get(name)]
if _missing:
    pytest.skip(
        f"needs a real Azure account: set {' and '.join(_missing)} (see docs/azure-setup.md)",
        allow_module_level=True,
    )


def _square(x: int) -> int:
    return x * x


def _fail(x: int) -> int:
    raise KeyError(x)


def test_map_and_remote_exception_on_azure() -> None:
    with AzureBatchExecutor(
        max_workers=4,
        pool_id=os.environ.get("ABX_LIVE_POOL_ID", "abx-live-test"),
        dedicated_nodes=0,
        spot_nodes=1,
        task_slots_per_node=4,
        delete_pool_when_done=True,
        container_image=os.environ.get("ABX_LIVE_IMAGE") or None,
    ) as ex:
        assert list(ex.map(_square, range(8))) == [x * x for x in range(8)]
        with pytest.raises(KeyError):
            ex.submit(_fail, 3).result(timeout=1800)
