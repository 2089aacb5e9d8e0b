"""The local stack: Azurite + our Batch emulator, and the process-wide one.

Role: `LocalStack` starts and stops the two local services that stand in for
Azure (Azurite from `.azurite`, the Batch emulator) and hands out the settings
a client needs to reach them. Its `BatchEmulator` runs commands with the
directory of the running interpreter first on PATH, so the nodes stand in for a
worker image built from the client's own environment.

`shared_local_stack()` returns one process-wide stack, started on first use
and stopped when the interpreter exits. A child made by ``os.fork()`` uses its
parent's stack (it only talks HTTP to it; the emulator's threads stay in the
parent) and never stops it: the stack is stopped at exit only by the process
that started it. The lock guarding it is replaced in a forked child, since
another thread of the parent may have held it at the fork.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .azurite import Azurite, LocalStackError

if TYPE_CHECKING:
    from ..emulator import BatchEmulator

log = logging.getLogger(__name__)


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
