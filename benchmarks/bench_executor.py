"""AzureBatchExecutor on the local stack: the issue's targets P1-P4 and P6, side by side.

    .venv/bin/python -m benchmarks.bench_executor          (or: make bench)

P1  10,000 tiny tasks submitted and accepted, against a seed-style client (one
    blob upload + one create_task per task, sequential; timed on a sample and
    scaled) and a bare parallel loop of the same SDK calls (pre-built task
    bodies, create_task_collection of 100 from 16 threads). The job points at a
    pool that does not exist, so tasks stay active and only acceptance is timed.
P2  requests per idle poll with those 10,000 tasks outstanding (over 10 idle ticks).
P3  requests per task end to end (uploads, adds, polls, lists, downloads and the
    executor's fixed costs), small inputs, inputs above the inline threshold, and
    per item at chunksize 10.
P4  latency from the task function's return (an upper bound of "output blob
    landed") to the future resolved: p50 / p95.
P6  submit() client time, median.
Also: the inline-vs-blob cost per task for a few spec sizes (the inline threshold).

The Batch emulator runs in its own process (like the real service, it does not
share the client's GIL), Azurite in its own Node.js process. 2 nodes x 4 slots.
"""

from __future__ import annotations

import base64
import datetime as dt
import gc
import json
import logging
import re
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from azure_batch_executor import AzureBatchExecutor
from azure_batch_executor import constants as C
from azure_batch_executor.cloud.batch import BatchService
from azure_batch_executor.cloud.ports import EnsuredPool
from azure_batch_executor.cloud.retry import RequestStats, RetryPolicy
from azure_batch_executor.cloud.storage import BlobStore
from azure_batch_executor.cloud.taskdef import TaskFactory
from azure_batch_executor.config import Settings
from azure_batch_executor.local import Azurite
from azure_batch_executor.wire.codec import encode_call
from azure_batch_executor.wire.layout import JobLayout, new_job_id

N_P1 = 10_000
N_SEED_SAMPLE = 200
P1_RUNS = 5
P2_TICKS = 10
NO_POOL = "bench-no-such-pool"


def identity(x):
    return x


def stamp(_):
    return time.time()


def wait_until(predicate, timeout=600.0, step=0.01):
    deadline = time.monotonic() + timeout
    event = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        event.wait(step)


