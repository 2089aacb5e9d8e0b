"""`local` and `emulator`: every error a user can fix is one stderr line naming the fix, exit 2.

Also the parser's own errors (one line, pointing at --help), `--version`, and
`local --loose` reaching the stack. Commands run through `cli.main`, in process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import azure_batch_executor
from azure_batch_executor import cli
from azure_batch_executor.local import LocalStackError, azurite


def _error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"azure-batch-executor {argv[0]}: error: "), lines[0]
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.fixture
def no_azurite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No node_modules in the current directory or the repository, an empty cache, an
    empty PATH: returns the directory on PATH."""
    monkeypatch.delenv("AZURITE_BLOB_URL", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(azurite, "_REPOSITORY", tmp_path)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", str(bindir))
    return bindir


def _executable(path: Path, text: str, mode: int = 0o755) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def test_local_without_node(no_azurite: Path, capsys) -> None:
    line = _error_line(capsys, ["local"])
    assert "Node.js is not installed" in line and "azure-batch-executor[local]" in line


def test_local_without_azurite_or_npm(no_azurite: Path, capsys) -> None:
    _executable(no_azurite / "node", "#!/bin/sh\n")
    line = _error_line(capsys, ["local"])
    assert "Azurite (the Azure Storage emulator) was not found" in line
    assert "npm is not on PATH" in line and "AZURITE_BLOB_URL" in line


def test_local_when_azurite_exits_at_once(no_azurite: Path, tmp_path: Path, capsys) -> None:
    _executable(tmp_path / "node_modules" / ".bin" / "azurite-blob",
                "#!/bin/sh\necho 'cannot start: something broke'\nexit 3\n")
    line = _error_line(capsys, ["local"])
    assert "Azurite exited with code 3 before listening" in line
    assert "something broke" in line and "npm ci" in line


def test_local_when_azurite_cannot_run(no_azurite: Path, tmp_path: Path, capsys) -> None:
    _executable(tmp_path / "node_modules" / ".bin" / "azurite-blob", "", mode=0o644)
    line = _error_line(capsys, ["local"])
    assert "cannot run" in line and "npm ci" in line


@pytest.mark.parametrize(("argv", "fix"), [
    (["local", "--nodes", "0"], "pass --nodes 1 or more"),
    (["local", "--slots", "0"], "pass --slots 1 or more"),
    (["emulator", "--nodes", "-1"], "pass --nodes 0 or more"),
    (["emulator", "--slots", "0"], "pass --slots 1 or more"),
    (["emulator", "--port", "70000"], "--port 0 for a free one"),
])
def test_bad_numbers(argv: list[str], fix: str, capsys) -> None:
    assert fix in _error_line(capsys, argv)


def test_emulator_port_in_use(capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _error_line(capsys, ["emulator", "--port", str(port)])
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "pass another --port, or --port 0" in line


def test_emulator_host_not_of_this_machine(capsys) -> None:
    line = _error_line(capsys, ["emulator", "--host", "no-such-host.invalid"])
    assert "pass --host with an address of this machine" in line


def test_local_loose_reaches_the_stack(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    seen: dict[str, object] = {}

    class Stack:
        def __init__(self, **kwargs: object) -> None:
            seen.update(kwargs)

        def start(self) -> None:
            raise LocalStackError("stop here: fix it")

        def stop(self) -> None:
            seen["stopped"] = True

    monkeypatch.setattr(azure_batch_executor.local, "LocalStack", Stack)
    assert "stop here: fix it" in _error_line(capsys, ["local", "--loose", "--nodes", "3",
                                                       "--node-image", "bare"])
    assert seen == {"nodes": 3, "slots_per_node": 2, "loose": True, "node_image": "bare",
                    "allocation_delay": 0.0, "stopped": True}


@pytest.mark.parametrize("command", ["local", "emulator"])
def test_negative_allocation_delay_is_refused(command: str, capsys) -> None:
    line = _error_line(capsys, [command, "--allocation-delay", "-1"])
    assert "--allocation-delay -1.0 is not a delay: pass 0 or more seconds" in line


def test_usage_errors_are_one_line(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["local", "--nodes", "x"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "azure-batch-executor local: error: argument --nodes: invalid int value: 'x' "
        "(see `azure-batch-executor local --help`)"
    ]


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"azure-batch-executor {azure_batch_executor.__version__}\n"


def test_every_command_has_add_parser_and_run() -> None:
    assert set(cli.COMMANDS) == {"emulator", "local", "env", "dockerfile", "jobs", "status",
                                 "logs", "cleanup", "pools"}
    needs = {"env": ["-g", "rg"], "status": ["JOB"], "logs": ["JOB"]}
    for name, module in cli.COMMANDS.items():
        args = cli.build_parser().parse_args([name, *needs.get(name, [])])
        assert args.handler is module.run and callable(module.add_parser)


def test_module_entry_point_reports_without_traceback() -> None:
    done = subprocess.run([sys.executable, "-m", "azure_batch_executor.cli", "local", "--nodes",
                           "0"], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "azure-batch-executor local: error: --nodes 0 is too small: pass --nodes 1 or more "
        "(the nodes a pool may have)"
    ]
