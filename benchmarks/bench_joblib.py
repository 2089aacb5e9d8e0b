"""The joblib backend on the local stack: requests per delayed call, wall time, task cost.

    .venv/bin/python -m benchmarks.bench_joblib          (or: make bench)
    options: --runs N (warm runs of J1 and runs of J2, default 3), --calls N (default 200)

J1  200 `delayed` calls of a 1 ms function under ``parallel_config(backend="azure_batch",
    n_jobs=-1)`` with joblib's auto-batching: requests to Batch + Blob per call (target
    <= 2), tasks used, wall time; against the same calls with ``n_jobs=1`` (in-process).
    The first call builds the reusable executor (pool, job, worker and config blobs) and
    is reported apart ("cold"); the next ones reuse it ("warm").
J2  what one Batch task costs, seen from joblib: 40 no-op calls at batch_size=1 with
    n_jobs=-1; the dispatch-to-callback duration of a batch (what AutoBatchingMixin
    measures) and the slot time per task (wall x slots / tasks). The backend's
    MIN/MAX_IDEAL_BATCH_DURATION are derived from it (see joblib_backend.py).
J3  shared large arguments: 50 calls that all take one 5 MB numpy array, through joblib
    (batch_size=1: 50 tasks) and through executor.submit(); the bytes the client uploads
    (blobs under the job's prefix, outputs and logs excluded; target <= 1.2 x 5 MB) and
    the client time of a submit() carrying the array (pickle + sha256, no upload).

How requests are counted, three ways:
- client: the executor's own counters (`AzureBatchExecutor.request_counts()`, every
  HTTP attempt the client sends, by kind);
- Batch, server side: the emulator's counters (`GET /_emulator/stats`), to cross-check;
- Blob, server side: Azurite started with ``--debug LOG``; every request it serves is a
  ``RequestMethod=`` line. Lines whose user agent is the Python storage SDK are the
  client's; the others are the node side (the emulator's runner downloading resource
  files and uploading outputs, which the Batch node agent does on Azure).

The emulator runs in a child process (like the service, it does not share the client's
GIL), Azurite in its own Node.js process, 2 nodes x 2 slots (the local stack's default).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from joblib import Parallel, delayed, parallel_config
from joblib.parallel import register_parallel_backend

from azure_batch_executor import reusable
from azure_batch_executor.joblib_backend import AzureBatchBackend
from azure_batch_executor.local.azurite import _connection_string, _find_azurite

ROOT = Path(__file__).resolve().parents[1]
NODES, SLOTS = 2, 2
EMULATOR_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
from azure_batch_executor.emulator import BatchEmulator, tune_gc_for_serving
emu = BatchEmulator(nodes=int(sys.argv[3]), slots_per_node=int(sys.argv[4]),
                    path_prefix=(sys.argv[2],)).start()
tune_gc_for_serving()  # as the `emulator` command does
print(emu.url, emu.account_name, emu.account_key, flush=True)
sys.stdin.read()
emu.stop()
"""


def one_ms(x: int) -> int:
    time.sleep(0.001)
    return x


def noop(x: int) -> int:
    return x


class RecordingBackend(AzureBatchBackend):
    """The backend, recording the batches it submits and the durations joblib measures."""

    sizes: ClassVar[list[int]] = []  # shared on purpose: joblib builds its own instances
    durations: ClassVar[list[float]] = []

    def submit(self, func: Any, callback: Any = None) -> Any:
        RecordingBackend.sizes.append(len(func))
        return super().submit(func, callback)

    def batch_completed(self, batch_size: int, duration: float) -> None:
        RecordingBackend.durations.append(duration)
        super().batch_completed(batch_size, duration)

    @classmethod
    def reset(cls) -> None:
        cls.sizes, cls.durations = [], []