EMULATOR_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
from azure_batch_executor.emulator import BatchEmulator, tune_gc_for_serving
emu = BatchEmulator(nodes=2, slots_per_node=4, path_prefix=(sys.argv[2],)).start()
tune_gc_for_serving()  # as the `emulator` command does
print(emu.url, emu.account_name, emu.account_key, flush=True)
sys.stdin.read()
emu.stop()
"""


class Stack:
    """Azurite + the Batch emulator in a child process (not sharing our GIL)."""

    nodes, slots_per_node = 2, 4

    def __init__(self) -> None:
        self.azurite = Azurite().start()
        root = str(Path(__file__).resolve().parents[1])
        self.proc = subprocess.Popen(
            [sys.executable, "-c", EMULATOR_SCRIPT, root, str(Path(sys.executable).parent)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        url, name, key = self.proc.stdout.readline().split()
        self.batch_account_url, self.batch_account_name, self.batch_account_key = url, name, key
        self.storage_connection_string = self.azurite.connection_string

    def settings(self, **kw) -> dict:
        return dict(batch_account_url=self.batch_account_url,
                    batch_account_name=self.batch_account_name,
                    batch_account_key=self.batch_account_key,
                    storage_connection_string=self.storage_connection_string,
                    python_command=sys.executable, dedicated_nodes=self.nodes,
                    task_slots_per_node=self.slots_per_node, **kw)

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)
        self.azurite.stop()


def local_settings(stack, **kw) -> Settings:
    return Settings.resolve(env={}, **stack.settings(**kw))


class Raw:
    """The same SDK calls without the executor: a job on a pool that does not exist."""

    def __init__(self, stack) -> None:
        self.settings = local_settings(stack, pool_id=NO_POOL)
        self.stats = RequestStats()
        self.store = BlobStore(self.settings, self.stats, RetryPolicy())
        self.batch = BatchService(self.settings, self.stats, RetryPolicy())
        self.store.ensure_container()
        self.store.sign()
        self.layout = JobLayout(new_job_id("bench"))
        self.factory: TaskFactory | None = None
        self.batch.create_job(self.layout.job_id)

    def text(self, i: int, spec: bytes, inline: bool) -> str:
        """Task i's definition as the executor builds it (`TaskFactory`: JSON text)."""
        lay, store = self.layout, self.store
        if self.factory is None:
            self.factory = TaskFactory(
                self.settings, [(store.read_url(lay.worker_blob()), C.WORKER_SCRIPT_FILE),
                                (store.read_url(lay.config_blob()), C.GLOBAL_CONFIG_FILE)],
                store.output_container_url())
        resources = []
        if not inline:
            resources.append((store.read_url(lay.inputs_blob(i)), C.WORKER_INPUTS_FILE))
        outputs = [(C.WORKER_OUTPUTS_FILE, lay.outputs_blob(i)), *lay.log_files(i)]
        inline_inputs = base64.b64encode(spec).decode() if inline else None
        return self.factory.body(lay.task_id(i), resources, outputs, inline_inputs)

    def body(self, i: int, spec: bytes, inline: bool) -> dict:
        """The same definition as a plain SDK user builds it: a dict the SDK encodes."""
        lay, store = self.layout, self.store
        resources = [{"httpUrl": store.read_url(lay.worker_blob()),
                      "filePath": C.WORKER_SCRIPT_FILE},
                     {"httpUrl": store.read_url(lay.config_blob()),
                      "filePath": C.GLOBAL_CONFIG_FILE}]
        if not inline:
            resources.append({"httpUrl": store.read_url(lay.inputs_blob(i)),
                              "filePath": C.WORKER_INPUTS_FILE})
        container = store.output_container_url()
        outputs = [{"filePattern": pattern,
                    "destination": {"container": {"containerUrl": container, "path": blob}},
                    "uploadOptions": {"uploadCondition": "taskcompletion"}}
                   for pattern, blob in [(C.WORKER_OUTPUTS_FILE, lay.outputs_blob(i)),
                                         *lay.log_files(i)]]
        body = {"id": lay.task_id(i), "commandLine": f"{self.settings.command} "
                f"{C.WORKER_SCRIPT_FILE}", "resourceFiles": resources, "outputFiles": outputs,
                "constraints": {"maxTaskRetryCount": self.settings.max_task_retries}}
        if inline:
            body["environmentSettings"] = [{"name": C.INLINE_INPUTS_ENV,
                                            "value": base64.b64encode(spec).decode()}]
        return body

    def done(self) -> None:
        self.batch.terminate_job(self.layout.job_id)


def seed_style_rate(stack) -> float:
    """Tasks/s of the seed's SuperBatch loop: upload the input blob, create_task, in turn."""
    raw = Raw(stack)
    spec = encode_call(identity, (1,), {})
    t = time.perf_counter()
    for i in range(N_SEED_SAMPLE):
        raw.store.upload(raw.layout.inputs_blob(i), spec)
        raw.batch.client.create_task(raw.layout.job_id, raw.body(i, spec, inline=False))
    rate = N_SEED_SAMPLE / (time.perf_counter() - t)
    raw.done()
    return rate


def bare_parallel_seconds(stack, n: int, prepare: bool, raw_reply: bool = True) -> float:
    """The SDK's create_task_collection of 100 dict bodies from 16 threads; `prepare`: also
    time the pickling of each call and the building of its task body (what any client has
    to do); `raw_reply`: read each reply as plain JSON, as the executor does, instead of
    into the SDK's result models (what a plain call of the SDK method returns)."""
    raw = Raw(stack)
    t = time.perf_counter()
    bodies = [raw.body(i, encode_call(identity, (i,), {}), inline=True) for i in range(n)]
    chunks = [bodies[i:i + 100] for i in range(0, n, 100)]
    if not prepare:
        gc.collect()
        t = time.perf_counter()

    def add(chunk: list) -> None:
        if raw_reply:
            raw.batch.client.create_task_collection(raw.layout.job_id, {"value": chunk},
                                                    stream=True, cls=_json_reply)
        else:
            raw.batch.client.create_task_collection(raw.layout.job_id, {"value": chunk})

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(add, chunks))
    seconds = time.perf_counter() - t
    raw.done()
    gc.collect()
    return seconds


def _json_reply(_pipeline_response, body, _headers) -> dict:
    return json.loads(b"".join(body))


