"""Fixtures for the emulator's model/scheduler unit tests: a fake runner, a hand-driven backend.

No HTTP and no scheduler thread: tests call backend operations inside `op()` and advance
the world with `world.tick()` (transient states last 0 s), so every step is deterministic.
The doubles live in `emulator_fakes.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from emulator_fakes import World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield World(tmp_path)


@pytest.fixture
def make_world(tmp_path: Path) -> Callable[..., World]:
    counter = iter(range(1000))

    def make(**settings: Any) -> World:
        path = tmp_path / f"w{next(counter)}"
        path.mkdir()
        return World(path, **settings)

    return make
