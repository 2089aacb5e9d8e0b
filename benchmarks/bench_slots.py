"""Slots never idle (issue 14): throughput and turnaround at default settings.

    .venv/bin/python -m benchmarks.bench_slots [--only local|azure-like] [--calls 400]

On the process-wide local stack (2 nodes x 2 slots, client-image nodes, warm):

- T1: a 200-call `map` of a 50 ms function, side by side with `ProcessPoolExecutor(4)`,
  at the default settings and at the settings that reproduce the old behaviour
  (``chunksize=1, queue_depth=0``);
- T2: a 20-call sequential ``submit().result()`` loop, per-call p50 and p95.

Azure-like timing (T3): the emulator draws a 2-5 s scheduling latency per task
(`set_scheduling_latency`), on a pool of 2 nodes x 4 slots; `--calls` calls (default 400)
of a 2 s function, default settings against the old behaviour; each against the ideal
(calls x 2 s / 8 slots).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("AZURE_BATCH_EXECUTOR_LOCAL_NODE_IMAGE", "client")
os.environ.setdefault("AZURE_BATCH_EXECUTOR_ENVIRONMENT", "none")
os.environ.setdefault("AZURE_BATCH_EXECUTOR_PROGRESS", "0")

from azure_batch_executor import AzureBatchExecutor
from azure_batch_executor.cloud.batch import BatchService
from azure_batch_executor.cloud.retry import RequestStats, RetryPolicy
from azure_batch_executor.config import Settings
from azure_batch_executor.local import LocalStack

OLD = {"queue_depth": 0}  # with chunksize=1: one task per call, added when a slot frees


def fifty_ms(x: int) -> int:
    time.sleep(0.05)
    return x


def two_s(x: int) -> int:
    time.sleep(2.0)
    return x


def ident(x: int) -> int:
    return x


def timed_map(ex, fn, n: int, chunksize: int | None) -> float:
    began = time.perf_counter()
    assert list(ex.map(fn, range(n), chunksize=chunksize)) == list(range(n))
    return time.perf_counter() - began


def local() -> None:
    with ProcessPoolExecutor(4) as pool:
        list(pool.map(ident, range(8)))  # warm
        began = time.perf_counter()
        assert list(pool.map(fifty_ms, range(200))) == list(range(200))
        local_pool = time.perf_counter() - began
    print(f"T1 ProcessPoolExecutor(4): 200 x 50 ms map: {local_pool:.2f} s")
    for label, settings, chunksize in (("old behaviour (chunksize=1, queue_depth=0)", OLD, 1),
                                       ("default settings", {}, None)):
        with AzureBatchExecutor(**settings) as ex:
            list(ex.map(ident, range(8), chunksize=1))  # warm: nodes, worker, interpreter
            took = timed_map(ex, fifty_ms, 200, chunksize)
            tasks = ex.usage().tasks - 8
        print(f"T1 AzureBatchExecutor, {label}: {took:.2f} s = "
              f"{took / local_pool:.1f}x ProcessPoolExecutor(4), {tasks} tasks")
    with AzureBatchExecutor(keep_job=True) as ex:
        ex.submit(ident, 0).result()  # warm
        ex.submit(ident, 0).result()
        laps, stamps = [], []
        for i in range(20):
            began, wall = time.perf_counter(), time.time()
            future = ex.submit(ident, i)
            assert future.result() == i
            laps.append(time.perf_counter() - began)
            stamps.append((wall, wall + laps[-1]))
        stages = per_stage(ex, stamps)
    laps.sort()
    print(f"T2 sequential submit().result(), 20 calls: p50 {statistics.median(laps) * 1000:.0f}"
          f" ms, p95 {laps[18] * 1000:.0f} ms, max {laps[-1] * 1000:.0f} ms")
    print("T2 per stage, p50 ms: " + ", ".join(f"{k} {v:.0f}" for k, v in stages.items()))


def per_stage(ex, stamps: list[tuple[float, float]]) -> dict[str, float]:
    """p50 of each stage of the sequential calls (the emulator's clock is this host's):
    submit -> task created (dispatch, add), created -> started (scheduling), started ->
    ended (the worker process: Python start, imports, the call, outputs written), ended
    -> resolved (the poll finding it, the download, the future set)."""
    client = ex._ctx.services.batch.client
    tasks = {t.id: t for t in client.list_tasks(ex.job_id)}
    rows = []
    for i, (submitted, resolved) in enumerate(stamps, start=2):
        t = tasks[ex._ctx.services.layout.task_id(i)]
        info = t.execution_info
        created, start, end = (t.creation_time.timestamp(), info.start_time.timestamp(),
                               info.end_time.timestamp())
        rows.append((created - submitted, start - created, end - start, resolved - end))
    names = ("submit->created", "created->started", "started->ended", "ended->resolved")
    return {name: statistics.median(r[k] for r in rows) * 1000
            for k, name in enumerate(names)}


def azure_like(calls: int, skip: int = 0) -> None:
    """T3 on a stack of its own (2 nodes x 4 slots, 2-5 s scheduling latency), given to the
    executor as an account: it paces itself as on Azure (chunk_target 30 s, polls up to
    10 s apart), as it would against a real one."""
    stack = LocalStack(nodes=2, slots_per_node=4,
                       emulator_options={"scheduling_latency": (2.0, 5.0),
                                         "scheduling_seed": 14}).start()
    account = dict(batch_account_url=stack.batch_account_url,
                   batch_account_name=stack.batch_account_name,
                   batch_account_key=stack.batch_account_key,
                   storage_connection_string=stack.storage_connection_string,
                   python_command=sys.executable, environment="none", dedicated_nodes=2,
                   task_slots_per_node=4, pool_id="bench-slots-2x4")
    ideal = calls * 2.0 / 8
    # a fixed pool of 2 x 4 (made first, so the executors use it as it is): a pool they
    # create would autoscale, and its first evaluation can leave it one node for minutes
    fixed = dataclasses.replace(Settings.resolve(**account), local=True)
    BatchService(fixed, RequestStats(), RetryPolicy()).ensure_pool()
    try:
        variants = [("old behaviour (chunksize=1, queue_depth=0)", OLD, 1),
                    ("queue ahead alone (chunksize=1)", {}, 1),
                    ("default settings", {}, None)]
        for label, settings, chunksize in variants[skip:]:
            with AzureBatchExecutor(**account, **settings) as ex:
                list(ex.map(ident, range(8), chunksize=1))  # the pool's nodes up
                took = timed_map(ex, two_s, calls, chunksize)
                tasks = ex.usage().tasks - 8
            print(f"T3 Azure-like (2-5 s scheduling latency), {calls} x 2 s on 2 x 4 slots, "
                  f"{label}: {took:.1f} s = {took / ideal:.2f}x the ideal {ideal:.0f} s, "
                  f"{tasks} tasks", flush=True)
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["local", "azure-like"])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--skip", type=int, default=0,
                        help="T3: skip the first SKIP variants (0: old behaviour first)")
    args = parser.parse_args()
    if args.only in (None, "local"):
        local()
    if args.only in (None, "azure-like"):
        azure_like(args.calls, args.skip)


if __name__ == "__main__":
    main()
