"""Fixtures of the compatibility suite: a strict emulator and the official clients.

- `emulator` (module): a strict `BatchEmulator` (the default mode), reset after each test.
- `azure_batch_14` (session): the python of `.venv-compat/azure-batch-14` with azure-batch
  14.2.0 (`BatchServiceClient`; it cannot share a virtualenv with 15.x), built on first use.
- `node_batch` (session): `node`, with `@azure/batch` as pinned in package.json installed
  by `npm ci` (`make setup`); skipped, naming the fix, when either is missing.
- `az_cli` (session): the python of `.venv-compat/azure-cli`; built only when
  AZURE_BATCH_EXECUTOR_COMPAT_CLI=1 (about a minute and 200 packages), used whenever it
  exists, otherwise the CLI test is skipped with that reason.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from compat_kit import COMPAT_VENVS, ROOT, client_venv

from azure_batch_executor.emulator import BatchEmulator

AZURE_BATCH_14 = ["azure-batch==14.2.0"]
AZURE_CLI = ["azure-cli==2.91.0"]
CLI_SWITCH = "AZURE_BATCH_EXECUTOR_COMPAT_CLI"


@pytest.fixture(scope="module")
def emulator() -> Iterator[BatchEmulator]:
    emu = BatchEmulator(nodes=2, slots_per_node=4, transition_delay=0.02).start()
    yield emu
    emu.stop()


@pytest.fixture(autouse=True)
def _fresh(emulator: BatchEmulator) -> Iterator[None]:
    emulator.reset()
    emulator.reset_request_counts()
    yield


@pytest.fixture(scope="session")
def azure_batch_14() -> Path:
    return client_venv("azure-batch-14", AZURE_BATCH_14)


@pytest.fixture(scope="session")
def node_batch() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH; install Node.js 20 to run the @azure/batch suite")
    if not (ROOT / "node_modules" / "@azure" / "batch" / "package.json").exists():
        pytest.skip(f"@azure/batch is not installed in {ROOT / 'node_modules'}; run `npm ci` "
                    "(or `make setup`) in the repository")
    return node


@pytest.fixture(scope="session")
def az_cli() -> Path:
    if not (COMPAT_VENVS / "azure-cli").exists() and os.environ.get(CLI_SWITCH) != "1":
        pytest.skip(f"the az CLI suite needs {COMPAT_VENVS / 'azure-cli'}: set {CLI_SWITCH}=1 "
                    "to build it (pip install azure-cli, about a minute)")
    return client_venv("azure-cli", AZURE_CLI, timeout=900)
