"""Requests per hour of an idle executor: tasks in flight, nothing completing.

    .venv/bin/python -m benchmarks.bench_idle [--minutes 5] [--only azure|local]

Two executors on one local stack (the Batch emulator in-process, Azurite), each with one
task that waits on a gate for the whole run, counted with their own request counters
(`request_counts()`) every minute:

- "azure": the account given as settings (not the local stack's defaults), so the
  executor paces itself as on Azure (`max_poll_interval` 10 s);
- "local": `max_poll_interval=2.0`, the local stack's default.

Then the same cadence modelled over whole hours: `engine.watch.Watcher` on a fake clock
against a job where nothing completes, counting its requests (counts, safety listings,
health checks of 2 requests; no node environment, so no preparation-status request).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from azure_batch_executor import AzureBatchExecutor
from azure_batch_executor.engine import watch
from azure_batch_executor.local import LocalStack


def wait_gate(path: str) -> None:
    import fcntl

    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)


def measure(stack: LocalStack, minutes: int, only: str | None) -> None:
    import fcntl

    gate_dir = tempfile.mkdtemp(prefix="abx-idle-")
    gate = os.path.join(gate_dir, "gate")
    fd = os.open(gate, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    account = dict(batch_account_url=stack.batch_account_url,
                   batch_account_name=stack.batch_account_name,
                   batch_account_key=stack.batch_account_key,
                   storage_connection_string=stack.storage_connection_string,
                   python_command=sys.executable, environment="none",
                   dedicated_nodes=stack.nodes, task_slots_per_node=stack.slots_per_node)
    kinds = {"azure": {}, "local": {"max_poll_interval": 2.0}}
    executors = {name: AzureBatchExecutor(max_workers=1, **account, **extra)
                 for name, extra in kinds.items() if only in (None, name)}
    futures = {name: ex.submit(wait_gate, gate) for name, ex in executors.items()}
    pause = threading.Event()
    while not all(f.running() for f in futures.values()):
        pause.wait(0.01)
    start = time.monotonic()
    base = {name: ex.request_counts() for name, ex in executors.items()}
    per_minute: dict[str, list[int]] = collections.defaultdict(list)
    last = {name: 0 for name in executors}
    for minute in range(1, minutes + 1):
        pause.wait(max(0.0, start + 60 * minute - time.monotonic()))
        for name, ex in executors.items():
            counts = ex.request_counts()
            total = sum(n - base[name].get(k, 0) for k, n in counts.items() if k != "ticks")
            per_minute[name].append(total - last[name])
            last[name] = total
    for name, ex in executors.items():
        counts = ex.request_counts()
        kinds_used = {k: n - base[name].get(k, 0) for k, n in sorted(counts.items())
                      if n - base[name].get(k, 0)}
        steady = per_minute[name][-1] * 60
        print(f"{name}: requests per minute of idleness {per_minute[name]}; last minute x 60 "
              f"= {steady}/h; over {minutes} min: {kinds_used}", flush=True)
    os.close(fd)  # the gate opens: the tasks end
    for f in futures.values():
        f.result(60)
    for ex in executors.values():
        ex.shutdown()


class _Idle:
    """A job where nothing ever completes, on a fake clock (the model)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.requests: collections.Counter[str] = collections.Counter()

    def task_counts(self, job_id: str) -> tuple[int, int, int]:
        self.requests["batch.task_counts"] += 1
        return 0, 1, 0

    def completed_since(self, job_id: str, since: dt.datetime | None) -> list[Any]:
        self.requests["batch.list"] += 1
        return []

    def check_alive(self, job_id: str) -> None:
        self.requests["batch.get_job"] += 1
        self.requests["batch.get_pool"] += 1


def model(cap: float, hours: int = 2) -> list[int]:
    """Requests in each of the first `hours` hours of idleness, `max_poll_interval=cap`."""
    job = _Idle()
    w = watch.Watcher(job, "job", 0.7, max_interval=cap, clock=lambda: job.now)  # type: ignore[arg-type]
    w.restart()
    per_hour, mark = [], 0
    for hour in range(1, hours + 1):
        while True:
            job.now = max(job.now, w.next_poll)
            if job.now >= 3600.0 * hour:
                break
            w.poll()
            w.check_health()
        total = sum(job.requests.values())
        per_hour.append(total - mark)
        mark = total
    return per_hour


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=5)
    parser.add_argument("--only", choices=["azure", "local"])
    args = parser.parse_args(argv)
    for name, cap in (("azure", 10.0), ("local", 2.0)):
        first, second = model(cap)
        print(f"model {name} (max_poll_interval {cap:g} s): {first} requests in the first idle "
              f"hour, {second} in each hour after", flush=True)
    with LocalStack(nodes=2, slots_per_node=2) as stack:
        measure(stack, args.minutes, args.only)


if __name__ == "__main__":
    main()
