"""Ctrl-C terminates the cloud work it started (issue 9, item 7).

A script (interrupt_script.py) runs four 40-second tasks on the test's local stack and
gets SIGINT once all four run. It must exit without waiting for them, say in one line what
it terminated, and leave the job terminated with every task completed (checked through
the SDK after the script is gone). How fast it exits is measured in benchmarks/.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from script_env import script_env

from azure_batch_executor.config import ENV_NAMES

SCRIPT = Path(__file__).parent / "interrupt_script.py"


@pytest.fixture
def batch_client(local_stack: Any) -> Any:
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    client = BatchClient(local_stack.batch_account_url, AzureNamedKeyCredential(
        local_stack.batch_account_name, local_stack.batch_account_key))
    yield client
    client.close()


def stack_env(stack: Any) -> dict[str, str]:
    return script_env(**{
        ENV_NAMES["batch_account_url"]: stack.batch_account_url,
        ENV_NAMES["batch_account_name"]: stack.batch_account_name,
        ENV_NAMES["batch_account_key"]: stack.batch_account_key,
        ENV_NAMES["storage_connection_string"]: stack.storage_connection_string,
    })


def run_and_interrupt(stack: Any, tmp_path: Path, how: str) -> tuple[str, str, int]:
    """(job id, stderr, exit code) of the script interrupted once its four tasks run."""
    fifo = tmp_path / "started"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(fifo), how], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                            env=stack_env(stack))
    try:
        assert proc.stdout is not None
        job_id = ""
        for line in proc.stdout:
            if line.startswith("JOB "):
                job_id = line.split()[1]
            if line.startswith("READY"):
                break
        assert job_id, "the script never said its job id"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)  # far less than the tasks' 40 s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return job_id, err, proc.returncode


@pytest.mark.parametrize("how", ["submit", "map", "bare"])
def test_sigint_terminates_the_job_and_its_running_tasks(local_stack, batch_client, tmp_path,
                                                         how: str) -> None:
    job_id, err, code = run_and_interrupt(local_stack, tmp_path, how)
    assert code != 0 and "KeyboardInterrupt" in err
    said = [line for line in err.splitlines() if "terminating Batch job" in line]
    assert len(said) == 1, err
    assert f"KeyboardInterrupt: terminating Batch job {job_id}: 4 task(s) in flight" in said[0]
    job = batch_client.get_job(job_id)
    assert str(job.state).lower().endswith(("completed", "terminating")), job.state
    tasks = list(batch_client.list_tasks(job_id))
    assert len(tasks) == 4
    assert all(str(t.state).lower().endswith("completed") for t in tasks), [
        (t.id, t.state) for t in tasks]