def executor_p1_p2_p6(stack, n: int, idle_ticks: int = 0) -> dict:
    """P1 with the default settings; then, with `idle_ticks`, P2 over that many idle ticks."""
    original = BatchService.ensure_pool
    BatchService.ensure_pool = (  # type: ignore[method-assign]
        lambda self, registries=(): EnsuredPool(capacity=n, created=False))
    try:
        ex = AzureBatchExecutor(max_workers=n, **stack.settings(pool_id=NO_POOL))
    finally:
        BatchService.ensure_pool = original  # type: ignore[method-assign]
    times = []
    gc.collect()
    t0 = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        ex.submit(identity, i)
        times.append(time.perf_counter() - t)
    submitted = time.perf_counter() - t0
    wait_until(lambda: ex._manager.table.in_flight() == n)
    accepted = time.perf_counter() - t0
    counts = ex.request_counts()
    before, ticks = sum(v for k, v in counts.items() if k != "ticks"), counts["ticks"]
    wait_until(lambda: ex.request_counts()["ticks"] >= ticks + idle_ticks)
    counts = ex.request_counts()
    after, ticks_after = sum(v for k, v in counts.items() if k != "ticks"), counts["ticks"]
    ex.terminate(wait=True)  # ends the job, fails the 10,000 futures: before the next run
    gc.collect()
    return {"accepted_s": accepted, "submitted_s": submitted,
            "submit_median_ms": statistics.median(times) * 1e3,
            "idle_requests_per_poll": (after - before) / max(1, ticks_after - ticks),
            "adds": counts.get("batch.add", 0)}


def requests_per_task(stack, n: int, arg_bytes: int = 0, chunksize: int = 1) -> dict:
    resolved: dict[int, float] = {}
    # keep_job: the nodes' upload logs are read after the run (`landing_times`)
    with AzureBatchExecutor(max_workers=n, keep_job=True, **stack.settings()) as ex:
        if chunksize > 1:
            out = list(ex.map(identity, range(n), chunksize=chunksize, timeout=600))
            assert out == list(range(n))
        else:
            arg = b"x" * arg_bytes
            fs = [ex.submit(stamp, arg) for _ in range(n)]
            for i, f in enumerate(fs):
                f.add_done_callback(lambda f, i=i: resolved.__setitem__(i, time.time()))
            ends = [f.result(600) for f in fs]
        ex.shutdown()
        counts = ex.request_counts()
    total = sum(v for k, v in counts.items() if k != "ticks")
    result = {"requests_per_item": total / n, "counts": counts}
    if chunksize == 1:
        wait_until(lambda: len(resolved) == n)
        lat = sorted(resolved[i] - ends[i] for i in range(n))
        result["p50_s"] = lat[len(lat) // 2]
        result["p95_s"] = lat[int(len(lat) * 0.95)]
        landed = landing_times(stack, ex)
        lat = sorted(resolved[i] - landed[i] for i in range(n))
        result["landed_p50_s"] = lat[len(lat) // 2]
        result["landed_p95_s"] = lat[int(len(lat) * 0.95)]
    return result


def landing_times(stack, ex) -> list[float]:
    """When each task's outputs.pickle landed in Azurite: the node's upload log
    (``fileuploadout.txt``, read after the run, outside the counted requests)."""
    client = BatchClient(stack.batch_account_url, AzureNamedKeyCredential(
        stack.batch_account_name, stack.batch_account_key))
    times = []
    with client:
        for i in range(ex._ctx.queue.counter):
            log = b"".join(client.download_task_file(
                ex.job_id, ex._ctx.services.layout.task_id(i), "fileuploadout.txt")).decode()
            stamp = re.search(rf"^(\S+) Uploaded \S*{C.WORKER_OUTPUTS_FILE}", log, re.M)
            assert stamp, log
            when = dt.datetime.strptime(stamp.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
            times.append(when.replace(tzinfo=dt.timezone.utc).timestamp())
    return times


def add_all(raw: Raw, bodies: list) -> None:
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda c: raw.batch.add_collection(raw.layout.job_id, c),
                      [bodies[i:i + 25] for i in range(0, len(bodies), 25)]))


def upload_all(raw: Raw, spec: bytes, n: int) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: raw.store.upload(raw.layout.inputs_blob(i), spec), range(n)))