class Stack:
    """Azurite (with a request log) + the Batch emulator in a child process."""

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="bench-joblib-")
        self.log = Path(self.tmp.name) / "azurite-debug.log"
        self.azurite = subprocess.Popen(
            [_find_azurite(), "--inMemoryPersistence", "--skipApiVersionCheck",
             "--disableTelemetry", "--blobHost", "127.0.0.1", "--blobPort", "0",
             "--debug", str(self.log)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, start_new_session=True)
        assert self.azurite.stdout is not None
        for line in self.azurite.stdout:
            match = re.search(r"successfully listens on (http://[0-9.]+:\d+)", line)
            if match:
                self.blob_url = f"{match.group(1)}/devstoreaccount1"
                break
        else:
            raise RuntimeError("Azurite did not start")
        threading.Thread(target=self.azurite.stdout.read, daemon=True).start()  # drain it
        self.emulator = subprocess.Popen(
            [sys.executable, "-c", EMULATOR_SCRIPT, str(ROOT), str(Path(sys.executable).parent),
             str(NODES), str(SLOTS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.emulator.stdout is not None
        self.batch_url, self.name, self.key = self.emulator.stdout.readline().split()

    def settings(self) -> dict[str, Any]:
        return dict(batch_account_url=self.batch_url, batch_account_name=self.name,
                    batch_account_key=self.key,
                    storage_connection_string=_connection_string(self.blob_url),
                    python_command=sys.executable, dedicated_nodes=NODES,
                    task_slots_per_node=SLOTS)

    def batch_requests(self) -> int:
        with urllib.request.urlopen(f"{self.batch_url}/_emulator/stats") as reply:
            return int(json.load(reply)["total"])

    def blob_requests(self) -> tuple[int, int]:
        """(client, node side) requests Azurite has served so far."""
        client = node = 0
        for line in self.log.read_text(errors="replace").splitlines():
            if "RequestMethod=" in line:
                if "azsdk-python-storage-blob" in line:
                    client += 1
                else:
                    node += 1
        return client, node

    def server_counts(self) -> dict[str, int]:
        client_blob, node_blob = self.blob_requests()
        return {"server_batch": self.batch_requests(), "azurite_client": client_blob,
                "azurite_node": node_blob}

    def stop(self) -> None:
        assert self.emulator.stdin is not None
        self.emulator.stdin.close()
        self.emulator.wait(30)
        self.azurite.terminate()
        try:
            self.azurite.wait(10)
        except subprocess.TimeoutExpired:
            self.azurite.kill()
            self.azurite.wait()
        self.tmp.cleanup()


def client_counts(ex: Any) -> dict[str, int]:
    counts = ex.request_counts() if ex is not None else {}
    return {"client": sum(v for k, v in counts.items() if k != "ticks"),
            "client_batch": sum(v for k, v in counts.items() if k.startswith("batch.")),
            "client_blob": sum(v for k, v in counts.items() if k.startswith("blob."))}


def run(stack: Stack, calls: int, fn: Any = one_ms, **parallel: Any) -> dict[str, Any]:
    """One Parallel call; request counts are the differences across it."""
    RecordingBackend.reset()
    executor = reusable.current_executor()
    before = {**stack.server_counts(), **client_counts(executor)}
    t = time.perf_counter()
    with parallel_config(backend="azure_batch_bench", n_jobs=-1, **stack.settings()):
        out = Parallel(**parallel)(delayed(fn)(i) for i in range(calls))
    wall = time.perf_counter() - t
    assert out == list(range(calls))
    if reusable.current_executor() is not executor:  # built by this call: counted from 0
        before.update(client_counts(None))
    after = {**stack.server_counts(), **client_counts(reusable.current_executor())}
    return {"wall": wall, "tasks": len(RecordingBackend.sizes),
            "sizes": list(RecordingBackend.sizes), "durations": list(RecordingBackend.durations),
            **{k: after[k] - before[k] for k in after}}


MB5 = 5 * 1024 * 1024


def pick(data: Any, i: int) -> float:
    return float(data[i])


def uploaded_bytes(stack: Stack, ex: Any) -> dict[str, int]:
    """Blobs the client uploaded under `ex`'s job prefix (outputs and logs excluded)."""
    from azure.storage.blob import ContainerClient

    client = ContainerClient.from_connection_string(
        _connection_string(stack.blob_url), ex.settings.container_name)
    with client:
        return {b.name: b.size for b in client.list_blobs(name_starts_with=ex.job_id + "/")
                if not re.search(r"_(outputs\.pickle|stdout\.txt|stderr\.txt)$", b.name)}


def shared_argument(stack: Stack) -> dict[str, Any]:
    """J3: upload bytes for 50 tasks sharing one 5 MB array, via joblib and via submit()."""
    import numpy as np

    out: dict[str, Any] = {}
    for how in ("joblib", "submit"):
        data = np.random.default_rng().random(MB5 // 8)  # new content each time
        ex = reusable.current_executor()
        before = uploaded_bytes(stack, ex) if ex is not None else {}
        t = time.perf_counter()
        if how == "joblib":
            with parallel_config(backend="azure_batch_bench", n_jobs=-1, **stack.settings()):
                res = Parallel(batch_size=1)(delayed(pick)(data, i) for i in range(50))
            ex = reusable.current_executor()
        else:
            assert ex is not None
            submit_ms = []
            futures = []
            for i in range(50):
                s = time.perf_counter()
                futures.append(ex.submit(pick, data, i))
                submit_ms.append((time.perf_counter() - s) * 1000)
            res = [f.result() for f in futures]
            out["submit_ms"] = statistics.median(submit_ms)
        wall = time.perf_counter() - t
        assert res == [float(data[i]) for i in range(50)]
        new = {n: b for n, b in uploaded_bytes(stack, ex).items() if n not in before}
        out[how] = {"bytes": sum(new.values()), "blobs": len(new), "wall": wall}
    return out


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--runs", type=int, default=3)
    args.add_argument("--calls", type=int, default=200)
    opts = args.parse_args(argv if argv is not None else [])
    register_parallel_backend("azure_batch_bench", RecordingBackend)
    stack = Stack()
    try:
        calls = opts.calls
        cold = run(stack, calls)
        warm = [run(stack, calls) for _ in range(opts.runs)]
        t = time.perf_counter()
        Parallel(n_jobs=1)(delayed(one_ms)(i) for i in range(calls))
        sequential = time.perf_counter() - t
        task_cost = [run(stack, 40, noop, batch_size=1) for _ in range(opts.runs)]
        shared = shared_argument(stack)
    finally:
        ex = reusable.current_executor()
        if ex is not None:
            ex.shutdown(wait=True)
        stack.stop()
    report(calls, cold, warm, sequential, task_cost, shared)


def report(calls: int, cold: dict[str, Any], warm: list[dict[str, Any]], sequential: float,
           task_cost: list[dict[str, Any]], shared: dict[str, Any]) -> None:
    def per_call(r: dict[str, Any]) -> str:
        batch, blob = r["server_batch"], r["azurite_client"]
        return (f"{(batch + blob) / calls:.2f} (Batch {batch}, Blob {blob}; client counters "
                f"{r['client']}); node-side Blob {r['azurite_node'] / calls:.2f}")

    print(f"J1 {calls} delayed calls of a 1 ms function, n_jobs=-1 ({NODES}x{SLOTS} slots)")
    print(f"  cold (builds the executor): {cold['wall']:.2f} s, {cold['tasks']} tasks, "
          f"requests per call {per_call(cold)}")
    for i, r in enumerate(warm):
        print(f"  warm {i + 1}: {r['wall']:.2f} s, {r['tasks']} tasks (sizes {r['sizes']}), "
              f"requests per call {per_call(r)}")
    med = statistics.median(r["wall"] for r in warm)
    med_req = statistics.median((r["server_batch"] + r["azurite_client"]) / calls for r in warm)
    print(f"  warm median: {med:.2f} s, {med_req:.2f} requests per call (target <= 2)")
    print(f"  n_jobs=1 (sequential, in-process): {sequential:.2f} s")
    slots = NODES * SLOTS
    for i, r in enumerate(task_cost):
        d = r["durations"]
        print(f"J2 task cost {i + 1}, 40 no-op calls at batch_size=1: dispatch-to-callback "
              f"median {statistics.median(d):.2f} s (min {min(d):.2f}, max {max(d):.2f}); "
              f"slot time per task {r['wall'] * slots / 40:.2f} s; wall {r['wall']:.2f} s")
    print(f"  backend bounds: MIN_IDEAL_BATCH_DURATION={AzureBatchBackend.MIN_IDEAL_BATCH_DURATION}"
          f" s, MAX_IDEAL_BATCH_DURATION={AzureBatchBackend.MAX_IDEAL_BATCH_DURATION} s")
    for how in ("joblib", "submit"):
        r = shared[how]
        print(f"J3 50 tasks sharing a 5 MB array via {how}: uploaded {r['bytes']:,} bytes in "
              f"{r['blobs']} blob(s) = {r['bytes'] / MB5:.3f} x 5 MB (target <= 1.2); "
              f"wall {r['wall']:.2f} s")
    print(f"  submit() carrying the 5 MB array: median {shared['submit_ms']:.2f} ms "
          "(pickle + sha256 on the caller's thread)")


if __name__ == "__main__":
    main(sys.argv[1:])
