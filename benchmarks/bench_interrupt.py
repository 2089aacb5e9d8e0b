"""Ctrl-C: seconds from SIGINT to the script's exit, with four 40-second tasks running.

    .venv/bin/python -m benchmarks.bench_interrupt [--runs N]

Runs tests/integration/executor/interrupt_script.py (four tasks that sleep 40 s; the
script prints READY once all four run) against a local stack this benchmark starts, sends
SIGINT, and times until the process has exited (tests/integration/executor/test_interrupt.py
checks the job and its tasks afterwards). Issue 9's goal: within 2 s on the local stack.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from azure_batch_executor.config import ENV_NAMES
from azure_batch_executor.local import LocalStack

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "integration" / "executor" / "interrupt_script.py"


def one_run(stack: LocalStack, how: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES.values()}
    env.update({ENV_NAMES["batch_account_url"]: stack.batch_account_url,
                ENV_NAMES["batch_account_name"]: stack.batch_account_name,
                ENV_NAMES["batch_account_key"]: stack.batch_account_key,
                ENV_NAMES["storage_connection_string"]: stack.storage_connection_string,
                "NO_PROXY": "127.0.0.1,localhost", "PYTHONPATH": str(ROOT)})
    with tempfile.TemporaryDirectory() as tmp:
        fifo = Path(tmp) / "started"
        os.mkfifo(fifo)
        proc = subprocess.Popen([sys.executable, str(SCRIPT), str(fifo), how], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("READY"):
                break
        start = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    with LocalStack(nodes=2, slots_per_node=2) as stack:
        for how in ("submit", "map", "bare"):
            times = [one_run(stack, how) for _ in range(args.runs)]
            print(f"{how:6s} SIGINT -> exit: median {statistics.median(times):.2f} s, "
                  f"max {max(times):.2f} s over {len(times)} runs")


if __name__ == "__main__":
    main()
