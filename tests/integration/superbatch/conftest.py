"""Fixtures for the SuperBatch client's integration tests: the process-wide local stack.

The stack and the removal of Azure and registry variables come from
tests/integration/conftest.py (`shared_stack`).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest


@pytest.fixture(scope="session")
def superbatch_stack(shared_stack: Any) -> Any:
    return shared_stack


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