def inline_vs_blob(stack, sizes=(1024, 2048, 4096, 8192, 16384), n=300) -> list[tuple]:
    rows = []
    for size in sizes:
        raw = Raw(stack)
        spec = b"x" * size
        t = time.perf_counter()
        bodies = [raw.text(i, spec, inline=True) for i in range(n)]
        add_all(raw, bodies)
        inline_ms = (time.perf_counter() - t) / n * 1e3
        raw.done()
        raw = Raw(stack)
        t = time.perf_counter()
        upload_all(raw, spec, n)
        add_all(raw, [raw.text(i, spec, inline=False) for i in range(n)])
        blob_ms = (time.perf_counter() - t) / n * 1e3
        raw.done()
        rows.append((size, inline_ms, blob_ms))
    return rows


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    stack = Stack()
    try:
        report(stack)
    finally:
        stack.stop()


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def report(stack: Stack, runs: int = P1_RUNS) -> None:
    print(f"stack: Batch emulator (own process, {stack.nodes} nodes x {stack.slots_per_node} "
          "slots) + Azurite", flush=True)
    seed_rates, bare, bare_models, bare_prep, ours_runs = [], [], [], [], []
    for run in range(runs):  # interleaved, so that drift on the machine hits all alike
        seed_rates.append(seed_style_rate(stack))
        bare.append(bare_parallel_seconds(stack, N_P1, prepare=False))
        bare_models.append(bare_parallel_seconds(stack, N_P1, prepare=False, raw_reply=False))
        bare_prep.append(bare_parallel_seconds(stack, N_P1, prepare=True))
        ours_runs.append(executor_p1_p2_p6(stack, N_P1, P2_TICKS if run == runs // 2 else 0))
    ours = ours_runs[runs // 2]  # P2 and P6 of one run
    accepted = [o["accepted_s"] for o in ours_runs]
    seed_rate = statistics.median(seed_rates)
    seed_s = N_P1 / seed_rate
    acc, bare_m, models_m, prep_m = (statistics.median(x)
                                     for x in (accepted, bare, bare_models, bare_prep))
    print(f"P1 {N_P1} tasks submitted and accepted, median of {runs} (min-max): executor "
          f"{_spread(accepted)} (submit loop "
          f"{_spread([o['submitted_s'] for o in ours_runs])}, {ours['adds']} add requests)")
    print(f"   bare parallel loop: {_spread(bare)} with pre-built bodies, {_spread(bare_prep)} "
          f"including pickling and building the bodies; {_spread(bare_models)} with pre-built "
          "bodies and the SDK's result models")
    print(f"   seed-style client: {seed_s:.0f} s (median of {runs} samples of {N_SEED_SAMPLE} "
          f"tasks: {seed_rate:.0f} tasks/s, {min(seed_rates):.0f}-{max(seed_rates):.0f})")
    print(f"   executor vs seed-style: {seed_s / acc:.0f}x faster (target >= 50x); "
          f"vs bare loop: {prep_m / acc * 100:.0f}% of its speed with preparation, "
          f"{bare_m / acc * 100:.0f}% with pre-built bodies (per run: "
          + ", ".join(f"{b / a * 100:.0f}%" for a, b in zip(accepted, bare, strict=True))
          + f"), {models_m / acc * 100:.0f}% with pre-built bodies and result models "
          "(target >= 80%)")
    print(f"P2 requests per idle poll, {N_P1} tasks outstanding: "
          f"{ours['idle_requests_per_poll']:.2f} (target <= 2)")
    print(f"P6 submit() median {ours['submit_median_ms']:.3f} ms (target <= 1 ms)", flush=True)

    small = requests_per_task(stack, 300)
    big = requests_per_task(stack, 300, arg_bytes=C.INLINE_THRESHOLD + 4096)
    chunked = requests_per_task(stack, 1000, chunksize=10)
    print(f"P3 requests per task: small inputs {small['requests_per_item']:.2f} (<= 1.5); "
          f"inputs > inline threshold {big['requests_per_item']:.2f} (<= 2.1); "
          f"chunksize 10: {chunked['requests_per_item']:.3f} per item (<= 0.15 = 1.5/10)")
    print(f"   small: {small['counts']}")
    print(f"   large: {big['counts']}")
    print(f"   chunksize 10: {chunked['counts']}")
    print(f"P4 output blob landed -> future resolved: p50 {small['landed_p50_s']:.3f} s, "
          f"p95 {small['landed_p95_s']:.3f} s (target p95 <= 1 s); from the function's return "
          f"(an upper bound): p50 {small['p50_s']:.3f} s, p95 {small['p95_s']:.3f} s; inputs "
          f"above the threshold: p95 {big['landed_p95_s']:.3f} s", flush=True)

    print("inline vs blob, ms per task (300 tasks, adds of 25 from 4 threads):")
    for size, inline_ms, blob_ms in inline_vs_blob(stack):
        print(f"   spec {size:6d} B: inline {inline_ms:6.2f} ms, blob {blob_ms:6.2f} ms")


if __name__ == "__main__":
    main()
