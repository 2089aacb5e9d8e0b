"""The examples the README points to run and print what they promise."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_batch_sdk_demo_sums_match() -> None:
    out = _run("batch_sdk_demo.py")
    assert "serial sum: 1880943500   Batch sum: 1880943500" in out
    assert "1234^3 = 1879080904 (computed by Batch task cube-1234)" in out
