"""TaskRunner with local commands: exit codes, signals, no shell, wall clock, terminate, kill."""

from __future__ import annotations

import os
import select
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from runner_testkit import FakeBlobServer, ReadySignal, Reply, Waiter

from azure_batch_executor.emulator import runner as runner_module
from azure_batch_executor.emulator.runner import (
    FailureInfo,
    RunOutcome,
    RunSpec,
    TaskRunner,
)

Run = Callable[..., RunOutcome]
MakeSpec = Callable[..., RunSpec]

TASK_ENDED_WALLTIME = FailureInfo(
    "usererror", "TaskEnded", "The task was ended because its maximum wall clock time was exceeded"
)
UNUSED_URL = "http://127.0.0.1:9/never-fetched"
TASK_ENDED_USER = FailureInfo("usererror", "TaskEnded", "The task was ended by user request")


def _running(ready: ReadySignal) -> str:
    return f"sh -c 'echo ready > {ready.path}; exec sleep 60'"


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ("/bin/true", 0),
        ("false", 1),
        ("sh -c 'exit 3'", 3),
        ("sh -c 'exit 255'", 255),
        ("sh -c 'kill -TERM $$'", 128 + 15),
        ("sh -c 'kill -USR1 $$'", 128 + 10),
        ("sh -c 'kill -KILL $$'", 128 + 9),
    ],
)
def test_exit_codes(run: Run, command: str, code: int) -> None:
    outcome = run(command)
    assert (outcome.reason, outcome.exit_code, outcome.failure) == ("exited", code, None)
    assert outcome.start_time <= outcome.end_time


def test_outcome_fields(run: Run) -> None:
    before = time.time()
    outcome = run("/bin/true", run_id="job-1:task-7:0")
    assert outcome.run_id == "job-1:task-7:0"
    assert before <= outcome.start_time <= outcome.end_time <= time.time()


@pytest.mark.parametrize(
    ("command", "code", "needle"),
    [
        ("no-such-program-xyz arg", "CommandProgramNotFound", "no-such-program-xyz"),
        ("./missing.sh", "CommandProgramNotFound", "./missing.sh"),
        ("", "CommandProgramNotFound", "empty"),
        ("   ", "CommandProgramNotFound", "empty"),
        ("echo 'unbalanced", "CommandLaunchFailed", "parse"),
    ],
)
def test_program_not_found_is_preprocessing(
    run: Run, tmp_path: Path, command: str, code: str, needle: str
) -> None:
    outcome = run(command)
    assert outcome.reason == "preprocessing"
    assert outcome.exit_code is None
    assert outcome.failure is not None
    assert (outcome.failure.category, outcome.failure.code) == ("usererror", code)
    assert needle in outcome.failure.message
    assert (tmp_path / "task" / "stdout.txt").read_bytes() == b""


