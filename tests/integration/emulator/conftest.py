"""Fixtures for the emulator's SDK tests: one emulator per module, reset after each test.

Task commands run as real processes through the emulator's `TaskRunner`; the node's
PATH starts with this interpreter's directory, so `python3` is the test's Python.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.batch import BatchClient
from emu_sdk_kit import PATH_PREFIX, client_for

from azure_batch_executor.emulator import BatchEmulator


@pytest.fixture(scope="module")
def emulator() -> Iterator[BatchEmulator]:
    emu = BatchEmulator(nodes=2, slots_per_node=4, path_prefix=PATH_PREFIX,
                        transition_delay=0.02).start()
    yield emu
    emu.stop()


@pytest.fixture
def client(emulator: BatchEmulator) -> Iterator[BatchClient]:
    c = client_for(emulator)
    yield c
    c.close()
    emulator.reset()
    emulator.reset_request_counts()
