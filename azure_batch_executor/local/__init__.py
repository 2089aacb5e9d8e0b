"""The local stack: Azurite (Blob storage) + our Batch emulator, on loopback.

Role: start and stop the two local services that stand in for Azure, and hand
out the settings a client needs to reach them. Used by tests, by `make demo`,
and by `AzureBatchExecutor` when no Batch account is configured.

- `Azurite` runs the npm package `azurite` (its blob service only) as a
  subprocess: in memory, telemetry off, on a free port. It is found in
  `node_modules/.bin` (of the current directory or the repository this package
  lives in), then on PATH; `AZURITE_BLOB_URL` names one already running instead.
- `LocalStack` starts Azurite and a `BatchEmulator` whose nodes run commands
  with the directory of the running interpreter first on PATH, so the nodes
  stand in for a worker image built from the client's own environment.
- `shared_local_stack()` returns one process-wide stack, started on first use
  and stopped when the interpreter exits. A child made by ``os.fork()`` uses its
  parent's stack (it only talks HTTP to it; the emulator's threads stay in the
  parent) and never stops it: the stack is stopped at exit only by the process
  that started it.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..emulator import BatchEmulator

log = logging.getLogger(__name__)

# Azurite's well-known development account (public, documented by Microsoft).
AZURITE_ACCOUNT_NAME = "devstoreaccount1"
AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_LISTENING = re.compile(r"successfully listens on (http://[0-9.]+:\d+)")
_START_TIMEOUT_S = 60.0


class LocalStackError(RuntimeError):
    """The local stack could not start; the message names the fix."""


def _loopback_no_proxy() -> None:
    """Keep proxy variables from capturing loopback traffic (SDKs honour NO_PROXY)."""
    for name in ("NO_PROXY", "no_proxy"):
        current = [p for p in os.environ.get(name, "").split(",") if p]
        for host in ("127.0.0.1", "localhost"):
            if host not in current:
                current.append(host)
        os.environ[name] = ",".join(current)


def _find_azurite(roots: Sequence[Path] | None = None, path: str | None = None) -> str:
    """Path of the `azurite-blob` executable, or a LocalStackError naming the fix.

    Looks in `<root>/node_modules/.bin` for each root (default: the current
    directory, then the repository holding this package), then on `path`.
    """
    if roots is None:
        roots = (Path.cwd(), Path(__file__).resolve().parents[2])
    for base in roots:
        candidate = base / "node_modules" / ".bin" / "azurite-blob"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("azurite-blob", path=path)
    if found:
        return found
    if shutil.which("node", path=path) is None:
        raise LocalStackError(
            "Node.js is not installed, and the local stack needs it for Azurite (the Azure "
            "Storage emulator). Install Node.js 20+, then run `make` (or `npm ci`) in the "
            "repository, or `npm install -g azurite`. Or set AZURITE_BLOB_URL to a running "
            "Azurite blob endpoint."
        )
    raise LocalStackError(
        "Azurite (the Azure Storage emulator) was not found in node_modules/.bin or on PATH. "
        "Run `make` (or `npm ci`) in the repository, or `npm install -g azurite`; or set "
        "AZURITE_BLOB_URL to a running Azurite blob endpoint."
    )


def _connection_string(blob_url: str) -> str:
    return (
        "DefaultEndpointsProtocol=http;"
        f"AccountName={AZURITE_ACCOUNT_NAME};"
        f"AccountKey={AZURITE_ACCOUNT_KEY};"
        f"BlobEndpoint={blob_url};"
    )


class Azurite:
    """Azurite's blob service as a subprocess (or an already running one).

    `start()` returns once it listens; `blob_url` is the account's blob endpoint
    (`http://127.0.0.1:PORT/devstoreaccount1`); `stop()` terminates and waits.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.account_name = AZURITE_ACCOUNT_NAME
        self.account_key = AZURITE_ACCOUNT_KEY
        self.blob_url = ""
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def connection_string(self) -> str:
        return _connection_string(self.blob_url)

    def start(self) -> Azurite:
        _loopback_no_proxy()
        external = os.environ.get("AZURITE_BLOB_URL")
        if external:
            self.blob_url = external.rstrip("/")
            if not self.blob_url.endswith("/" + AZURITE_ACCOUNT_NAME):
                self.blob_url += "/" + AZURITE_ACCOUNT_NAME
            log.info("using the Azurite named by AZURITE_BLOB_URL: %s", self.blob_url)
            return self
        argv = [
            _find_azurite(),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--blobHost", self.host,
            "--blobPort", str(self.port),
        ]
        self._proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(
            target=self._pump, args=(self._proc, lines), name="azurite-output", daemon=True
        )
        self._reader.start()
        seen: list[str] = []
        while True:
            try:
                line = lines.get(timeout=_START_TIMEOUT_S)
            except queue.Empty:
                self.stop()
                raise LocalStackError(
                    f"Azurite did not report listening within {_START_TIMEOUT_S:.0f} s; "
                    f"its output: {' | '.join(seen[-5:])}"
                ) from None
            if line is None:
                code = self._proc.wait()
                self._proc = None
                raise LocalStackError(
                    f"Azurite exited with code {code} before listening; its output: "
                    f"{' | '.join(seen[-5:])}. Reinstall it with `npm ci`."
                )
            seen.append(line.strip())
            match = _LISTENING.search(line)
            if match:
                self.blob_url = f"{match.group(1)}/{AZURITE_ACCOUNT_NAME}"
                log.debug("Azurite listens on %s", self.blob_url)
                return self

    @staticmethod
    def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        """Forward Azurite's output lines (needed at start, drained afterwards)."""
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalStack:
    """Azurite + the Batch emulator, with the settings a client needs.

    Attributes once started: `batch_account_url`, `batch_account_name`,
    `batch_account_key`, `storage_connection_string`, `emulator`, `azurite`,
    `nodes`, `slots_per_node`.
    """

    def __init__(self, nodes: int = 2, slots_per_node: int = 2, *, loose: bool = False) -> None:
        if nodes < 1 or slots_per_node < 1:
            raise ValueError("LocalStack needs nodes >= 1 and slots_per_node >= 1")
        self.nodes = nodes
        self.slots_per_node = slots_per_node
        self.loose = loose
        self.azurite = Azurite()
        self.emulator: BatchEmulator | None = None

    def start(self) -> LocalStack:
        from ..emulator import BatchEmulator

        self.azurite.start()
        try:
            self.emulator = BatchEmulator(
                nodes=self.nodes,
                slots_per_node=self.slots_per_node,
                loose=self.loose,
                path_prefix=(str(Path(sys.executable).parent),),
            ).start()
        except BaseException:
            self.azurite.stop()
            raise
        return self

    def stop(self) -> None:
        emulator, self.emulator = self.emulator, None
        try:
            if emulator is not None:
                emulator.stop()
        finally:
            self.azurite.stop()

    def _running(self) -> BatchEmulator:
        if self.emulator is None:
            raise LocalStackError("the local stack is not started: call start() first")
        return self.emulator

    @property
    def batch_account_url(self) -> str:
        return self._running().url

    @property
    def batch_account_name(self) -> str:
        return self._running().account_name

    @property
    def batch_account_key(self) -> str:
        return self._running().account_key

    @property
    def storage_connection_string(self) -> str:
        return self.azurite.connection_string

    def __repr__(self) -> str:  # no keys in reprs
        state = "running" if self.emulator is not None else "stopped"
        return f"LocalStack(nodes={self.nodes}, slots_per_node={self.slots_per_node}, {state})"

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_shared: LocalStack | None = None
_shared_lock = threading.Lock()


def _new_lock_after_fork() -> None:  # another thread may have held the parent's at the fork
    global _shared_lock
    _shared_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_after_fork)


def _stop_at_exit(stack: LocalStack, owner: int) -> None:
    """Stop `stack` at exit in the process that started it; a forked child exiting must not
    stop its parent's Azurite, or wait for the emulator's HTTP thread (not in the child)."""
    if os.getpid() == owner:
        stack.stop()


def shared_local_stack() -> LocalStack:
    """The process-wide local stack, started on first use, stopped at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            stack = LocalStack().start()
            atexit.register(_stop_at_exit, stack, os.getpid())
            log.info(
                "No Azure Batch account configured (BATCH_ACCOUNT_URL is unset): running on the "
                "local stack (Batch emulator %s + Azurite %s).",
                stack.batch_account_url,
                stack.azurite.blob_url,
            )
            _shared = stack
        return _shared
