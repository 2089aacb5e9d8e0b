"""Fixtures for the task runner's unit tests: a runner, a run helper, a fake blob endpoint.

The helper classes live in `runner_testkit.py` (a unique module name, so that
test modules can import them whichever other conftest.py files are collected).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from runner_testkit import FakeBlobServer, ReadySignal, Waiter

from azure_batch_executor.emulator.runner import RunOutcome, RunSpec, TaskRunner


@pytest.fixture
def blob_server() -> Iterator[FakeBlobServer]:
    server = FakeBlobServer()
    yield server
    server.close()


@pytest.fixture
def runner() -> Iterator[TaskRunner]:
    r = TaskRunner(http_timeout=5.0)
    yield r
    r.stop()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(tmp_path / "task" / "wd")}


@pytest.fixture
def make_spec(tmp_path: Path, env: dict[str, str]) -> Callable[..., RunSpec]:
    def make(command_line: str, **kw: Any) -> RunSpec:
        kw.setdefault("run_id", "run-1")
        kw.setdefault("task_dir", tmp_path / "task")
        kw.setdefault("env", env)
        return RunSpec(command_line=command_line, **kw)

    return make


@pytest.fixture
def run(runner: TaskRunner, make_spec: Callable[..., RunSpec]) -> Callable[..., RunOutcome]:
    """Start one attempt and wait for its outcome."""

    def go(command_line: str, **kw: Any) -> RunOutcome:
        waiter = Waiter()
        runner.start(make_spec(command_line, **kw), waiter)
        return waiter.wait()

    return go


@pytest.fixture
def ready(tmp_path: Path) -> Iterator[ReadySignal]:
    signal = ReadySignal(tmp_path / "ready.fifo")
    yield signal
    signal.close()
