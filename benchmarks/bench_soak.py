"""Soak (issue 16, item 4): long maps under transient faults, client memory bounded.

    .venv/bin/python -m benchmarks.bench_soak [--calls 20000] [--items 100000]

The local stack runs in a child process (`azure-batch-executor local --nodes 2 --slots 4`),
so the peak resident memory of this process is the client's alone (and two small
proxies'). The executor reaches Batch and Blob storage through fault proxies
(tests/support/storage_proxy.py) that refuse 5 % of the client's requests
at random (503 ServerBusy; the nodes' own requests pass, their faults are the fault
table's rows in tests/integration/faults/).

- S1: a `--calls`-call map (chunksize 20) under those faults: every result checked, the
  requests refused and the client's peak RSS reported.
- S2: a `--items`-item map with `buffersize=8` (chunks sized automatically), consumed as
  it goes: its sum checked, the client's peak RSS (goal < 200 MB) and the RSS growth
  over the run reported.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("AZURE_BATCH_EXECUTOR_PROGRESS", "0")

from support.storage_proxy import StorageProxy  # noqa: E402

from azure_batch_executor import AzureBatchExecutor  # noqa: E402


def double(x: int) -> int:
    return 2 * x


def rss_mb() -> float:
    """This process's resident memory now, MB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def start_stack() -> tuple[subprocess.Popen[str], dict[str, str]]:
    cli = Path(sys.executable).with_name("azure-batch-executor")
    proc = subprocess.Popen([str(cli), "local", "--nodes", "2", "--slots", "4"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    found: dict[str, str] = {}
    for line in proc.stdout:
        if line.startswith("export "):
            name, _, value = line[len("export "):].strip().partition("=")
            found[name] = value.strip("'\"")
        if "STORAGE_ACCOUNT_CONNECTION_STRING" in found and "BATCH_ACCOUNT_KEY" in found:
            return proc, found
    raise RuntimeError("the local stack did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--items", type=int, default=100000)
    args = parser.parse_args()
    proc, env = start_stack()
    conn = env["STORAGE_ACCOUNT_CONNECTION_STRING"]
    blob_url = next(p.split("=", 1)[1] for p in conn.split(";") if p.startswith("BlobEndpoint="))
    blob = StorageProxy(blob_url).start()
    batch = StorageProxy(env["BATCH_ACCOUNT_URL"]).start()
    account = dict(batch_account_url=batch.url, batch_account_name=env["BATCH_ACCOUNT_NAME"],
                   batch_account_key=env["BATCH_ACCOUNT_KEY"],
                   storage_connection_string=blob.connection_string(conn),
                   python_command=sys.executable, environment="none", dedicated_nodes=2,
                   task_slots_per_node=4, pool_id="bench-soak")
    try:
        base = rss_mb()
        for proxy, seed in ((blob, 1), (batch, 2)):
            proxy.random_faults(0.05, seed=seed, agent="azsdk-python")
        began = time.perf_counter()
        with AzureBatchExecutor(**account) as ex:
            results = list(ex.map(double, range(args.calls), chunksize=20))
            usage = ex.usage()
        took = time.perf_counter() - began
        assert results == [2 * x for x in range(args.calls)], "wrong results"
        refused, exposed = blob.refused + batch.refused, blob.exposed + batch.exposed
        print(f"S1 {args.calls}-call map (chunksize 20, {usage.tasks} tasks), "
              f"{refused} of the client's {exposed} Batch and Blob requests refused "
              f"({refused / max(exposed, 1):.1%}): every result "
              f"correct in {took:.1f} s; client RSS {base:.0f} MB at start, peak "
              f"{peak_mb():.0f} MB", flush=True)
        for proxy in (blob, batch):
            proxy.random_faults(0.0)
        start = rss_mb()
        began = time.perf_counter()
        total = 0
        with AzureBatchExecutor(**account) as ex:
            for value in ex.map(double, range(args.items), buffersize=8):
                total += value
            tasks = ex.usage().tasks
        took = time.perf_counter() - began
        assert total == args.items * (args.items - 1), "wrong sum"
        print(f"S2 {args.items}-item map, buffersize=8, chunks sized automatically "
              f"({tasks} tasks): sum correct in {took:.1f} s; client RSS {start:.0f} MB "
              f"before, {rss_mb():.0f} MB after, peak {peak_mb():.0f} MB (goal < 200 MB)",
              flush=True)
    finally:
        blob.stop()
        batch.stop()
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
