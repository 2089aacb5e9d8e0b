"""The emulated scheduling latency through the official SDK over HTTP, with real processes.

A task added to an idle pool starts no sooner than the latency and soon after it; a task
terminated while it still waits completes (`TaskEnded`) and its command never runs;
`maxParallelTasks` still bounds the running tasks. Also the Python and admin controls
(`set_scheduling_latency`, `/_emulator/scheduling-latency`), `reset()` and the CLI's
`--scheduling-latency`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import azure.batch.models as m
import pytest
from azure.batch import BatchClient
from emu_sdk_kit import admin, make_job, make_pool
from support.waiting import wait_until

from azure_batch_executor import cli
from azure_batch_executor.emulator import BatchEmulator
from azure_batch_executor.local import LocalStack

TOUCH = "python3 -c \"open(r'{}', 'w').close()\""
SLEEP = 'python3 -c "import time; time.sleep({})"'



def _task(task_id: str, command: str) -> m.BatchTaskCreateOptions:
    return m.BatchTaskCreateOptions(id=task_id, command_line=command)


def wait_completed(client: BatchClient, job_id: str, task_id: str) -> m.BatchTask:
    return wait_until(lambda: (t := client.get_task(job_id, task_id)).state == "completed"
                      and t, f"task {task_id} to complete", timeout=20)


def test_task_starts_after_its_latency(client: BatchClient, emulator: BatchEmulator) -> None:
    make_pool(client, "p1")
    make_job(client, "j1", "p1")
    status, latency = admin(emulator, "POST", "/_emulator/scheduling-latency",
                             {"min": 0.5, "max": 0.5})
    assert (status, latency) == (200, {"min": 0.5, "max": 0.5})
    client.create_task("j1", _task("t1", "/bin/true"))
    assert client.get_task("j1", "t1").state == "active"  # the pool's node is idle
    task = wait_completed(client, "j1", "t1")
    waited = (task.execution_info.start_time - task.creation_time).total_seconds()
    assert 0.5 <= waited < 5.0, waited
    assert task.execution_info.result == "success"


def test_terminated_waiting_task_never_runs(client: BatchClient, emulator: BatchEmulator,
                                            tmp_path: Path) -> None:
    make_pool(client, "p1")
    make_job(client, "j1", "p1")
    emulator.set_scheduling_latency(1.0, 1.0)
    client.create_task("j1", _task("t1", TOUCH.format(tmp_path / "t1")))
    client.terminate_task("j1", "t1")
    task = client.get_task("j1", "t1")
    assert task.state == "completed" and task.execution_info.start_time is None
    assert task.execution_info.failure_info.code == "TaskEnded"
    # t2, added later, becomes eligible after t1 would have: once it ran, t1 had its chance
    client.create_task("j1", _task("t2", TOUCH.format(tmp_path / "t2")))
    assert wait_completed(client, "j1", "t2").execution_info.result == "success"
    assert (tmp_path / "t2").exists() and not (tmp_path / "t1").exists()
    assert client.get_task("j1", "t1").execution_info.start_time is None


def test_max_parallel_tasks_bounds_running_tasks(client: BatchClient,
                                                 emulator: BatchEmulator) -> None:
    make_pool(client, "p1", nodes=1, slots=4)
    make_job(client, "j1", "p1", max_parallel_tasks=2)
    emulator.set_scheduling_latency(0.1, 0.3)
    client.create_tasks("j1", [_task(f"t{i}", SLEEP.format(0.5)) for i in range(5)])
    tasks = [wait_completed(client, "j1", f"t{i}") for i in range(5)]
    events = sorted([(t.execution_info.start_time, 1) for t in tasks]
                    + [(t.execution_info.end_time, -1) for t in tasks])  # ends first on ties
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak == 2


def test_controls_and_reset(client: BatchClient, emulator: BatchEmulator) -> None:
    assert admin(emulator, "GET", "/_emulator/scheduling-latency") == (
        200, {"min": 0.0, "max": 0.0})
    assert admin(emulator, "POST", "/_emulator/scheduling-latency", {"min": 3}) == (
        200, {"min": 3.0, "max": 3.0})
    status, error = admin(emulator, "POST", "/_emulator/scheduling-latency",
                           {"min": 5, "max": 2})
    assert status == 400 and error["code"] == "InvalidRequestBody"
    assert "scheduling_latency" in error["message"]["value"]
    assert emulator.set_scheduling_latency(2, 5) == {"min": 2.0, "max": 5.0}
    emulator.reset()
    assert emulator.scheduling_latency() == {"min": 0.0, "max": 0.0}


def test_constructor_argument_is_the_reset_value() -> None:
    with BatchEmulator(nodes=1, scheduling_latency=(0.25, 0.75), scheduling_seed=3) as emu:
        assert emu.scheduling_latency() == {"min": 0.25, "max": 0.75}
        emu.set_scheduling_latency(0, 0)
        emu.reset()
        assert emu.scheduling_latency() == {"min": 0.25, "max": 0.75}
    stack = LocalStack(emulator_options={"scheduling_latency": (2, 5)})
    assert stack.emulator_options == {"scheduling_latency": (2, 5)}


def test_cli_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["emulator", "--scheduling-latency", "5-2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--scheduling-latency '5-2'" in err
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "azure_batch_executor.cli", "emulator", "--nodes", "1",
         "--scheduling-latency", "2-5"],
        stdout=subprocess.PIPE, text=True, env=env, cwd=Path(__file__).resolve().parents[3])
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().removeprefix("export BATCH_ACCOUNT_URL=")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url + "/_emulator/scheduling-latency", timeout=10) as resp:
            assert json.loads(resp.read()) == {"min": 2.0, "max": 5.0}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
