"""`azure-batch-executor emulator`: prints the client settings, serves, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from azure_batch_executor import cli


def test_parser_knows_the_emulator_command() -> None:
    args = cli.build_parser().parse_args(["emulator", "--nodes", "3", "--slots", "8", "--loose"])
    assert (args.nodes, args.slots, args.loose, args.port) == (3, 8, True, 0)
    assert {"emulator", "env", "dockerfile"} <= set(cli.COMMANDS)
    assert callable(args.handler)


def test_emulator_command_serves_until_sigterm() -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "azure_batch_executor.cli", "emulator", "--nodes", "1"],
        stdout=subprocess.PIPE, text=True, env=env, cwd=Path(__file__).resolve().parents[3])
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        settings = dict(line.removeprefix("export ").split("=", 1) for line in lines)
        assert set(settings) == {"BATCH_ACCOUNT_URL", "BATCH_ACCOUNT_NAME", "BATCH_ACCOUNT_KEY"}
        client = BatchClient(settings["BATCH_ACCOUNT_URL"], AzureNamedKeyCredential(
            settings["BATCH_ACCOUNT_NAME"], settings["BATCH_ACCOUNT_KEY"]))
        assert list(client.list_pools()) == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
