"""The local stack: Azurite + our Batch emulator, and the process-wide one.

Role: `LocalStack` starts and stops the two local services that stand in for
Azure (Azurite from `.azurite`, the Batch emulator) and hands out the settings
a client needs to reach them. `node_image` chooses what its nodes run
(`images.py`): ``client`` (the default) puts the directory of the running
interpreter first on PATH, so the nodes stand in for a worker image built from
the client's own environment; ``bare`` gives them a stock image's python3 (the
host's interpreter, no third-party packages). `allocation_delay` is how long a
node boots (seconds in `starting`; 0 by default).

`shared_local_stack()` returns one process-wide stack, started on first use
and stopped when the interpreter exits. A child made by ``os.fork()`` uses its
parent's stack (it only talks HTTP to it; the emulator's threads stay in the
parent) and never stops it: the stack is stopped at exit only by the process
that started it. The lock guarding it is replaced in a forked child, since
another thread of the parent may have held it at the fork.

A running stack is discoverable by other processes (the `azure-batch-executor` commands
run in another shell): `start` writes a discovery file, JSON with the settings a client
needs and the owner's pid, readable by its user only (0600: the emulator's random key),
in `discovery_dir()`; `stop` removes it. `running_stacks()` reads those of live
processes whose emulator answers, newest first, and removes those of dead processes.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import json
import logging
import os
import socket
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .azurite import Azurite, LocalStackError
from .images import NODE_IMAGES, image_paths

if TYPE_CHECKING:
    from ..emulator import BatchEmulator

log = logging.getLogger(__name__)


class LocalStack:
    """Azurite + the Batch emulator, with the settings a client needs.

    Attributes once started: `batch_account_url`, `batch_account_name`,
    `batch_account_key`, `storage_connection_string`, `emulator`, `azurite`,
    `nodes`, `slots_per_node`, `node_image`, `allocation_delay`. `emulator_options` are
    more `BatchEmulator` keyword arguments, such as what a real account meets
    (`max_active_jobs`, `pool_quota`, `core_quota`, `low_priority_core_quota`,
    `autoscale_min_interval`); the running emulator scripts the rest (`stack.emulator`).
    """

    def __init__(self, nodes: int = 2, slots_per_node: int = 2, *, loose: bool = False,
                 node_image: str = "client", allocation_delay: float = 0.0,
                 emulator_options: Mapping[str, Any] | None = None) -> None:
        if nodes < 1 or slots_per_node < 1:
            raise ValueError("LocalStack needs nodes >= 1 and slots_per_node >= 1")
        if node_image not in NODE_IMAGES:
            raise ValueError(f"LocalStack(node_image={node_image!r}): pass one of "
                             f"{', '.join(repr(i) for i in NODE_IMAGES)}")
        if allocation_delay < 0:
            raise ValueError("LocalStack needs allocation_delay >= 0 (seconds)")
        self.nodes = nodes
        self.slots_per_node = slots_per_node
        self.loose = loose
        self.node_image = node_image
        self.allocation_delay = allocation_delay
        self.emulator_options = dict(emulator_options or {})
        self.azurite = Azurite()
        self.emulator: BatchEmulator | None = None
        self._discovery: Path | None = None

    def start(self) -> LocalStack:
        from ..emulator import BatchEmulator

        self.azurite.start()
        try:
            path_prefix, container_path_prefix = image_paths(self.node_image)
            self.emulator = BatchEmulator(
                nodes=self.nodes,
                slots_per_node=self.slots_per_node,
                loose=self.loose,
                path_prefix=path_prefix,
                container_path_prefix=container_path_prefix,
                allocation_delay=self.allocation_delay,
                **self.emulator_options,
            ).start()
        except BaseException:
            self.azurite.stop()
            raise
        self._discovery = write_discovery(self.discovery_record())
        return self

    def discovery_record(self) -> dict[str, Any]:
        """What another process needs to use this running stack (keys included)."""
        return {
            "pid": os.getpid(),
            "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
            "batch_account_url": self.batch_account_url,
            "batch_account_name": self.batch_account_name,
            "batch_account_key": self.batch_account_key,
            "storage_connection_string": self.storage_connection_string,
            "blob_url": self.azurite.blob_url,
            "nodes": self.nodes,
            "slots_per_node": self.slots_per_node,
            "node_image": self.node_image,
        }

    def stop(self) -> None:
        emulator, self.emulator = self.emulator, None
        discovery, self._discovery = self._discovery, None
        if discovery is not None and discovery.name.startswith(f"{os.getpid()}-"):
            with contextlib.suppress(OSError):  # a forked child leaves its parent's file
                discovery.unlink()
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
        return (f"LocalStack(nodes={self.nodes}, slots_per_node={self.slots_per_node}, "
                f"node_image={self.node_image!r}, {state})")

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


ENV_DISCOVERY_DIR = "AZURE_BATCH_EXECUTOR_LOCAL_STACKS"  # overrides discovery_dir()


def discovery_dir() -> Path:
    """Where running stacks leave their discovery files: ``$AZURE_BATCH_EXECUTOR_LOCAL_STACKS``
    if set, else ``azure-batch-executor/local-stacks`` in ``$XDG_RUNTIME_DIR`` (private to
    the user, emptied at logout), else in ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    override = os.environ.get(ENV_DISCOVERY_DIR)
    if override:
        return Path(override)
    base = os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return root / "azure-batch-executor" / "local-stacks"


