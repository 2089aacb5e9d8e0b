"""Helpers of the CLI suites: the stack's settings as options, executors on it, running
the commands in process (`cli.main`) with their output parsed."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.waiting import wait_until

from azure_batch_executor import AzureBatchExecutor, cli
from azure_batch_executor.local import LocalStack

ROOT = Path(__file__).resolve().parents[3]


def account_settings(stack: LocalStack) -> dict[str, Any]:
    return {"batch_account_url": stack.batch_account_url,
            "batch_account_name": stack.batch_account_name,
            "batch_account_key": stack.batch_account_key,
            "storage_connection_string": stack.storage_connection_string}


def account_options(stack: LocalStack) -> list[str]:
    """The stack's account as the commands' options."""
    return [f"--{name.replace('_', '-')}={value}"
            for name, value in account_settings(stack).items()]


def executor(stack: LocalStack, **settings: Any) -> AzureBatchExecutor:
    return AzureBatchExecutor(max_workers=2, environment="none", dedicated_nodes=1,
                              task_slots_per_node=2, echo_output=False, poll_interval=0.2,
                              **{**account_settings(stack), **settings})


def speak(x: int) -> int:
    """Says something on each stream; a node-level failure (exit code 3) for x == 2."""
    print(f"out {x}", flush=True)
    print(f"err {x}", file=sys.stderr, flush=True)
    if x == 2:
        import os

        os._exit(3)
    return x


def kept_job(stack: LocalStack) -> str:
    """A completed job kept in Batch (`keep_job`): tasks 0 and 1 succeed, 2 exits with 3."""
    with executor(stack, keep_job=True) as ex:
        futures = [ex.submit(speak, i) for i in range(3)]
        for f in futures:
            f.exception()
    job_state(stack, ex.job_id, until="completed")
    return ex.job_id


def eventually(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Whether `predicate()` comes true within `timeout` s (asked every 50 ms): for a
    state another process moves on its own time (a task added, a job deleted)."""
    try:
        wait_until(predicate, "a condition", timeout)
    except AssertionError:
        return False
    return True


def job_state(stack: LocalStack, job_id: str, until: str | None = None) -> str:
    """The job's state in Batch ("gone" when deleted); with `until`, once it is that (a
    terminated job is ``terminating`` for a moment, as on Azure)."""
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.core.exceptions import ResourceNotFoundError

    client = BatchClient(stack.batch_account_url, AzureNamedKeyCredential(
        stack.batch_account_name, stack.batch_account_key))
    def read() -> str:
        try:
            return str(getattr(client.get_job(job_id).state, "value", "")).lower()
        except ResourceNotFoundError:
            return "gone"

    try:
        if until is not None:
            eventually(lambda: read() == until)
        return read()
    finally:
        client.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`cli.main(argv)`: (exit code, stdout, stderr)."""
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    """`cli.main([*argv, "--output", "json"])`, which must succeed, its stdout parsed."""
    code, out, err = run(capsys, *argv, "--output", "json")
    assert code == 0, err
    return json.loads(out)
