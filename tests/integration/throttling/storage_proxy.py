"""`StorageProxy`: a loopback HTTP proxy in front of Azurite that can throttle.

The Batch emulator throttles Batch requests (`BatchEmulator.throttle`); Azurite has no
such switch. This proxy forwards every request to Azurite unchanged, except while a
throttle set by `throttle(...)` lasts: then the requests whose method matches and whose
path contains `path_contains` get Blob's own throttling reply (503 `ServerBusy` or 500
`OperationTimedOut` of https://learn.microsoft.com/rest/api/storageservices/blob-service-error-codes,
or 429), with `Retry-After` only when asked, and are counted in `refused`. Point a client
at it with `connection_string(...)`; SAS URLs built from it lead the nodes through it too.

start() returns once it listens (port 0: any free port); stop() joins its thread.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "trailer",
        "upgrade"}
_CODES = {503: "ServerBusy", 500: "OperationTimedOut", 429: "ServerBusy"}


class StorageProxy:
    def __init__(self, blob_url: str) -> None:
        target = urlsplit(blob_url)
        self.target = (target.hostname or "127.0.0.1", target.port or 80)
        self.account_path = target.path  # /devstoreaccount1
        self.refused = 0
        self.forwarded = 0
        self._until = 0.0
        self._status = 503
        self._retry_after: float | None = None
        self._method = "GET"
        self._path_contains = ""
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

    def connection_string(self, original: str) -> str:
        """`original` (Azurite's) with its BlobEndpoint pointing at this proxy."""
        return re.sub(r"BlobEndpoint=[^;]*", f"BlobEndpoint={self.blob_url}", original)

    def throttle(self, seconds: float, *, status: int = 503, retry_after: float | None = None,
                 method: str = "GET", path_contains: str = "") -> None:
        with self._lock:
            self._until = time.monotonic() + seconds
            self._status, self._retry_after = status, retry_after
            self._method, self._path_contains = method.upper(), path_contains

    def refuses(self, method: str, path: str) -> bool:
        with self._lock:
            hit = (time.monotonic() < self._until and method == self._method
                   and self._path_contains in path)
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

    def _handle(self) -> None:
        body = self._body()
        owner = self.owner
        if owner.refuses(self.command, self.path):
            code = _CODES[owner._status]
            reply = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code>'
                     f"<Message>throttled by the test's storage proxy</Message></Error>"
                     ).encode()
            self.send_response(owner._status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("x-ms-error-code", code)
            if owner._retry_after is not None:
                self.send_header("Retry-After", f"{owner._retry_after:g}")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply)
            return
        upstream = http.client.HTTPConnection(*owner.target, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            headers["Content-Length"] = str(len(body))
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            self.send_response(answer.status, answer.reason)  # adds its own Server, Date
            for key, value in answer.getheaders():
                if key.lower() not in _HOP | {"content-length", "server", "date"}:
                    self.send_header(key, value)
            length = answer.getheader("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length or str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        finally:
            upstream.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_OPTIONS = _handle
