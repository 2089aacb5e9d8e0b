"""No secret in anything the package says (docs/security.md): an executor scenario, a
SuperBatch run and the CLI's `jobs`, `status` and `logs`, on the local stack, with every
logger at DEBUG (the Azure SDK's HTTP logging policy included). Every log record (message,
arguments, traceback), the reprs of executors, settings and errors, exception texts and
the CLI's stdout and stderr are collected; none may hold the Batch account key, the
storage account key of the connection string, a SAS signature (any ``sig=`` value not
masked, or one of the signatures the job's task definitions carry) or a ``Bearer`` /
``SharedKey`` credential.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
from support.waiting import wait_until

from azure_batch_executor import AzureBatchExecutor, cli, superbatch
from azure_batch_executor.config import Settings

SIG = re.compile(r"(?i)sig(?:=|%3D)([^&\s'\"<>]+)")
MASKED = {"***", "REDACTED", "%2A%2A%2A", "*****"}
TOKEN = re.compile(r"(?i)\b(Bearer|SharedKey)\s+([A-Za-z0-9_.+/=:-]{8,})")


def _fail(x: int) -> int:
    raise ValueError(f"bad input {x}")


def _echo(x: Any) -> Any:
    return x


def _slow(x: float) -> float:
    time.sleep(x)
    return x


class Collected:
    """Everything said during the test: log records and the texts the test adds."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.texts: list[str] = []

    def add(self, *items: Any) -> None:
        for item in items:
            if isinstance(item, BaseException):
                self.texts += [str(item), repr(item), "".join(traceback.format_exception(item))]
            else:
                self.texts.append(item if isinstance(item, str) else repr(item))

    def everything(self) -> str:
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        records = []
        for record in self.caplog.records:
            records.append(formatter.format(record))
            records.append(repr(record.args))
        return "\n".join(records + self.texts)


@pytest.fixture
def collected(caplog: pytest.LogCaptureFixture) -> Collected:
    caplog.set_level(logging.DEBUG)
    for name in ("azure", "azure.core.pipeline.policies.http_logging_policy", "urllib3",
                 "azure_batch_executor"):
        caplog.set_level(logging.DEBUG, logger=name)
    return Collected(caplog)


def _account(stack: Any) -> dict[str, str]:
    return {"batch_account_url": stack.batch_account_url,
            "batch_account_name": stack.batch_account_name,
            "batch_account_key": stack.batch_account_key,
            "storage_connection_string": stack.storage_connection_string}


def _storage_key(connection_string: str) -> str:
    parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
    return parts["AccountKey"]


def _task_signatures(stack: Any, job_id: str) -> set[str]:
    """The SAS signatures in the task definitions of a job kept in Batch."""
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    client = BatchClient(stack.batch_account_url, AzureNamedKeyCredential(
        stack.batch_account_name, stack.batch_account_key))
    try:
        urls = []
        for task in client.list_tasks(job_id):
            urls += [r.http_url or "" for r in task.resource_files or []]
            urls += [o.destination.container.container_url for o in task.output_files or []]
            urls += [s.value or "" for s in task.environment_settings or []]
    finally:
        client.close()
    signatures = set()
    for url in urls:
        signatures |= {v[0] for k, v in parse_qs(urlsplit(url).query).items() if k == "sig"}
    return signatures


def _executor_scenario(stack: Any, said: Collected) -> str:
    """submit, map, a failing task, a pickling error, a large argument (a signed URL in the
    task), the task's output; then an executor terminated with work in flight."""
    with AzureBatchExecutor(max_workers=2, keep_job=True, poll_interval=0.2) as ex:
        said.add(ex, ex.settings)
        assert ex.submit(pow, 2, 5).result() == 32
        assert list(ex.map(abs, [-1, -2, -3], chunksize=2)) == [1, 2, 3]
        failed = ex.submit(_fail, 7)
        said.add(failed.exception(), ex.task_output(failed))
        try:
            unpicklable = ex.submit(_echo, threading.Lock())
            said.add(unpicklable.exception())
        except Exception as exc:  # noqa: BLE001 - wherever the pickling error surfaces
            said.add(exc)
        assert ex.submit(len, b"x" * 200_000).result() == 200_000
        said.add(ex, ex.usage())
        job_id = ex.job_id
    ex2 = AzureBatchExecutor(max_workers=1, poll_interval=0.2)
    slow = ex2.submit(_slow, 30)
    wait_until(slow.running, "the slow task running", 60)
    ex2.terminate(wait=True)
    said.add(ex2, slow.exception(timeout=60) if not slow.cancelled() else "cancelled")
    return job_id


