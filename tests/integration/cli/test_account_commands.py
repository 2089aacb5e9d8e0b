"""`jobs`, `status`, `logs` and `pools` against a local stack: found through its discovery
file, or given by options or by the seed's variables; `--output json` parsed.

One executor run keeps its job (`keep_job=True`): tasks 0 and 1 succeed, task 2 exits
with code 3 (a failed task for Batch), every task says `out <i>` on stdout and `err <i>`
on stderr. `--follow` runs as a subprocess, as a user runs it beside a running job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cli_kit import ROOT, account_options, account_settings, executor, kept_job, run, run_json
from support.gates import Gate, wait_gate
from support.waiting import wait_until

from azure_batch_executor.local import LocalStack
from azure_batch_executor.local.stack import ENV_DISCOVERY_DIR


@pytest.fixture(scope="module")
def job(stack: LocalStack) -> str:
    return kept_job(stack)


def _using_stack(err: str, stack: LocalStack) -> None:
    """The one stderr line saying which local stack the command found."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert f"using the local stack of process {os.getpid()}" in lines[0]
    assert stack.batch_account_url in lines[0]


def test_jobs_lists_the_kept_job_with_its_task_counts(stack: LocalStack, job: str,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    code, out, err = run(capsys, "jobs", "--output", "json")
    assert code == 0
    _using_stack(err, stack)
    rows = {row["id"]: row for row in json.loads(out)}
    row = rows[job]
    assert set(row) == {"id", "state", "pool_id", "created", "ended", "created_by_package",
                        "tasks", "blobs_expire"}
    assert row["state"] == "completed" and row["pool_id"] == "azure-batch-executor"
    assert row["created_by_package"] is True
    assert row["tasks"] == {"active": 0, "running": 0, "completed": 3, "succeeded": 2,
                            "failed": 1}
    assert row["blobs_expire"] > row["created"]  # ISO 8601 UTC strings compare as times

    code, out, _ = run(capsys, "jobs")
    header, *lines = out.splitlines()
    assert header.split() == ["JOB", "STATE", "POOL", "CREATED", "ACTIVE", "RUNNING",
                              "SUCCEEDED", "FAILED", "BLOBS", "EXPIRE"]
    mine = next(line for line in lines if line.startswith(job))
    assert mine.split()[1:2] == ["completed"] and mine.split()[4:8] == ["0", "0", "2", "1"]


def test_a_deleted_job_with_kept_blobs_is_listed_and_readable(
        stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    with executor(stack) as ex:  # a normal shutdown deletes the job, the blobs stay
        assert ex.submit(print, "still here").result() is None
        job_id = ex.job_id
    def state() -> str:
        rows = {row["id"]: row for row in run_json(capsys, "jobs")}
        return rows[job_id]["state"]

    assert state() in ("deleting", "deleted")  # the deletion is asynchronous
    wait_until(lambda: state() == "deleted", "the Batch job gone, its container listed")
    status = run_json(capsys, "status", job_id)
    assert status["job"]["id"] == job_id and status["blobs"]["expire"] is not None
    assert run_json(capsys, "logs", job_id, "task-000000")["text"] == "still here\n"


def test_status_of_a_job(stack: LocalStack, job: str, capsys: pytest.CaptureFixture[str]
                         ) -> None:
    status = run_json(capsys, "status", job)
    assert set(status) == {"job", "tasks", "pool", "blobs"}
    assert status["job"]["state"] == "completed"
    assert status["tasks"]["failed"] == 1 and status["tasks"]["succeeded"] == 2
    pool = status["pool"]
    assert pool["id"] == "azure-batch-executor" and pool["created_by_package"] is True
    assert pool["allocation_state"] in ("steady", "resizing")
    assert sum(pool["nodes"].values()) == pool["dedicated"]["current"] == 1
    assert status["blobs"] == {"container": job, "prefix": f"{job}/",  # its own container
                               "expire": status["blobs"]["expire"]}

    code, out, _ = run(capsys, "status", job)
    assert code == 0
    fields = dict(line.split(None, 1) for line in out.splitlines() if " " in line)
    assert fields["state"].strip() == "completed"
    assert "succeeded 2, failed 1" in fields["tasks"]


def test_pools(stack: LocalStack, job: str, capsys: pytest.CaptureFixture[str]) -> None:
    pools = run_json(capsys, "pools", "--mine")
    assert [p["id"] for p in pools] == ["azure-batch-executor"]
    pool = pools[0]
    assert pool["created_by_package"] is True and pool["live_jobs"] == 0
    assert pool["vm_size"] and pool["task_slots_per_node"] == 2
    assert run_json(capsys, "pools", "--pool-id", "no-such-pool") == []
    code, out, _ = run(capsys, "pools")
    assert code == 0 and out.splitlines()[1].split()[:2] == ["azure-batch-executor", "yes"]


def test_logs_of_a_job_list_its_tasks(stack: LocalStack, job: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    tasks = run_json(capsys, "logs", job)
    assert [t["task_id"] for t in tasks] == ["task-000000", "task-000001", "task-000002"]
    assert [t["exit_code"] for t in tasks] == [0, 0, 3]
    assert [t["state"] for t in tasks] == ["completed"] * 3
    assert [t["stdout_bytes"] for t in tasks] == [len("out 0\n")] * 3
    assert all(t["node_id"] and t["start"] and t["end"] for t in tasks)


def test_logs_of_a_task(stack: LocalStack, job: str, capsys: pytest.CaptureFixture[str]
                        ) -> None:
    assert run(capsys, "logs", job, "task-000001")[1] == "out 1\n"
    assert run(capsys, "logs", job, "2", "--stderr")[1] == "err 2\n"
    one = run_json(capsys, "logs", job, "0")
    assert one == {"job_id": job, "task_id": "task-000000", "stream": "stdout",
                   "state": "completed", "source": "blob", "text": "out 0\n"}


def test_logs_stderr_of_every_task(stack: LocalStack, job: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "logs", job, "--stderr")
    assert code == 0
    assert out == "==> task-000000 <==\nerr 0\n\n==> task-000001 <==\nerr 1\n\n" \
                  "==> task-000002 <==\nerr 2\n"
    assert run_json(capsys, "logs", job, "--stderr")[2] == {"task_id": "task-000002",
                                                            "text": "err 2\n"}


def test_explicit_options_need_no_running_stack(
        stack: LocalStack, job: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(ENV_DISCOVERY_DIR, str(tmp_path))  # no stack to discover
    code, out, err = run(capsys, "jobs", *account_options(stack), "--output", "json")
    assert code == 0 and err == ""
    assert job in [row["id"] for row in json.loads(out)]
    code, out, err = run(capsys, "status", job, *account_options(stack), "-o", "json")
    assert code == 0 and err == "" and json.loads(out)["tasks"]["failed"] == 1


def test_the_seeds_variables(stack: LocalStack, job: str, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(ENV_DISCOVERY_DIR, str(tmp_path))
    for name, value in account_settings(stack).items():
        variable = {"batch_account_url": "BATCH_ACCOUNT_URL",
                    "batch_account_name": "BATCH_ACCOUNT_NAME",
                    "batch_account_key": "BATCH_ACCOUNT_KEY",
                    "storage_connection_string": "STORAGE_ACCOUNT_CONNECTION_STRING"}[name]
        monkeypatch.setenv(variable, value)
    code, out, err = run(capsys, "pools", "-o", "json")
    assert code == 0 and err == "" and json.loads(out)[0]["id"] == "azure-batch-executor"


def test_errors_are_one_line_naming_the_fix(stack: LocalStack, job: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    for argv, words in [
        (["status", "abx-20000101-000000-00000000"], "`azure-batch-executor jobs`"),
        (["logs", "no-such-job"], "`azure-batch-executor jobs`"),
        (["logs", job, "task-000099"], f"`azure-batch-executor logs {job}`"),
        (["logs", job, "seven"], "task-000007"),
        (["logs", job, "--follow"], "needs a TASK"),
        (["jobs", "--batch-account-url", stack.batch_account_url],
         "STORAGE_ACCOUNT_CONNECTION_STRING, or pass --storage-account-url= / "
         "--storage-connection-string="),
        (["jobs", *account_options(stack)[:2], "--batch-account-key=bm90IHRoZSBrZXk=",
          account_options(stack)[3]], "refused the credentials"),
    ]:
        code, out, err = run(capsys, *argv)
        assert code == 2, (argv, out, err)
        line = err.splitlines()[-1]
        assert line.startswith(f"azure-batch-executor {argv[0]}: error: "), err
        assert words in line, line
        assert "Traceback" not in err and out == ""


def _waits_for(gate: str) -> int:
    print("first line", flush=True)
    wait_gate(gate)  # the test's go-ahead, after it saw the first line
    print("last line", flush=True)
    return 0


def test_logs_follow_a_running_task(stack: LocalStack, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    gate = Gate(tmp_path)
    with executor(stack) as ex:
        future = ex.submit(_waits_for, gate.path)
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        follow = subprocess.Popen(
            [sys.executable, "-m", "azure_batch_executor.cli", "logs", ex.job_id,
             "task-000000", "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env, cwd=ROOT)
        try:
            assert follow.stdout is not None
            timer = threading.Timer(120, follow.kill)  # a hung follow fails, not hangs
            timer.start()
            assert follow.stdout.readline() == "first line\n"
            now = run_json(capsys, "logs", ex.job_id, "0")  # from its node, while it runs
            assert (now["state"], now["source"], now["text"]) == ("running", "node",
                                                                  "first line\n")
            gate.open()
            rest = follow.stdout.read()
            timer.cancel()
            assert follow.wait(timeout=60) == 0, follow.stderr.read() if follow.stderr else ""
        finally:
            gate.open()
            if follow.poll() is None:
                follow.kill()
                follow.wait()
        assert rest == "last line\n"
        assert future.result(timeout=60) == 0


def test_jobs_as_a_subprocess(stack: LocalStack, job: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "azure_batch_executor.cli", "jobs",
                           "--output", "json"], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert job in [row["id"] for row in json.loads(done.stdout)]
    assert "using the local stack" in done.stderr
