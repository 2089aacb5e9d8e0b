"""`StorageProxy`: a loopback HTTP proxy in front of Azurite that can throttle and fail.

The Batch emulator throttles Batch requests (`BatchEmulator.throttle`); Azurite has no
such switch. This proxy forwards every request to Azurite unchanged, except while a
throttle set by `throttle(...)` lasts: then the requests whose method matches and whose
path contains `path_contains` get Blob's own throttling reply (503 `ServerBusy` or 500
`OperationTimedOut` of https://learn.microsoft.com/rest/api/storageservices/blob-service-error-codes,
or 429), with `Retry-After` only when asked, and are counted in `refused`. Point a client
at it with `connection_string(...)`; SAS URLs built from it lead the nodes through it too.

`fault(kind, ...)` arms a counted fault for the next `count` requests whose method matches
and whose path (query included) contains `path_contains`; the faults armed first match
first, and each counts its `hits`. The kinds (`KINDS`):

    status          reply `status` with error `code`, the request not forwarded
    reset-request   read part of the request body, then reset the connection (TCP RST)
    forward         forward as usual (with `before`: after calling `before(path)`, e.g. a
                    test deleting the blob the request asks for)
    status-after    forward, so the service applies the request, then reply `status`
                    instead of the service's reply ("timed out after it was applied")
    reset-after     forward, then reset the connection without a byte of the reply
    reset-response  forward, then send the reply's status, headers and half its body, and
                    reset the connection (a download cut mid-body)
    truncate-response  the same, but the connection is closed cleanly (FIN): a body shorter
                    than its Content-Length, which only a client that checks it notices

`after(path)`, if given, is called once the service answered, before the reply (of any
kind) goes back: a test may hold a reply there until something happened (a task ended).

An error body is Blob's XML, or the Batch service's JSON when the request accepts JSON, so
the same proxy stands in front of the Batch emulator (`StorageProxy(emulator_url)`: `url`
is then the account URL to give a client; SharedKey signatures do not cover the host).

start() returns once it listens (port 0: any free port); stop() joins its thread.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "trailer",
        "upgrade"}
_CODES = {503: "ServerBusy", 500: "OperationTimedOut", 429: "ServerBusy"}
KINDS = ("status", "reset-request", "forward", "status-after", "reset-after", "reset-response",
         "truncate-response")


@dataclass
class ProxyFault:
    """A fault armed by `StorageProxy.fault` (`remaining` uses left, `hits` so far)."""

    kind: str
    method: str
    path_contains: str
    remaining: int
    status: int = 500
    code: str = "InternalError"
    before: Callable[[str], object] | None = None
    after: Callable[[str], object] | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.remaining > 0 and self.method in ("*", method)
                and self.path_contains in path)


class StorageProxy:
    def __init__(self, blob_url: str) -> None:
        target = urlsplit(blob_url)
        self.target = (target.hostname or "127.0.0.1", target.port or 80)
        self.account_path = target.path  # /devstoreaccount1
        self.refused = 0
        self.forwarded = 0
        self.exposed = 0  # requests `random_faults` applied to
        self._until = 0.0
        self._status = 503
        self._retry_after: float | None = None
        self._method = "GET"
        self._path_contains = ""
        self._faults: list[ProxyFault] = []
        self._rate = 0.0  # `random_faults`: this share of requests refused, at random
        self._rng = random.Random(0)
        self._agent = ""
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control
    def start(self) -> StorageProxy:
        proxy = self

        class Handler(_Forward):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="storage-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(10)
            self._server = None

    @property
    def blob_url(self) -> str:
        assert self._server is not None, "start() the proxy first"
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.account_path}"

    url = blob_url  # in front of another service (the Batch emulator): its URL

    def connection_string(self, original: str) -> str:
        """`original` (Azurite's) with its BlobEndpoint pointing at this proxy."""
        return re.sub(r"BlobEndpoint=[^;]*", f"BlobEndpoint={self.blob_url}", original)

    def throttle(self, seconds: float, *, status: int = 503, retry_after: float | None = None,
                 method: str = "GET", path_contains: str = "") -> None:
        with self._lock:
            self._until = time.monotonic() + seconds
            self._status, self._retry_after = status, retry_after
            self._method, self._path_contains = method.upper(), path_contains

    def fault(self, kind: str, method: str = "*", path_contains: str = "", *, count: int = 1,
              status: int = 500, code: str = "InternalError",
              before: Callable[[str], object] | None = None,
              after: Callable[[str], object] | None = None) -> ProxyFault:
        """Arm a fault (see the module's docstring) for the next `count` matching requests;
        returns it (its `hits` count the requests it took)."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {KINDS}")
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        armed = ProxyFault(kind, method.upper(), path_contains, count, status, code, before,
                           after)
        with self._lock:
            self._faults.append(armed)
        return armed

    def random_faults(self, rate: float, *, status: int = 503, seed: int = 0,
                      agent: str = "") -> None:
        """Refuse each request whose User-Agent contains `agent` with probability `rate`
        (`status`, Blob's or Batch's throttling code, not forwarded), besides any throttle
        or armed fault: the soak benchmark's transient faults (benchmarks/bench_soak.py)."""
        with self._lock:
            self._rate, self._status, self._rng = rate, status, random.Random(seed)
            self._agent = agent
            self._retry_after = None

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def take_fault(self, method: str, path: str) -> ProxyFault | None:
        """The armed fault for this request, if any (consumes one use)."""
        with self._lock:
            for armed in self._faults:
                if armed.matches(method, path):
                    armed.remaining -= 1
                    armed.hits += 1
                    return armed
        return None

    def refuses(self, method: str, path: str, agent: str = "") -> bool:
        with self._lock:
            exposed = self._rate > 0 and self._agent in agent  # to `random_faults`
            self.exposed += exposed
            hit = (time.monotonic() < self._until and method == self._method
                   and self._path_contains in path) or (
                exposed and self._rng.random() < self._rate)
            if hit:
                self.refused += 1
            else:
                self.forwarded += 1
            return hit


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: StorageProxy

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _error(self, status: int, code: str, message: str,
               retry_after: float | None = None) -> None:
        """An error reply in the service's shape: Batch's JSON when the client accepts
        JSON, else Blob's XML."""
        if "json" in self.headers.get("Accept", "").lower():
            reply = json.dumps({"code": code, "message": {"lang": "en-US", "value": message}}
                               ).encode()
            content_type = "application/json;odata=minimalmetadata"
        else:
            reply = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code>'
                     f"<Message>{message}</Message></Error>").encode()
            content_type = "application/xml"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("x-ms-error-code", code)
        if retry_after is not None:
            self.send_header("Retry-After", f"{retry_after:g}")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply)

    def _reset(self) -> None:
        """Close the connection with a TCP RST (SO_LINGER 0), whatever is left unread; what
        was written before reaches the client first (an RST would discard it)."""
        self.wfile.flush()
        _drain(self.connection)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # the socket's last reference: close() below really closes it
        self.connection.close()
        self.close_connection = True

    def _handle(self) -> None:
        owner = self.owner
        armed = owner.take_fault(self.command, self.path)
        if armed is not None and armed.kind == "reset-request":
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length // 2)  # part of the body, the rest left unread
            self._reset()
            return
        body = self._body()
        if armed is not None and armed.kind == "status":
            self._error(armed.status, armed.code, "injected by the test's proxy")
            return
        if owner.refuses(self.command, self.path, self.headers.get("User-Agent", "")):
            self._error(owner._status, _CODES[owner._status],
                        "throttled by the test's storage proxy", owner._retry_after)
            return
        if armed is not None and armed.before is not None:
            armed.before(self.path)
        upstream = http.client.HTTPConnection(*owner.target, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            sized = bool(body) or "Content-Length" in self.headers
            if sized:  # none added where the client sent none: SharedKey signs it (Batch)
                headers["Content-Length"] = str(len(body))
            upstream.request(self.command, self.path, body=body if sized else None,
                             headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
        finally:
            upstream.close()
        if armed is not None and armed.after is not None:
            armed.after(self.path)
        kind = armed.kind if armed is not None else "forward"
        if kind == "status-after":
            assert armed is not None
            self._error(armed.status, armed.code, "injected by the test's proxy after the "
                        f"service answered {answer.status}")
            return
        if kind == "reset-after":
            self._reset()
            return
        self.send_response(answer.status, answer.reason)  # adds its own Server, Date
        for key, value in answer.getheaders():
            if key.lower() not in _HOP | {"content-length", "server", "date"}:
                self.send_header(key, value)
        length = answer.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if kind in ("reset-response", "truncate-response"):
            self.wfile.write(data[:len(data) // 2])
            if kind == "reset-response":
                self._reset()
            self.close_connection = True  # truncate: the server closes it cleanly
            return
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_OPTIONS = _handle


def _drain(sock: socket.socket, timeout: float = 2.0) -> None:
    """Wait until the peer has acknowledged every byte sent on `sock` (Linux: SIOCOUTQ;
    elsewhere a short pause), so that a reset that follows does not discard them."""
    try:
        import fcntl
        import termios
    except ImportError:  # not Linux-like: a pause is the best we can do
        threading.Event().wait(0.1)
        return
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while time.monotonic() < deadline:
        try:
            unsent = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ,
                                                    b"\0\0\0\0"))[0]
        except OSError:
            return
        if unsent == 0:
            return
        pause.wait(0.005)


def proxied_executor_class(blob: StorageProxy, batch: StorageProxy | None = None) -> type:
    """An `AzureBatchExecutor` subclass whose Blob requests go through `blob` (the nodes'
    too: their SAS URLs name it) and, if given, its Batch requests through `batch`."""
    import dataclasses

    from azure_batch_executor import AzureBatchExecutor
    from azure_batch_executor.engine import accounts

    def connect(settings: Any, stats: Any, retry: Any) -> Any:
        assert settings.storage_connection_string is not None
        proxied = dataclasses.replace(
            settings, storage_connection_string=blob.connection_string(
                settings.storage_connection_string))
        if batch is not None:
            proxied = dataclasses.replace(proxied, batch_account_url=batch.url)
        return accounts.connect(proxied, stats, retry)

    return type("ProxiedExecutor", (AzureBatchExecutor,), {"connect": staticmethod(connect)})
