"""A local stack of the CLI suites' own, discoverable in a directory of the tests' own.

The stack is started here, in the test process, with `AZURE_BATCH_EXECUTOR_LOCAL_STACKS`
pointing at a temporary directory: the commands (run through `cli.main`, or as a
subprocess given the same variable) find it there and nowhere else. No Azure variable is
set, so a developer's shell cannot send the commands to a real account. Executors on it
get its settings explicitly, like a user of `azure-batch-executor local` in another shell.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from azure_batch_executor.config import ENV_NAMES
from azure_batch_executor.local import LocalStack
from azure_batch_executor.local.stack import ENV_DISCOVERY_DIR


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    mp = pytest.MonkeyPatch()
    for var in ENV_NAMES.values():
        mp.delenv(var, raising=False)
    mp.setenv(ENV_DISCOVERY_DIR, str(tmp_path_factory.mktemp("local-stacks")))
    try:
        with LocalStack(nodes=1, slots_per_node=2) as running:
            yield running
    finally:
        mp.undo()