def write_discovery(record: Mapping[str, Any], directory: Path | None = None) -> Path | None:
    """Write `record` as ``<pid>-<emulator port>.json`` (mode 0600, in a 0700 directory),
    atomically; its path, or None when it could not be written (logged: the stack runs
    anyway, it is only not discoverable)."""
    directory = directory or discovery_dir()
    port = urlsplit(str(record["batch_account_url"])).port or 0
    path = directory / f"{record['pid']}-{port}.json"
    partial = path.with_suffix(".tmp")
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as stream:
            json.dump(dict(record), stream)
        os.replace(partial, path)
    except OSError as exc:
        log.debug("the local stack is not discoverable: cannot write %s: %s", path, exc)
        with contextlib.suppress(OSError):
            partial.unlink()
        return None
    return path


def running_stacks(directory: Path | None = None) -> list[dict[str, Any]]:
    """The discovery records of the local stacks running now, newest first: their process
    is alive and their emulator accepts a connection. Files of dead processes are
    removed; unreadable ones skipped."""
    directory = directory or discovery_dir()
    found = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            record = json.loads(path.read_text())
            pid = int(record["pid"])
            url = str(record["batch_account_url"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not _alive(pid):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        if _answers(url):
            found.append(record)
    return sorted(found, key=lambda r: str(r.get("started", "")), reverse=True)


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate it there: the connection decides
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _answers(url: str, timeout: float = 1.0) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80),
                                      timeout=timeout):
            return True
    except OSError:
        return False


ENV_NODE_IMAGE = "AZURE_BATCH_EXECUTOR_LOCAL_NODE_IMAGE"  # the shared stack's nodes
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
    """The process-wide local stack, started on first use, stopped at exit.

    Its nodes are bare (python3 and nothing else, as a stock Batch image), so an executor
    on it prepares its environment as on Azure; ``AZURE_BATCH_EXECUTOR_LOCAL_NODE_IMAGE=
    client`` gives nodes that stand in for an image of the client's environment instead
    (faster: nothing to prepare; the test suites use it)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            image = os.environ.get(ENV_NODE_IMAGE) or "bare"
            if image not in NODE_IMAGES:
                raise LocalStackError(f"{ENV_NODE_IMAGE}={image!r}: use one of "
                                      f"{', '.join(NODE_IMAGES)}")
            stack = LocalStack(node_image=image).start()
            atexit.register(_stop_at_exit, stack, os.getpid())
            log.info(
                "No Azure Batch account configured (BATCH_ACCOUNT_URL is unset): running on the "
                "local stack (Batch emulator %s + Azurite %s).",
                stack.batch_account_url,
                stack.azurite.blob_url,
            )
            _shared = stack
        return _shared
