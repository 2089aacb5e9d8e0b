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
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

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
        return (f"LocalStack(nodes={self.nodes}, slots_per_node={self.slots_per_node}, "
                f"node_image={self.node_image!r}, {state})")

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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
