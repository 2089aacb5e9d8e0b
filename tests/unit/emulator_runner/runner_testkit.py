"""Helpers for the task runner's unit tests: a fake blob endpoint, an outcome waiter, a FIFO.

`FakeBlobServer` is a stdlib HTTP server on 127.0.0.1:0 that records every
request and answers from a small route table (status, headers, body, or a
handler that can hold the response until the test releases it), so transfer
behaviour can be tested without Azurite.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from azure_batch_executor.emulator.runner import RunOutcome

WAIT = 20.0  # seconds: generous deadline for one attempt in these tests


@dataclass
class Recorded:
    method: str
    path: str  # raw path with query, as sent on the wire
    headers: dict[str, str]  # names lowercased
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    before_body: Callable[[], object] | None = None  # called after the headers were sent
    tail: bytes = b""  # sent after before_body() returns


class FakeBlobServer:
    """Records requests; routes `(METHOD, raw path)` or `(METHOD, path without query)`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.routes: dict[tuple[str, str], Reply] = {}
        self.put_status = 201
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                with outer._lock:
                    outer.requests.append(Recorded(self.command, self.path, headers, body))
                reply = outer.routes.get((self.command, self.path)) or outer.routes.get(
                    (self.command, self.path.split("?", 1)[0])
                )
                if reply is None:
                    if self.command == "PUT":
                        reply = Reply(outer.put_status)
                    else:
                        reply = Reply(404, headers={"x-ms-error-code": "BlobNotFound"})
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body) + len(reply.tail)))
                self.end_headers()
                self.wfile.write(reply.body)
                self.wfile.flush()
                if reply.before_body is not None:
                    reply.before_body()
                with contextlib.suppress(OSError):  # the client gave up
                    self.wfile.write(reply.tail)

            do_GET = do_PUT = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def puts(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == "PUT"]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class Waiter:
    """Collects outcomes; `wait()` returns the single outcome of an attempt or fails."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.outcomes: list[RunOutcome] = []

    def __call__(self, outcome: RunOutcome) -> None:
        with self._cond:
            self.outcomes.append(outcome)
            self._cond.notify_all()

    def wait(self, count: int = 1, timeout: float = WAIT) -> RunOutcome:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.outcomes) >= count, timeout):
                raise AssertionError(f"no outcome within {timeout} s")
            return self.outcomes[count - 1]


class ReadySignal:
    """A FIFO a task writes to when it is running; `wait()` blocks until then (with a deadline).

    Use `f"sh -c 'echo ready > {signal.path}; exec sleep 60'"` as the command line.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # Linux: no EOF before a writer

    def wait(self, timeout: float = WAIT) -> None:
        readable, _, _ = select.select([self._fd], [], [], timeout)
        if not readable or not os.read(self._fd, 64):
            raise AssertionError(f"the task did not signal {self.path} within {timeout} s")

    def close(self) -> None:
        os.close(self._fd)
