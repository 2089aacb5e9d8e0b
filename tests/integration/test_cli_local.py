"""`azure-batch-executor local`: a whole local stack in one process, used from another.

The printed export lines are what a user pastes into a shell; an executor
configured with exactly those settings (the "Azure account" path: shared keys
and a connection string, not the built-in local stack) runs calls on it.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from azure_batch_executor import AzureBatchExecutor

ROOT = Path(__file__).resolve().parents[2]
NAMES = {
    "BATCH_ACCOUNT_URL",
    "BATCH_ACCOUNT_NAME",
    "BATCH_ACCOUNT_KEY",
    "STORAGE_ACCOUNT_CONNECTION_STRING",
}


def _cube(x: int) -> int:
    return x**3


def test_local_command_exports_settings_an_executor_can_use() -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "azure_batch_executor.cli", "local", "--nodes", "1"],
        stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        settings = {}
        for _ in range(len(NAMES)):
            words = shlex.split(proc.stdout.readline())
            assert words[0] == "export", words
            name, value = words[1].split("=", 1)
            settings[name] = value
        assert set(settings) == NAMES
        with AzureBatchExecutor(
            max_workers=2,
            batch_account_url=settings["BATCH_ACCOUNT_URL"],
            batch_account_name=settings["BATCH_ACCOUNT_NAME"],
            batch_account_key=settings["BATCH_ACCOUNT_KEY"],
            storage_connection_string=settings["STORAGE_ACCOUNT_CONNECTION_STRING"],
            dedicated_nodes=1,
            task_slots_per_node=2,
        ) as ex:
            assert list(ex.map(_cube, range(5))) == [0, 1, 8, 27, 64]
            assert settings["BATCH_ACCOUNT_KEY"] not in repr(ex)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
