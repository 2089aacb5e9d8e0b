"""`BatchEmulator`: a threaded HTTP server speaking the Batch REST subset on loopback.

Role: wire the layers together (backend + scheduler + runner + app) and serve them with
`http.server` (HTTP/1.1 keep-alive, one thread per connection). `start()` returns once
the socket is listening (port 0 picks a free port); `stop()` stops the server, closes
open connections, joins threads, kills task processes through `runner.stop()` and
removes the data directory; it is idempotent. The admin operations of `admin` are also
methods here, for tests in the same process.

Imports: the standard library and sibling emulator modules.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import logging
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .account import AccountControls
from .admin import AdminApi, FaultInjector, RequestCounter
from .app import App
from .models import BatchBackend, Settings
from .models.core import latency_range
from .models.runtime import base_environment
from .responses import BatchResponses
from .scheduler import Scheduler
from .throttling import Throttler

log = logging.getLogger("azure_batch_executor.emulator")

MAX_READ = 32 * 1024 * 1024  # larger bodies are refused without reading them


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 300  # seconds a connection may sit idle or half-sent before it is closed
    # TCP_NODELAY: without it the body, written after the headers, waits for the client's
    # delayed ACK of the headers (Nagle), ~40 ms per response on a keep-alive connection
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _read_body(self) -> tuple[bytes, bool]:
        """The request body, and whether it was too large to read at all."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks), False
                total += size
                if total > MAX_READ:
                    self.close_connection = True
                    return b"", True
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_READ:
            self.close_connection = True
            return b"", length > MAX_READ
        return (self.rfile.read(length) if length else b""), False

    def _serve(self) -> None:
        body, oversized = self._read_body()
        resp = self.server.app.handle(self.command, self.path, list(self.headers.items()), body,
                                      f"{self.server.host}:{self.server.port}",
                                      oversized=oversized)
        self.send_response_only(resp.status)
        has_length = False
        for name, value in resp.headers.items():
            self.send_header(name, value)
            has_length = has_length or name.lower() == "content-length"
        if not has_length:
            self.send_header("Content-Length", str(len(resp.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and resp.status not in (204, 304) and resp.body:
            self.wfile.write(resp.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True  # server_close() joins the connection threads
    request_queue_size = 128  # listen backlog: the default 5 resets bursts of 16+ clients

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)
        host = self.server_address[0]
        self.host = host.decode() if isinstance(host, bytes) else str(host)
        self.port = int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that vanished mid-response; request errors are answered by App
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._conn_lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def close_connections(self) -> None:
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):  # already closed by the peer
                conn.shutdown(socket.SHUT_RDWR)


def tune_gc_for_serving() -> None:
    """For a process that does little but serve the emulator (the ``emulator`` and ``local``
    commands, a benchmark's child): what is loaded so far is frozen out of collections, and
    the young generation may grow further between them. A task add allocates dozens of
    containers per task, and with the default thresholds full collections over a growing task
    store made each add slower than the last (measured: 10,000 tasks accepted in 0.5 s, then
    0.6, 0.75 on the same process; flat at 0.5 s with this). Not for a shared process: the
    in-process local stack leaves the user's collector alone."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


class BatchEmulator(AccountControls):
    """An Azure Batch account on loopback, driven by the official SDK over real HTTP.

    `nodes` is the per-pool node quota and `slots_per_node` the largest `taskSlotsPerNode`
    a pool may ask for: together they describe the local machine. `loose=True` stores and
    echoes properties and query options the emulator does not emulate instead of
    refusing them. `path_prefix` entries go in front of `PATH` for task processes (the
    node image); `container_path_prefix` instead of them for commands with
    `containerSettings` (the container image; default: `path_prefix`).
    `realistic_casing=True` emits the service's PascalCase enum spellings.
    Keyword-only tuning: `runner` (a `TaskRunner`-compatible object), `transition_delay`
    (seconds each transient state lasts), `allocation_delay` (seconds a node spends
    booting in `starting`, on top of it; default 0), `page_size` (default `maxresults`),
    `requeue_counts_preemption`, `max_active_jobs`, `account_name`, `account_key`,
    `scheduling_latency` ((min, max) seconds a task waits after entering `active`, added
    or requeued, before it may start: uniform draws, reproducible with `scheduling_seed`;
    default (0, 0): none),
    `data_dir` (kept on stop when given), `auto_storage_container_url` (maps an
    `autoStorageContainerName` to a container URL with a read+list SAS).
    What real accounts meet (all off by default; `AccountControls` scripts them at run
    time): `max_active_jobs`, `pool_quota`, `core_quota` (dedicated cores),
    `low_priority_core_quota`; `autoscale_min_interval` (seconds that stand for the
    service's 5-minute minimum: all autoscale time is scaled by it; None: real time).
    """

    def __init__(self, nodes: int = 2, slots_per_node: int = 2, loose: bool = False,
                 host: str = "127.0.0.1", port: int = 0, path_prefix: Sequence[str] = (),
                 realistic_casing: bool = False, *, runner: Any = None,
                 transition_delay: float = 0.05, allocation_delay: float = 0.0,
                 container_path_prefix: Sequence[str] | None = None, page_size: int = 1000,
                 requeue_counts_preemption: bool = True, max_active_jobs: int | None = None,
                 account_name: str = "devbatch", account_key: str | None = None,
                 data_dir: str | os.PathLike[str] | None = None,
                 auto_storage_container_url: Callable[[str], str] | None = None,
                 pool_quota: int | None = None, core_quota: int | None = None,
                 low_priority_core_quota: int | None = None,
                 autoscale_min_interval: float | None = None,
                 scheduling_latency: tuple[float, float] = (0.0, 0.0),
                 scheduling_seed: int | None = None) -> None:
        if nodes < 0 or slots_per_node < 1:
            raise ValueError("nodes must be >= 0 and slots_per_node >= 1")
        if not 1 <= page_size <= 1000:
            raise ValueError("page_size must be between 1 and 1000")
        if allocation_delay < 0:
            raise ValueError("allocation_delay must be >= 0 seconds")
        latency = latency_range(scheduling_latency)
        if scheduling_seed is not None and (not isinstance(scheduling_seed, int)
                                            or isinstance(scheduling_seed, bool)):
            raise ValueError(f"scheduling_seed must be an int or None, got {scheduling_seed!r}")
        self.nodes, self.slots_per_node, self.loose = nodes, slots_per_node, loose
        self.host, self.port = host, port
        self.path_prefix = tuple(str(p) for p in path_prefix)
        self.container_path_prefix = (None if container_path_prefix is None
                                      else tuple(str(p) for p in container_path_prefix))
        self.realistic_casing = realistic_casing
        self.account_name = account_name
        self.account_key = account_key or base64.b64encode(os.urandom(64)).decode("ascii")
        base64.b64decode(self.account_key, validate=True)
        self._runner = runner
        self._auto_storage = auto_storage_container_url
        self._tuning = dict(transition_delay=transition_delay,
                            allocation_delay=allocation_delay, page_size=page_size,
                            requeue_counts_preemption=requeue_counts_preemption,
                            max_active_jobs=max_active_jobs,
                            scheduling_seed=scheduling_seed)
        self._data_dir_arg = data_dir
        self._faults = FaultInjector()
        self._counter = RequestCounter()
        self._throttler = Throttler()
        for name, quota in (("max_active_jobs", max_active_jobs), ("pool_quota", pool_quota),
                            ("core_quota", core_quota),
                            ("low_priority_core_quota", low_priority_core_quota)):
            if quota is not None and quota < 0:
                raise ValueError(f"{name} must be >= 0 or None")
        if autoscale_min_interval is not None and not autoscale_min_interval > 0:
            raise ValueError("autoscale_min_interval must be > 0 seconds or None")
        self._account_defaults = dict(
            max_active_jobs=max_active_jobs, pool_quota=pool_quota, core_quota=core_quota,
            low_priority_core_quota=low_priority_core_quota,
            autoscale_min_interval=autoscale_min_interval, scheduling_latency=latency,
            scheduling_seed=scheduling_seed)
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._scheduler: Scheduler | None = None
        self._url: str | None = None
        self.data_dir: Path | None = None
        self.backend: BatchBackend | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> BatchEmulator:
        with self._lock:
            if self._server is not None:
                return self
            if self._data_dir_arg is None:
                self.data_dir = Path(tempfile.mkdtemp(prefix="batch-emulator-"))
            else:
                self.data_dir = Path(self._data_dir_arg)
                self.data_dir.mkdir(parents=True, exist_ok=True)
            settings = Settings(
                account_name=self.account_name, data_dir=self.data_dir, node_quota=self.nodes,
                max_slots_per_node=self.slots_per_node, loose=self.loose,
                realistic_casing=self.realistic_casing,
                base_env=base_environment(self.path_prefix),
                container_base_env=(None if self.container_path_prefix is None
                                    else base_environment(self.container_path_prefix)),
                auto_storage=self._auto_storage is not None, **self._tuning)  # type: ignore[arg-type]
            self.backend = BatchBackend(settings)
            self._reset_account()  # quotas and autoscale speed from the arguments
            if self._runner is None:
                from .runner import TaskRunner

                self._runner = TaskRunner(auto_storage_container_url=self._auto_storage)
            self._scheduler = Scheduler(self.backend, self._runner)
            app = App(BatchResponses(self.backend, settings), AdminApi(self),
                      account_name=self.account_name, account_key=self.account_key,
                      loose=self.loose, faults=self._faults, counter=self._counter,
                      throttler=self._throttler)
            self._server = _Server((self.host, self.port), app)
            host = self._server.host
            self._url = f"http://{host}:{self._server.port}"
            settings.account_url = self._url
            self._scheduler.start()
            self._thread = threading.Thread(target=self._server.serve_forever,
                                            kwargs={"poll_interval": 0.1},
                                            name="batch-emulator-http", daemon=True)
            self._thread.start()
            return self

    def stop(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            if server is None:
                return
            server.shutdown()
            server.close_connections()
            server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=10)
                self._thread = None
            if self._scheduler is not None:
                self._scheduler.stop()
            try:
                if self._runner is not None:
                    self._runner.stop()
            finally:
                if self._data_dir_arg is None and self.data_dir is not None:
                    shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> BatchEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the emulator is not started: call start() first")
        return self._url

    @property
    def scheduler(self) -> Scheduler:
        if self._scheduler is None:
            raise RuntimeError("the emulator is not started: call start() first")
        return self._scheduler

    def _backend(self) -> BatchBackend:
        if self.backend is None:
            raise RuntimeError("the emulator is not started: call start() first")
        return self.backend

    # --- admin ----------------------------------------------------------------------------

    def preempt_node(self, pool_id: str, node_id: str) -> None:
        """Node -> preempted; its running tasks go back to active (requeued); it returns."""
        backend = self._backend()
        with backend.op():
            backend.preempt_node(pool_id, node_id)

    def kill_task(self, job_id: str, task_id: str) -> bool:
        """SIGKILL a running task's process (the attempt ends like a non-zero exit)."""
        backend = self._backend()
        with backend.op(wake=False):
            run_id = backend.kill_task_run(job_id, task_id)
        return bool(run_id is not None and self._runner.kill(run_id))

    def inject_faults(self, method: str, path_contains: str, status: int, code: str,
                      count: int = 1, retry_after: float | None = None) -> None:
        """The next `count` requests matching METHOD and a path substring get this error."""
        self._faults.add(method, path_contains, status, code, count, retry_after)

    def clear_faults(self) -> None:
        self._faults.clear()

    def reset(self) -> None:
        """Drop all pools, jobs, tasks and pending faults; kill task processes. Throttling
        stops; quotas and the autoscale speed are as the emulator was started."""
        self._faults.clear()
        self._reset_account()
        backend = self._backend()
        with backend.op():
            backend.reset()

    def request_counts(self) -> dict[tuple[str, str], int]:
        """Requests served so far per (method, route name), e.g. ("GET", "list_tasks")."""
        return self._counter.snapshot()

    def reset_request_counts(self) -> None:
        self._counter.reset()

    def info(self) -> dict[str, Any]:
        return {"url": self.url, "accountName": self.account_name, "nodes": self.nodes,
                "slotsPerNode": self.slots_per_node, "loose": self.loose,
                "realisticCasing": self.realistic_casing}

    def __repr__(self) -> str:  # never show the key
        state = self._url or "stopped"
        return f"BatchEmulator(nodes={self.nodes}, slots_per_node={self.slots_per_node}, {state})"