def test_program_found_only_on_the_task_path(run: Run, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "mytool"
    tool.write_text("#!/bin/sh\necho from-mytool\n")
    tool.chmod(0o755)
    outcome = run("mytool", env={"PATH": f"{bindir}:/usr/bin:/bin"})
    assert (outcome.reason, outcome.exit_code) == ("exited", 0)
    assert (tmp_path / "task" / "stdout.txt").read_text() == "from-mytool\n"
    missing = run("mytool", env={"PATH": "/usr/bin:/bin"}, run_id="run-2")
    assert missing.failure is not None
    assert missing.failure.code == "CommandProgramNotFound"


def test_non_executable_program_is_a_launch_failure(run: Run, tmp_path: Path) -> None:
    outcome = run("/etc/hostname")
    assert outcome.reason == "preprocessing"
    assert outcome.failure is not None
    assert outcome.failure.code == "CommandLaunchFailed"


def test_relative_program_resolves_against_wd(
    runner: TaskRunner, make_spec: MakeSpec, blob_server: FakeBlobServer, tmp_path: Path
) -> None:
    blob_server.routes[("GET", "/c/tool.sh")] = Reply(200, b"#!/bin/sh\necho tool ran in $PWD\n")
    waiter = Waiter()
    spec = make_spec(
        "./bin/tool.sh",
        resource_files=[
            {
                "httpUrl": f"{blob_server.url}/c/tool.sh",
                "filePath": "bin/tool.sh",
                "fileMode": "0755",
            }
        ],
        env={"PATH": "/usr/bin:/bin", "PWD": str(tmp_path / "task" / "wd")},
    )
    runner.start(spec, waiter)
    outcome = waiter.wait()
    assert (outcome.reason, outcome.exit_code) == ("exited", 0)
    assert (tmp_path / "task" / "stdout.txt").read_text() == f"tool ran in {tmp_path}/task/wd\n"


def test_no_shell_and_posix_split(run: Run, tmp_path: Path) -> None:
    outcome = run("echo $HOME 'two  words' \"a;b\" | cat")
    assert outcome.exit_code == 0
    assert (tmp_path / "task" / "stdout.txt").read_text() == "$HOME two  words a;b | cat\n"


def test_env_is_passed_exactly(run: Run, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "FOO": "bar baz", "AZ_BATCH_TASK_ID": "t1"}
    outcome = run("env", env=env)
    assert outcome.exit_code == 0
    lines = (tmp_path / "task" / "stdout.txt").read_text().splitlines()
    assert sorted(lines) == sorted(f"{k}={v}" for k, v in env.items())


def test_cwd_is_wd_and_stdio_files(run: Run, tmp_path: Path) -> None:
    outcome = run("sh -c 'pwd; echo oops >&2; read x || echo stdin-empty'")
    assert outcome.exit_code == 0
    task_dir = tmp_path / "task"
    out = (task_dir / "stdout.txt").read_text().splitlines()
    assert out == [os.path.realpath(task_dir / "wd"), "stdin-empty"]
    assert (task_dir / "stderr.txt").read_text() == "oops\n"


def test_task_dir_is_recreated_for_each_attempt(run: Run, tmp_path: Path) -> None:
    stale = tmp_path / "task" / "wd" / "stale.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("from a previous attempt")
    (tmp_path / "task" / "fileuploadout.txt").write_text("old")
    outcome = run("sh -c 'ls -A; ls -A ..'")
    assert outcome.exit_code == 0
    assert (tmp_path / "task" / "stdout.txt").read_text().split() == [
        "stderr.txt",
        "stdout.txt",
        "wd",
    ]


def test_wall_clock_kills_with_137(run: Run, tmp_path: Path) -> None:
    started = time.monotonic()
    outcome = run("sleep 30", max_wall_clock_seconds=0.3)
    assert time.monotonic() - started < 10
    assert (outcome.reason, outcome.exit_code, outcome.failure) == (
        "walltime",
        137,
        TASK_ENDED_WALLTIME,
    )


def _assert_dies(pid: int, timeout: float = 10.0) -> None:
    """Wait on a pidfd (readable once the process has ended) instead of sleeping."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        assert readable, f"process {pid} is still alive {timeout} s after the kill"
    finally:
        os.close(fd)


def test_wall_clock_kills_the_whole_process_group(run: Run, tmp_path: Path) -> None:
    outcome = run("sh -c 'sleep 60 & echo $! > child.pid; wait'", max_wall_clock_seconds=2)
    assert (outcome.reason, outcome.exit_code) == ("walltime", 137)
    _assert_dies(int((tmp_path / "task" / "wd" / "child.pid").read_text()))


@pytest.mark.parametrize("how", ["terminate", "kill", "stop"])
def test_every_kill_reaches_the_whole_process_group(
    runner: TaskRunner, make_spec: MakeSpec, ready: ReadySignal, tmp_path: Path, how: str
) -> None:
    waiter = Waiter()
    command = f"sh -c 'sleep 60 & echo $! > child.pid; echo ready > {ready.path}; wait'"
    runner.start(make_spec(command), waiter)
    ready.wait()
    if how == "terminate":
        runner.terminate("run-1", "terminated")
    elif how == "kill":
        assert runner.kill("run-1") is True
    else:
        runner.stop()
    if how != "stop":
        assert waiter.wait().exit_code == 137
    _assert_dies(int((tmp_path / "task" / "wd" / "child.pid").read_text()))


def test_wall_clock_not_hit(run: Run) -> None:
    outcome = run("/bin/true", max_wall_clock_seconds=30)
    assert (outcome.reason, outcome.exit_code) == ("exited", 0)


@pytest.mark.parametrize(
    ("reason", "failure"), [("terminated", TASK_ENDED_USER), ("requeued", None)]
)
def test_terminate_running_process(
    runner: TaskRunner,
    make_spec: MakeSpec,
    ready: ReadySignal,
    blob_server: FakeBlobServer,
    tmp_path: Path,
    reason: str,
    failure: FailureInfo | None,
) -> None:
    waiter = Waiter()
    outputs = [_output(blob_server, "../stdout.txt", "taskcompletion")]
    runner.start(make_spec(_running(ready), output_files=outputs), waiter)
    ready.wait()
    runner.terminate("run-1", reason)  # type: ignore[arg-type]
    outcome = waiter.wait()
    assert (outcome.reason, outcome.exit_code, outcome.failure) == (reason, 137, failure)
    assert blob_server.puts() == []  # no uploads after terminate
    assert not (tmp_path / "task" / "fileuploadout.txt").exists()


def test_terminate_unknown_or_finished_is_a_noop(runner: TaskRunner, run: Run) -> None:
    runner.terminate("never-started", "terminated")
    assert run("/bin/true").reason == "exited"
    runner.terminate("run-1", "terminated")
    assert runner.kill("run-1") is False


def test_terminate_rejects_unknown_reason(runner: TaskRunner) -> None:
    with pytest.raises(ValueError):
        runner.terminate("x", "cancelled")  # type: ignore[arg-type]


def _output(server: FakeBlobServer, pattern: str, condition: str, path: str | None = None) -> dict:
    container: dict = {"containerUrl": f"{server.url}/out?sv=1&sig=abc"}
    if path is not None:
        container["path"] = path
    return {
        "filePattern": pattern,
        "destination": {"container": container},
        "uploadOptions": {"uploadCondition": condition},
    }


def _conditional_outputs(server: FakeBlobServer) -> list[dict]:
    return [
        _output(server, "../stdout.txt", "TaskSuccess", "on-success.txt"),
        _output(server, "../stdout.txt", "taskfailure", "on-failure.txt"),
        _output(server, "../stdout.txt", "taskCompletion", "on-completion.txt"),
    ]


def _uploaded(server: FakeBlobServer) -> list[str]:
    return sorted(r.path.split("?")[0] for r in server.puts())


def test_kill_ends_like_a_failure_with_uploads(
    runner: TaskRunner, make_spec: MakeSpec, ready: ReadySignal, blob_server: FakeBlobServer
) -> None:
    waiter = Waiter()
    runner.start(make_spec(_running(ready), output_files=_conditional_outputs(blob_server)), waiter)
    ready.wait()
    assert runner.kill("run-1") is True
    outcome = waiter.wait()
    assert (outcome.reason, outcome.exit_code, outcome.failure) == ("exited", 137, None)
    assert _uploaded(blob_server) == ["/out/on-completion.txt", "/out/on-failure.txt"]


def test_kill_before_the_process_exists_or_unknown(runner: TaskRunner) -> None:
    assert runner.kill("nothing-here") is False


@pytest.mark.parametrize(
    ("command", "wall", "expected"),
    [
        ("/bin/true", None, ["/out/on-completion.txt", "/out/on-success.txt"]),
        ("false", None, ["/out/on-completion.txt", "/out/on-failure.txt"]),
        ("sleep 30", 0.3, ["/out/on-completion.txt", "/out/on-failure.txt"]),
    ],
)
def test_upload_conditions(
    run: Run, blob_server: FakeBlobServer, command: str, wall: float | None, expected: list[str]
) -> None:
    run(command, output_files=_conditional_outputs(blob_server), max_wall_clock_seconds=wall)
    assert _uploaded(blob_server) == expected


def test_on_done_exceptions_are_contained(
    runner: TaskRunner, make_spec: MakeSpec, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[RunOutcome] = []
    called = threading.Event()

    def explode(outcome: RunOutcome) -> None:
        calls.append(outcome)
        called.set()
        raise RuntimeError("scheduler bug")

    runner.start(make_spec("/bin/true"), explode)
    assert called.wait(20)
    waiter = Waiter()
    runner.start(make_spec("/bin/true", run_id="run-2"), waiter)
    assert waiter.wait().exit_code == 0
    assert len(calls) == 1
    assert "on_done raised" in caplog.text


def test_duplicate_run_id_is_refused(
    runner: TaskRunner, make_spec: MakeSpec, ready: ReadySignal
) -> None:
    waiter = Waiter()
    runner.start(make_spec(_running(ready)), waiter)
    ready.wait()
    with pytest.raises(ValueError, match="already running"):
        runner.start(make_spec("/bin/true"), Waiter())
    runner.terminate("run-1", "requeued")
    assert waiter.wait().reason == "requeued"


def test_internal_error_becomes_an_outcome(
    run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug in the runner")

    monkeypatch.setattr(runner_module, "download_resource_files", broken)
    outcome = run("/bin/true")
    assert outcome.reason == "preprocessing"
    assert outcome.exit_code is None
    assert outcome.failure is not None
    assert (outcome.failure.category, outcome.failure.code) == ("servererror", "InternalError")
    assert "bug in the runner" in outcome.failure.message


def test_stop_kills_suppresses_callbacks_and_refuses_new_work(
    make_spec: MakeSpec, ready: ReadySignal, tmp_path: Path
) -> None:
    runner = TaskRunner()
    waiter = Waiter()
    runner.start(make_spec(_running(ready)), waiter)
    ready.wait()
    # the child can signal ready before Popen() has returned in the runner's thread
    deadline = time.monotonic() + 10
    while (proc := runner._attempts["run-1"].proc) is None and time.monotonic() < deadline:
        threading.Event().wait(0.005)
    assert proc is not None
    runner.stop()
    assert proc.returncode == -9  # killed and reaped before stop() returned
    assert waiter.outcomes == []  # no callbacks once stop() began
    runner.stop()  # idempotent
    with pytest.raises(RuntimeError, match="stop"):
        runner.start(make_spec("/bin/true", run_id="late"), waiter)


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        ({"httpUrl": UNUSED_URL, "filePath": "../escape.txt"}, "ResourceFileCreateFailed"),
        ({"httpUrl": UNUSED_URL, "filePath": "/etc/x"}, "ResourceFileCreateFailed"),
        ({"httpUrl": UNUSED_URL}, "ResourceFileCreateFailed"),
        ({"httpUrl": UNUSED_URL, "storageContainerUrl": UNUSED_URL}, "ResourceFileCreateFailed"),
        ({"filePath": "x"}, "ResourceFileCreateFailed"),
        ({"httpUrl": UNUSED_URL, "filePath": "x", "fileMode": "rw"}, "ResourceFileCreateFailed"),
        ({"autoStorageContainerName": "inputs"}, "ResourceContainerNotFound"),
    ],
)
def test_bad_resource_files_fail_before_the_command(
    run: Run, tmp_path: Path, entry: dict, code: str
) -> None:
    marker = tmp_path / "ran"
    outcome = run(f"touch {marker}", resource_files=[entry])
    assert outcome.reason == "preprocessing"
    assert outcome.exit_code is None
    assert outcome.failure is not None
    assert (outcome.failure.category, outcome.failure.code) == ("usererror", code)
    assert not marker.exists()


def test_auto_storage_message_names_the_fix(run: Run) -> None:
    outcome = run("/bin/true", resource_files=[{"autoStorageContainerName": "inputs"}])
    assert outcome.failure is not None
    assert "storageContainerUrl" in outcome.failure.message


def test_thousand_attempts_on_eight_slots(make_spec: MakeSpec, tmp_path: Path) -> None:
    runner = TaskRunner()
    total, slots = 1000, threading.BoundedSemaphore(8)
    done = threading.Event()
    lock = threading.Lock()
    results: list[RunOutcome] = []

    def on_done(outcome: RunOutcome) -> None:
        slots.release()
        with lock:
            results.append(outcome)
            if len(results) == total:
                done.set()

    started = time.monotonic()
    try:
        for i in range(total):
            assert slots.acquire(timeout=15)
            spec = make_spec("/bin/true", run_id=f"r{i}", task_dir=tmp_path / f"t{i}")
            runner.start(spec, on_done)
        assert done.wait(15)
    finally:
        runner.stop()
    elapsed = time.monotonic() - started
    assert all(o.reason == "exited" and o.exit_code == 0 for o in results)
    assert elapsed < 15, f"1000 attempts took {elapsed:.1f} s"


def test_stdout_file_mode_is_ordinary(run: Run, tmp_path: Path) -> None:
    run("/bin/true")
    mode = stat.S_IMODE((tmp_path / "task" / "stdout.txt").stat().st_mode)
    assert mode & 0o600 == 0o600
