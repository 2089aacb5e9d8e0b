"""Reattach after a crash (issue 15), through the SDK, the emulator and Azurite.

A child process (attach_child_script.py) starts an executor with ``keep_job=True`` on
the test's local stack, submits a map() of gated calls in chunks and gated submit()
calls, and is killed (SIGKILL) once Batch has all its tasks. This process then attaches
to the job, opens the gate and gets every result exactly once, in submission order; the
job is listed by `AzureBatchExecutor.jobs()` with one task per submission, and deleted
when the attached job ends.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from script_env import script_env
from support.gates import Gate
from support.waiting import wait_until

from azure_batch_executor import AzureBatchExecutor
from azure_batch_executor.config import ENV_NAMES

SCRIPT = Path(__file__).parent / "attach_child_script.py"
TIMEOUT = 120.0
TASKS = 6  # 3 map() chunks of 2 calls, 3 submit() calls
RESULTS = [x * 10 for x in (*range(6), 100, 101, 102)]


def stack_env(stack: Any) -> dict[str, str]:
    return script_env(**{
        ENV_NAMES["batch_account_url"]: stack.batch_account_url,
        ENV_NAMES["batch_account_name"]: stack.batch_account_name,
        ENV_NAMES["batch_account_key"]: stack.batch_account_key,
        ENV_NAMES["storage_connection_string"]: stack.storage_connection_string,
    })


def listed(job_id: str) -> Any:
    return next((j for j in AzureBatchExecutor.jobs() if j.id == job_id), None)


def test_attach_gets_every_result_of_a_killed_client(local_stack, tmp_path: Path) -> None:
    gate = Gate(tmp_path)
    proc = subprocess.Popen([sys.executable, str(SCRIPT), gate.path], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                            env=stack_env(local_stack))
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("JOB "), (line, proc.stderr and proc.stderr.read())
        job_id = line.split()[1]
        wait_until(lambda: (j := listed(job_id)) is not None and j.tasks == TASKS,
                   "Batch to have every task of the child", timeout=TIMEOUT)
        proc.kill()
        _, err = proc.communicate(timeout=30)
        assert f"AzureBatchExecutor.attach('{job_id}')" in err, err  # its announced line
        job = listed(job_id)
        assert job.state == "active" and job.completed == 0 and job.tasks == TASKS
        with AzureBatchExecutor.attach(job_id) as attached:
            assert len(attached.futures) == TASKS
            assert not any(f.done() for f in attached.futures)
            gate.open()
            assert list(attached.results(timeout=TIMEOUT)) == RESULTS
            assert [f.result() for f in attached.futures] == [
                [0, 10], [20, 30], [40, 50], 1000, 1010, 1020]
        after = listed(job_id)
        assert after is None or after.state == "deleting", after
    finally:
        gate.open()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
