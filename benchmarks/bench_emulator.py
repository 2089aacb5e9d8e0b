"""The Batch emulator on its own, driven by the official SDK over loopback HTTP.

    .venv/bin/python -m benchmarks.bench_emulator          (or: make bench)

accept  `create_task_collection` (100 tasks of `/bin/true` per call) from 4 client
        threads, each with its own `BatchClient`, on a job whose pool has 0 nodes so
        nothing runs: tasks/s over 20,000 tasks. Target >= 3,000 tasks/s.
run     1,000 tasks of `/bin/true` on a pool of 4 nodes x 2 slots
        (`BatchEmulator(nodes=4, slots_per_node=2)`), from the first add (10 collections
        of 100 from the same 4 threads) until `get_job_task_counts` reports all
        completed (polled every 20 ms). Target <= 15 s.

Each is run a few times (`--runs`, default 5; each run on a fresh job) and the median
reported with the spread. The emulator runs in its own process (like the real service
it does not share the client's GIL); `--in-process` runs it in this one instead. The
task bodies (SDK models) are built before timing starts; their serialization by the SDK
is part of what is timed, as it is for any client.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

for _name in ("NO_PROXY", "no_proxy"):  # loopback traffic must not go through a proxy
    os.environ[_name] = ",".join(p for p in (os.environ.get(_name, ""), "127.0.0.1,localhost")
                                 if p)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import azure.batch.models as m  # noqa: E402
from azure.batch import BatchClient  # noqa: E402
from azure.core.credentials import AzureNamedKeyCredential  # noqa: E402

THREADS = 4
PER_CALL = 100
ACCEPT_TASKS = 20_000
RUN_TASKS = 1_000
NODES, SLOTS = 4, 2
ACCEPT_TARGET = 3_000.0  # tasks/s, at least
RUN_TARGET = 15.0  # seconds, at most
POLL = 0.02  # seconds between get_job_task_counts calls while waiting for completion

EMULATOR_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
from azure_batch_executor.emulator import BatchEmulator, tune_gc_for_serving
emu = BatchEmulator(nodes=int(sys.argv[2]), slots_per_node=int(sys.argv[3]),
                    data_dir=sys.argv[4] or None).start()
tune_gc_for_serving()  # as the `emulator` command does
print(emu.url, emu.account_name, emu.account_key, flush=True)
sys.stdin.read()
emu.stop()
"""


class Emulator:
    """A BatchEmulator in a child process (default) or in this process."""

    def __init__(self, in_process: bool, data_dir: str | None = None) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.emu = None
        if in_process:
            from azure_batch_executor.emulator import BatchEmulator

            self.emu = BatchEmulator(nodes=NODES, slots_per_node=SLOTS,
                                     data_dir=data_dir).start()
            self.url, self.name, self.key = (self.emu.url, self.emu.account_name,
                                             self.emu.account_key)
            return
        self.proc = subprocess.Popen(
            [sys.executable, "-c", EMULATOR_SCRIPT, str(ROOT), str(NODES), str(SLOTS),
             data_dir or ""],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url, self.name, self.key = self.proc.stdout.readline().split()

    def cpu_seconds(self) -> float | None:
        """CPU time the emulator's process has used (own-process mode on Linux only)."""
        if self.proc is None:
            return None
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def client(self) -> BatchClient:
        return BatchClient(self.url, AzureNamedKeyCredential(self.name, self.key))

    def stop(self) -> None:
        if self.emu is not None:
            self.emu.stop()
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(60)


def wait_until(probe: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark: timed out waiting for {what}")
        time.sleep(interval)


def make_pool(client: BatchClient, pool_id: str, nodes: int, slots: int) -> None:
    client.create_pool(m.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2s_v3",
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.BatchVmImageReference(publisher="canonical",
                                                    offer="0001-com-ubuntu-server-jammy",
                                                    sku="22_04-lts", version="latest"),
            node_agent_sku_id="batch.node.ubuntu 22.04"),
        target_dedicated_nodes=nodes, task_slots_per_node=slots))
    wait_until(lambda: client.get_pool(pool_id).allocation_state == "steady", 30, "steady pool")
    wait_until(lambda: sum(n.state == "idle" for n in client.list_nodes(pool_id)) == nodes, 30,
               "idle nodes")


def make_job(client: BatchClient, job_id: str, pool_id: str) -> None:
    client.create_job(m.BatchJobCreateOptions(id=job_id,
                                              pool_info=m.BatchPoolInfo(pool_id=pool_id)))


def task_groups(n: int) -> list[m.BatchTaskGroup]:
    tasks = [m.BatchTaskCreateOptions(id=f"t{i:06d}", command_line="/bin/true")
             for i in range(n)]
    return [m.BatchTaskGroup(task_values=tasks[i:i + PER_CALL])
            for i in range(0, n, PER_CALL)]


def add_all(clients: Sequence[BatchClient], job_id: str,
            groups: list[m.BatchTaskGroup]) -> None:
    """Each thread has its own client and takes every THREADS-th collection."""
    def worker(k: int) -> int:
        failed = 0
        for group in groups[k::len(clients)]:
            result = clients[k].create_task_collection(job_id, group)
            failed += sum(r.status != "success" for r in result.result_values or [])
        return failed

    with ThreadPoolExecutor(len(clients)) as pool:
        failed = sum(pool.map(worker, range(len(clients))))
    if failed:
        raise RuntimeError(f"benchmark: {failed} tasks were not added")


