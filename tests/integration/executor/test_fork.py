"""Executors across os.fork() (issue 9, item 3): a forked child either gets a fresh executor
(`get_reusable_executor`, the joblib backend) or a clear error at once (the parent's own
`AzureBatchExecutor`); never a hang, and the parent's executors and local stack survive.

One run of fork_script.py in its own interpreter (it starts its own local stack, forks two
children one after the other and reports in one JSON line), shared by the tests below.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from azure_batch_executor.config import ENV_NAMES

SCRIPT = Path(__file__).with_name("fork_script.py")
ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork() is POSIX only")


@pytest.fixture(scope="module")
def run() -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items()
           if k not in ENV_NAMES.values() and not k.startswith("AZURE_BATCH_EXECUTOR_")}
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          timeout=400, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    report["stderr"] = done.stderr
    return report


def test_child_gets_a_fresh_reusable_executor_and_joblib_works(run: dict[str, Any]) -> None:
    child = run["reusable"]
    assert child["exit"] == 0, child
    assert child["report"]["fresh_job"] is True
    assert child["report"]["submit"] == 49
    assert child["report"]["joblib"] == [0, 1, 4, 9, 16]
    assert child["report"]["same_reusable"] is True
    # the child logs why it built its own executor, naming the parent's process
    assert "building a new reusable AzureBatchExecutor in process" in run["stderr"]
    assert f"forked from process {run['parent_pid']}" in run["stderr"]


def test_parents_executor_in_a_child_raises_at_once(run: dict[str, Any]) -> None:
    child = run["direct"]
    assert child["exit"] == 0, child
    for call in ("submit", "map"):
        outcome = child["report"][call]
        assert "error" in outcome, outcome
        assert outcome["seconds"] < 1.0
        message = outcome["error"]
        assert f"belongs to process {run['parent_pid']}" in message
        assert "After os.fork() create a new AzureBatchExecutor in the child" in message
        assert "get_reusable_executor()" in message
    assert child["report"]["shutdown_seconds"] < 1.0
    assert child["report"]["shut_down"] is True


def test_parent_goes_on_after_its_children(run: dict[str, Any]) -> None:
    """Neither child shut down the parent's executors or stopped its local stack (the
    "reusable" child left through sys.exit, running its exit handlers)."""
    assert run["before"] == [4, 9]
    assert run["after"] == [16, 25]
    assert run["same_reusable"] is True
