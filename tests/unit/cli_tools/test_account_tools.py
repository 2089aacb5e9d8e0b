"""The account commands' shared parts, without a stack: durations, tables, the discovery
files of running local stacks, and the one-line errors given before any request."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from azure_batch_executor import cli
from azure_batch_executor.cli import accounts
from azure_batch_executor.cli.serving import CommandError
from azure_batch_executor.config import ENV_NAMES, Settings
from azure_batch_executor.local.stack import (
    ENV_DISCOVERY_DIR,
    discovery_dir,
    running_stacks,
    write_discovery,
)

ACCOUNT_COMMANDS = ("jobs", "status", "logs", "cleanup", "pools")
KEY = "a2V5"  # base64


@pytest.fixture
def no_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No account variable, and an empty discovery directory (returned)."""
    for var in ENV_NAMES.values():
        monkeypatch.delenv(var, raising=False)
    directory = tmp_path / "stacks"
    monkeypatch.setenv(ENV_DISCOVERY_DIR, str(directory))
    return directory


@pytest.fixture
def listening() -> Iterator[str]:
    """A loopback URL something listens on (a running emulator, as far as discovery sees)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def _record(url: str, pid: int | None = None, started: str = "2025-01-01T00:00:00") -> dict:
    return {"pid": os.getpid() if pid is None else pid, "started": started,
            "batch_account_url": url, "batch_account_name": "devbatch",
            "batch_account_key": KEY, "storage_connection_string": "AccountName=x;",
            "blob_url": "http://127.0.0.1:1/devstoreaccount1"}


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"azure-batch-executor {argv[0]}: error: "), lines[0]
    return lines[0]


# ---------------------------------------------------------------------------- durations
@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("30m", 1800), ("12h", 43200), ("7d", 604800), ("2w", 1209600),
    ("1d12h", 129600), ("1h30m", 5400), ("0s", 0), ("3600", 3600), ("1.5h", 5400),
    (" 7D ", 604800),
])
def test_durations(text: str, seconds: float) -> None:
    assert accounts.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "3x", "7 d", "d", "-1h", "1h-", "inf", "nan", "h1"])
def test_not_durations(text: str) -> None:
    with pytest.raises(CommandError, match="is not a duration: use"):
        accounts.parse_duration(text)


# ---------------------------------------------------------------------------- tables
def test_table_aligns_and_right_aligns_numbers() -> None:
    text = accounts.table(["NAME", "N", "WHEN"], [
        ["a", 1, None], ["long-name", 100, {"idle": 2, "running": 1}]])
    assert text.splitlines() == [
        "NAME         N  WHEN",
        "a            1  -",
        "long-name  100  idle 2, running 1",
    ]
    assert accounts.table(["A", "B"], []) == "A  B"


def test_times_are_iso_utc() -> None:
    import datetime as dt

    when = dt.datetime(2025, 1, 31, 13, 0, 5, 123, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert accounts.iso(when) == "2025-01-31T12:00:05Z"
    assert accounts.iso(None) is None
    assert accounts.cell(True) == "yes" and accounts.cell({}) == "-"


# ---------------------------------------------------------------------------- discovery
def test_discovery_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_DISCOVERY_DIR, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert discovery_dir() == tmp_path / "azure-batch-executor" / "local-stacks"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert discovery_dir() == tmp_path / ".cache" / "azure-batch-executor" / "local-stacks"
    monkeypatch.setenv(ENV_DISCOVERY_DIR, str(tmp_path / "mine"))
    assert discovery_dir() == tmp_path / "mine"


def test_discovery_file_is_private(tmp_path: Path, listening: str) -> None:
    path = write_discovery(_record(listening), tmp_path / "stacks")
    assert path is not None and path.name == f"{os.getpid()}-{listening.rsplit(':')[-1]}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text())["batch_account_key"] == KEY
    assert [r["batch_account_url"] for r in running_stacks(tmp_path / "stacks")] == [listening]


def test_running_stacks_newest_alive_and_answering(tmp_path: Path, listening: str) -> None:
    old = write_discovery(_record(listening, started="2025-01-01T00:00:00"), tmp_path)
    assert old is not None
    newer = _record(listening, started="2025-06-01T00:00:00")
    (tmp_path / "newer.json").write_text(json.dumps(newer))
    dead = write_discovery(_record("http://127.0.0.1:9", pid=_dead_pid()), tmp_path)
    (tmp_path / "silent.json").write_text(json.dumps(_record("http://127.0.0.1:9")))
    (tmp_path / "broken.json").write_text("{")
    found = running_stacks(tmp_path)
    assert [r["started"] for r in found] == ["2025-06-01T00:00:00", "2025-01-01T00:00:00"]
    assert dead is not None and not dead.exists()  # a dead process's file is removed
    assert (tmp_path / "silent.json").exists()  # a live process: maybe still starting


def test_an_unwritable_directory_only_makes_the_stack_undiscoverable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert write_discovery(_record("http://127.0.0.1:1"), blocker / "stacks") is None


# ---------------------------------------------------------------------------- accounts
def test_no_account_and_no_stack(no_account: Path, capsys: pytest.CaptureFixture[str]
                                 ) -> None:
    for command in (["jobs"], ["status", "JOB"], ["logs", "JOB"], ["cleanup"], ["pools"]):
        line = _error_line(capsys, command)
        assert "no Azure Batch account configured and no local stack running" in line
        assert "BATCH_ACCOUNT_URL" in line and "`azure-batch-executor local`" in line


def test_a_stack_that_died_is_not_used(no_account: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    write_discovery(_record("http://127.0.0.1:9", pid=_dead_pid()), no_account)
    assert "no local stack running" in _error_line(capsys, ["jobs"])


def test_the_newest_running_stack_is_used_and_said(
        no_account: Path, listening: str, capsys: pytest.CaptureFixture[str]) -> None:
    write_discovery(_record(listening), no_account)
    args = cli.build_parser().parse_args(["jobs"])
    account = accounts.connect(args)
    assert account.settings.batch_account_url == listening
    assert account.settings.batch_account_key == KEY
    err = capsys.readouterr().err
    assert err == (f"azure-batch-executor jobs: no Azure Batch account configured: using the "
                   f"local stack of process {os.getpid()} (Batch emulator {listening}, "
                   "started 2025-01-01T00:00:00)\n")


def test_options_are_named_in_configuration_errors(no_account: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    line = _error_line(capsys, ["pools", "--batch-account-url", "https://a.b.batch.azure.com",
                                "--batch-account-name", "a"])
    assert "BATCH_ACCOUNT_KEY or pass --batch-account-key=" in line
    line = _error_line(capsys, ["jobs", "--container-name", "Bad_Name"])
    assert "--container-name='Bad_Name'" in line


def test_refusals_and_silence_name_the_fix() -> None:
    from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

    account = accounts.Account(Settings.resolve(
        batch_account_url="https://acct.westeurope.batch.azure.com",
        storage_account_url="https://store.blob.core.windows.net"))
    refused = account.problem(ClientAuthenticationError("no login"), blob=False)
    assert refused is not None and "az login" in str(refused) and "BATCH_ACCOUNT_KEY" in str(
        refused)
    silent = account.problem(ServiceRequestError("refused"), blob=False)
    assert silent is not None and "no answer from https://acct.westeurope" in str(silent)
    assert "check BATCH_ACCOUNT_URL" in str(silent)
    assert account.problem(ValueError("other"), blob=True) is None


def test_usage_errors_before_any_request(no_account: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert "--older-than '3x' is not a duration" in _error_line(
        capsys, ["cleanup", "--older-than", "3x"])
    assert "leave out --output json" in _error_line(
        capsys, ["logs", "JOB", "1", "--follow", "--output", "json"])
    assert "--follow needs a TASK" in _error_line(capsys, ["logs", "JOB", "--follow"])


@pytest.mark.parametrize("command", ACCOUNT_COMMANDS)
def test_help_says_what_and_gives_an_example(command: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert f"example:\n  azure-batch-executor {command}" in out
    assert "--output" in out and "--batch-account-url" in out
