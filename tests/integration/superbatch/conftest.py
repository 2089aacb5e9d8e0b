"""Fixtures for the SuperBatch client's integration tests: the process-wide local stack.

Azure and registry variables are removed for the session so that a developer's
shell cannot send these tests to a real account.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from azure_batch_executor.config import ENV_NAMES

SEED_VARS = (*ENV_NAMES.values(), "REGISTRY_SERVER", "REGISTRY_USERNAME", "REGISTRY_PASSWORD")


@pytest.fixture(scope="session")
def superbatch_stack() -> Iterator[object]:
    mp = pytest.MonkeyPatch()
    for var in SEED_VARS:
        mp.delenv(var, raising=False)
    try:
        from azure_batch_executor.local import shared_local_stack

        yield shared_local_stack()
    finally:
        mp.undo()


@pytest.fixture
def make_client(superbatch_stack, tmp_path):
    """A superbatch.client on the local stack with a fresh JOB_ID; override any argument."""
    from azure_batch_executor import superbatch

    def make(**kwargs: Any) -> superbatch.client:
        args: dict[str, Any] = dict(
            POOL_ID="superbatch-it", JOB_ID=f"sbtest{uuid.uuid4().hex[:12]}",
            POOL_VM_SIZE="STANDARD_A1_v2", POOL_NODE_COUNT=0, POOL_LOW_PRIORITY_NODE_COUNT=2,
            DELETE_POOL_WHEN_DONE=False, BLOB_CONTAINER_NAME="superbatch-it",
            BATCH_DIRECTORY=str(tmp_path), DOCKER_IMAGE="myusername/sum-of-powers:v1",
            COMMAND_LINE="python3 worker.py",
        )
        args.update(kwargs)
        return superbatch.client(**args)

    return make