class CpuMeter:
    """CPU seconds used by the emulator and by this (client) process during a block."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    def __enter__(self) -> CpuMeter:
        self._emu0, self._client0 = self.emu.cpu_seconds(), time.process_time()
        return self

    def __exit__(self, *exc_info: object) -> None:
        emu1 = self.emu.cpu_seconds()
        self.client = time.process_time() - self._client0
        self.emulator = (emu1 - self._emu0 if emu1 is not None and self._emu0 is not None
                         else None)

    def describe(self, tasks: int) -> str:
        client = f"client CPU {self.client / tasks * 1e6:.0f} us/task"
        if self.emulator is None:
            return client
        return f"emulator CPU {self.emulator / tasks * 1e6:.0f} us/task, {client}"


def accept_rate(emu: Emulator, clients: Sequence[BatchClient], run: int) -> float:
    """Tasks/s accepted on a job whose pool has no nodes."""
    admin = clients[0]
    job_id = f"accept-{run}"
    make_job(admin, job_id, "empty")
    groups = task_groups(ACCEPT_TASKS)
    with CpuMeter(emu) as cpu:
        t = time.perf_counter()
        add_all(clients, job_id, groups)
        seconds = time.perf_counter() - t
    print(f"  accept #{run + 1}: {ACCEPT_TASKS / seconds:,.0f} tasks/s "
          f"({cpu.describe(ACCEPT_TASKS)})", flush=True)
    counts = admin.get_job_task_counts(job_id).task_counts
    assert counts.active == ACCEPT_TASKS, counts
    admin.begin_delete_job(job_id, polling_interval=0.1).result()  # type: ignore[arg-type]
    return ACCEPT_TASKS / seconds


def run_seconds(emu: Emulator, clients: Sequence[BatchClient], run: int) -> float:
    """Seconds from the first add until all tasks completed on 4 nodes x 2 slots."""
    admin = emu.client()
    job_id = f"run-{run}"
    make_job(admin, job_id, "busy")
    groups = task_groups(RUN_TASKS)
    done = threading.Event()
    adder_error: list[BaseException] = []

    def adder() -> None:
        try:
            add_all(clients, job_id, groups)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            adder_error.append(error)
            done.set()

    with CpuMeter(emu) as cpu:
        t = time.perf_counter()
        thread = threading.Thread(target=adder)
        thread.start()
        deadline = time.monotonic() + 300
        while not done.is_set():
            counts = admin.get_job_task_counts(job_id).task_counts
            if counts.completed == RUN_TASKS:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"benchmark: tasks still unfinished: {counts}")
            time.sleep(POLL)
        seconds = time.perf_counter() - t
    thread.join()
    if adder_error:
        raise adder_error[0]
    counts = admin.get_job_task_counts(job_id).task_counts
    assert counts.succeeded == RUN_TASKS, counts
    # the job stays: deleting it removes 1,000 task directories, which would overlap the
    # next run (the emulator removes them right after the job is gone)
    admin.close()
    print(f"  run #{run + 1}: {seconds:.2f} s ({RUN_TASKS / seconds:.0f} tasks/s; "
          f"{cpu.describe(RUN_TASKS)})", flush=True)
    return seconds


def summary(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_emulator",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="repetitions of each (default 5)")
    parser.add_argument("--in-process", action="store_true",
                        help="run the emulator in this process (shares the client's GIL)")
    parser.add_argument("--only", choices=("accept", "run"), help="one benchmark only")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="the emulator's data directory (node file systems); default: a "
                             "new temporary directory. A new, empty directory is best: it is "
                             "left in place afterwards")
    args = parser.parse_args(argv)

    emu = Emulator(args.in_process, args.data_dir)
    clients = [emu.client() for _ in range(THREADS)]
    rows = []
    try:
        admin = clients[0]
        where = "in this process" if args.in_process else "own process"
        if args.data_dir:
            where += f", data in {args.data_dir}"
        print(f"Batch emulator ({where}), {os.cpu_count()} CPUs, Python "
              f"{sys.version.split()[0]}, {args.runs} runs each", flush=True)
        if args.only in (None, "accept"):
            make_pool(admin, "empty", 0, 1)
            rates = []
            for run in range(args.runs):
                rates.append(accept_rate(emu, clients, run))
            med, lo, hi = summary(rates)
            rows.append((f"accept {ACCEPT_TASKS:,} tasks, {THREADS} threads", "tasks/s",
                         med, lo, hi, f">= {ACCEPT_TARGET:,.0f}", med >= ACCEPT_TARGET))
        if args.only in (None, "run"):
            make_pool(admin, "busy", NODES, SLOTS)
            times = []
            for run in range(args.runs):
                times.append(run_seconds(emu, clients, run))
            med, lo, hi = summary(times)
            rows.append((f"run {RUN_TASKS:,} x /bin/true, {NODES}x{SLOTS} slots", "s",
                         med, lo, hi, f"<= {RUN_TARGET:.0f}", med <= RUN_TARGET))
    finally:
        for c in clients:
            c.close()
        emu.stop()

    print()
    print(f"{'benchmark':<36} {'unit':<8} {'median':>9} {'min':>9} {'max':>9}  "
          f"{'target':<9} ok")
    for name, unit, med, lo, hi, target, ok in rows:
        fmt = "{:>9,.0f}" if unit == "tasks/s" else "{:>9.2f}"
        print(f"{name:<36} {unit:<8} {fmt.format(med)} {fmt.format(lo)} {fmt.format(hi)}  "
              f"{target:<9} {'yes' if ok else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
