"""Fixtures for the task runner against a real Azurite: the server, containers, SAS URLs.

The `Azurite` handle lives in `runner_azurite_kit.py` (a unique module name).
`azurite` (session): starts `node_modules/.bin/azurite-blob` in memory on a free
port, reads the port from its "successfully listens on" line, terminates it at
the end. The tests use azure-storage-blob only to arrange and inspect blobs and
to sign SAS tokens; the runner itself speaks plain HTTP.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from runner_azurite_kit import ACCOUNT, KEY, Azurite

from azure_batch_executor.emulator.runner import RunOutcome, RunSpec, TaskRunner

ROOT = Path(__file__).resolve().parents[3]
AZURITE = ROOT / "node_modules" / ".bin" / "azurite-blob"
LISTENING = re.compile(r"successfully listens on (http://127\.0\.0\.1:\d+)")
START_TIMEOUT = 30.0
WAIT = 30.0


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    if not AZURITE.exists():
        pytest.skip(f"Azurite is not installed at {AZURITE}; run `npm ci` in {ROOT}")
    blob = pytest.importorskip("azure.storage.blob")
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    workdir = tmp_path_factory.mktemp("azurite")
    proc = subprocess.Popen(
        [
            str(AZURITE),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
        ],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    found: list[str] = []
    seen: list[str] = []
    ready = threading.Event()

    def read_output() -> None:  # keeps draining so Azurite never blocks on a full pipe
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            match = LISTENING.search(line)
            if match and not found:
                found.append(match.group(1))
                ready.set()
        ready.set()  # EOF: Azurite exited

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    try:
        if not ready.wait(START_TIMEOUT) or not found:
            raise RuntimeError(f"Azurite did not start: {''.join(seen)!r}")
        endpoint = f"{found[0]}/{ACCOUNT}"
        conn = (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint={endpoint};"
        )
        yield Azurite(endpoint, blob.BlobServiceClient.from_connection_string(conn))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)


@pytest.fixture
def runner() -> Iterator[TaskRunner]:
    r = TaskRunner(http_timeout=10.0)
    yield r
    r.stop()


@pytest.fixture
def run(runner: TaskRunner, tmp_path: Path) -> Callable[..., RunOutcome]:
    """Run one attempt in tmp_path/task and return its outcome."""

    def go(command_line: str, **kw: Any) -> RunOutcome:
        kw.setdefault("run_id", f"run-{uuid.uuid4().hex[:8]}")
        kw.setdefault("task_dir", tmp_path / "task")
        kw.setdefault("env", {"PATH": os.environ.get("PATH", os.defpath)})
        done = threading.Event()
        box: list[RunOutcome] = []

        def on_done(outcome: RunOutcome) -> None:
            box.append(outcome)
            done.set()

        runner.start(RunSpec(command_line=command_line, **kw), on_done)
        if not done.wait(WAIT):
            raise AssertionError(f"no outcome within {WAIT} s")
        return box[0]

    return go
