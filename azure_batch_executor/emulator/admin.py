"""The emulator's admin interface: fault injection, request counters, `/_emulator/...` routes.

Role: everything that is *not* the Batch API but lets tests steer and observe it, kept
out of the request handlers: `FaultInjector` (the next N requests matching a method and
a path substring get a given error, `Retry-After` only when asked), `RequestCounter`
(thread-safe counts per (method, route name)), and `AdminApi`, the unauthenticated
JSON routes that expose the same operations as the Python API:

    GET    /_emulator/stats                                   request counts
    DELETE /_emulator/stats                                   reset them
    POST   /_emulator/faults        {method, path_contains, status, code, count, retry_after}
    DELETE /_emulator/faults                                  drop pending faults
    POST   /_emulator/pools/{poolId}/nodes/{nodeId}/preempt   preempt a node
    POST   /_emulator/jobs/{jobId}/tasks/{taskId}/kill        SIGKILL a task's process
    POST   /_emulator/reset                                   drop everything
    GET    /_emulator/info                                    url, account name, settings
    .../throttle, quotas, allocation-failures, unusable-boots, autoscale,
    scheduling-latency,
    pools/{poolId}/nodes/{nodeId}/unusable|reboot,
    pools/{poolId}/evaluateautoscale                          scripting the account
                                                              (`account.admin_route`)

Imports: the standard library and sibling emulator modules (`account`, `exceptions`,
`wire`, `urls`, `responses.base`).
"""

from __future__ import annotations

import collections
import json
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from . import account, wire
from . import exceptions as exc
from .responses.base import Request, Response
from .urls import split_path


@dataclass
class Fault:
    method: str
    path_contains: str
    status: int
    code: str
    remaining: int
    retry_after: float | None = None

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method.upper()) and self.path_contains in path


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, method: str, path_contains: str, status: int, code: str, count: int,
            retry_after: float | None = None) -> None:
        if not 400 <= int(status) <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {status}")
        if int(count) < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        with self._lock:
            self._faults.append(Fault(method.upper(), path_contains, int(status), code,
                                      int(count), retry_after))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> exc.BatchError | None:
        """The error for this request if a pending fault matches (consumes one use)."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    break
            else:
                return None
        err = exc.named(fault.code, fault.status, f"Injected fault: {fault.code}.")
        if fault.retry_after is not None:
            value = fault.retry_after
            err.headers["Retry-After"] = str(int(value)) if float(value).is_integer() \
                else str(value)
        return err


class RequestCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()

    def incr(self, method: str, route: str) -> None:
        with self._lock:
            self._counts[(method, route)] += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


class Emulator(account.AccountEmulator, Protocol):
    """What the admin routes need from `BatchEmulator`."""

    account_name: str

    @property
    def url(self) -> str: ...

    def preempt_node(self, pool_id: str, node_id: str) -> None: ...
    def kill_task(self, job_id: str, task_id: str) -> bool: ...
    def inject_faults(self, method: str, path_contains: str, status: int, code: str,
                      count: int, retry_after: float | None = None) -> None: ...
    def clear_faults(self) -> None: ...
    def reset(self) -> None: ...
    def request_counts(self) -> dict[tuple[str, str], int]: ...
    def reset_request_counts(self) -> None: ...
    def info(self) -> dict[str, Any]: ...


class AdminApi:
    PREFIX = "_emulator"

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def handle(self, req: Request) -> Response:
        parts = split_path(req.raw_path)[1:]
        method = req.method
        emu = self.emulator
        scripted = account.admin_route(emu, method, parts, lambda: _body(req))
        if scripted is not None:
            return Response(204) if scripted is account.NO_CONTENT else _json(scripted)
        if parts == ["stats"] and method == "GET":
            counts = emu.request_counts()
            return _json({"total": sum(counts.values()), "counts": [
                {"method": m, "route": r, "count": c} for (m, r), c in sorted(counts.items())]})
        if parts == ["stats"] and method == "DELETE":
            emu.reset_request_counts()
            return Response(204)
        if parts == ["faults"] and method == "POST":
            body = _body(req)
            try:
                emu.inject_faults(str(body["method"]), str(body["path_contains"]),
                                  int(body["status"]), str(body["code"]),
                                  int(body.get("count", 1)), body.get("retry_after"))
            except (KeyError, TypeError, ValueError) as error:
                raise exc.InvalidRequestBody(
                    f"Bad fault: {error}. Send JSON {{method, path_contains, status, code, "
                    "count, retry_after}.") from None
            return Response(204)
        if parts == ["faults"] and method == "DELETE":
            emu.clear_faults()
            return Response(204)
        if parts == ["reset"] and method == "POST":
            emu.reset()
            return Response(204)
        if parts == ["info"] and method == "GET":
            return _json(emu.info())
        if len(parts) == 5 and parts[0] == "pools" and parts[2] == "nodes" \
                and parts[4] == "preempt" and method == "POST":
            emu.preempt_node(parts[1], parts[3])
            return Response(204)
        if len(parts) == 5 and parts[0] == "jobs" and parts[2] == "tasks" \
                and parts[4] == "kill" and method == "POST":
            return _json({"killed": emu.kill_task(parts[1], parts[3])})
        raise exc.InvalidUri(f"No admin route {method} {req.raw_path}; see docs/emulator.md.")


def _body(req: Request) -> dict[str, Any]:
    try:
        body = json.loads(req.body.decode("utf-8") or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise exc.InvalidRequestBody(f"The admin request body is not JSON: {error}.") from None
    if not isinstance(body, dict):
        raise exc.InvalidRequestBody("The admin request body must be a JSON object.")
    return body


def _json(doc: Any) -> Response:
    return Response(200, {"Content-Type": "application/json"}, wire.dumps(doc))
