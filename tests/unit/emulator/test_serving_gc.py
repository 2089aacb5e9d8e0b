"""The emulator's own processes (the CLI commands, benchmark children) tune the collector."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc
from azure_batch_executor.emulator import tune_gc_for_serving
before = gc.get_threshold()
tune_gc_for_serving()
print(before != gc.get_threshold(), gc.get_threshold(), gc.get_freeze_count() > 0)
"""


def test_tuning_freezes_what_is_loaded_and_raises_the_thresholds() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=60, check=True).stdout.strip().split(maxsplit=1)
    assert out == ["True", "(50000, 20, 100) True"]


def test_importing_the_emulator_leaves_the_collector_alone() -> None:
    """The in-process local stack shares the user's process: nothing changes on import."""
    code = ("import gc; t = gc.get_threshold(); import azure_batch_executor.emulator; "
            "from azure_batch_executor.emulator import BatchEmulator; "
            "print(gc.get_threshold() == t, gc.get_freeze_count())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out == ["True", "0"]