def _superbatch_scenario(tmp_path: Path, said: Collected) -> None:
    (tmp_path / "in.txt").write_text("hello")
    c = superbatch.client(
        POOL_ID="superbatch-it", JOB_ID=f"sbsec{uuid.uuid4().hex[:12]}",
        POOL_VM_SIZE="STANDARD_A1_v2", POOL_NODE_COUNT=0, POOL_LOW_PRIORITY_NODE_COUNT=2,
        DELETE_POOL_WHEN_DONE=False, BLOB_CONTAINER_NAME="superbatch-it",
        BATCH_DIRECTORY=str(tmp_path), DOCKER_IMAGE="myusername/sum-of-powers:v1",
        COMMAND_LINE="python3 worker.py")
    said.add(c)
    resource = c.build_resource_file("in.txt", "in.txt")
    said.add(resource)
    copy = "open('out.txt', 'w').write(open('in.txt').read().upper())"
    c.add_task([resource], [c.build_output_file("out.txt", "good/out.txt")],
               command_line=f'python3 -c "{copy}"')
    c.add_task([resource], [c.build_output_file("out.txt", "bad/out.txt")],
               command_line='python3 -c "raise SystemExit(3)"')
    with pytest.raises(superbatch.TasksFailedError) as info:
        c.run()
    said.add(info.value)
    assert (tmp_path / "good" / "out.txt").read_text() == "HELLO"


def _cli_scenario(stack: Any, job_id: str, capsys: pytest.CaptureFixture[str],
                  said: Collected) -> None:
    options = [f"--{name.replace('_', '-')}={value}" for name, value in _account(stack).items()]
    for argv in (["jobs"], ["status", job_id], ["logs", job_id], ["logs", job_id, "1"],
                 ["logs", job_id, "1", "--stderr"], ["status", "no-such-job"],
                 ["jobs", "--output", "json"], ["status", job_id, "--output", "json"]):
        code = cli.main([*argv, *options])
        out = capsys.readouterr()
        said.add(f"{argv} -> {code}", out.out, out.err)
    # a refused key: the error names the fix, not the key
    wrong = [o if not o.startswith("--batch-account-key=") else
             "--batch-account-key=" + "QUJD" * 22 for o in options]
    code = cli.main(["jobs", *wrong])
    out = capsys.readouterr()
    said.add(out.out, out.err)


def test_no_secret_in_logs_reprs_errors_or_cli_output(
    shared_stack: Any, collected: Collected, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    collected.add(shared_stack, Settings.resolve(env={}, **_account(shared_stack)))
    job_id = _executor_scenario(shared_stack, collected)
    _superbatch_scenario(tmp_path, collected)
    _cli_scenario(shared_stack, job_id, capsys, collected)
    text = collected.everything()
    out = capsys.readouterr()
    text += "\n" + out.out + "\n" + out.err

    # the logs did run at DEBUG, HTTP logging included
    assert any(r.name.startswith("azure.core.pipeline.policies") for r in collected.caplog.records)
    assert job_id in text

    # failures name where, never the secret (pytest would print the operands of an assert)
    secrets = {"the Batch account key": shared_stack.batch_account_key,
               "the storage account key": _storage_key(shared_stack.storage_connection_string)}
    for what, value in secrets.items():
        if value in text:
            pytest.fail(f"{what}, after: {_before(text, text.index(value))}")
    for match in SIG.finditer(text):
        if unquote(match.group(1)) not in MASKED:
            pytest.fail(f"a SAS signature, after: {_before(text, match.start())}")
    signatures = _task_signatures(shared_stack, job_id)
    if not signatures:
        pytest.fail("the job's tasks carried no SAS token: nothing was checked")
    for sig in signatures:
        for form in (sig, quote(sig, safe="")):
            if form in text:
                pytest.fail(f"a task's SAS signature, after: {_before(text, text.index(form))}")
    for m in TOKEN.finditer(text):
        if m.group(2) not in MASKED:
            pytest.fail(f"a {m.group(1)} credential, after: {_before(text, m.start())}")


def _before(text: str, at: int) -> str:
    return text[max(0, at - 300):at]
