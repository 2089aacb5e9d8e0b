"""What comes back from a task: ``outputs.pickle`` read as an `Outcome`, and its rows as
values or as exceptions of their own type.

Role: a row is ``("ok", pickled value)`` or an error row (the pickled exception, its type
name, message and the remote traceback text); `decode_row` turns it into ``(True, value)``
or ``(False, exception)``. `rebuild_error` chains the remote traceback, with the client's
source lines put back (`tracebacks`), as ``__cause__``, as CPython's process pool does; an
exception that cannot be unpickled on the client becomes a `RemoteError` naming its type.
The shapes are documented in `worker.py`.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from ..errors import RemoteError, RemoteTraceback
from .tracebacks import with_source_lines

Row = tuple[Any, ...]


@dataclass
class Outcome:
    """What a worker left in outputs.pickle: a fatal error, or one row per call."""

    fatal: Row | None
    results: list[Row]
    node: dict[str, Any]  # versions, host, node id, large arguments fetched (`worker.py`)
    output: dict[str, tuple[bytes, int]] = field(default_factory=dict)  # stdout/stderr tails


def decode_outcome(data: bytes) -> Outcome:
    raw = pickle.loads(data)
    return Outcome(fatal=raw.get("fatal"), results=list(raw.get("results", [])),
                   node=raw.get("node", {}), output=raw.get("output") or {})


def rebuild_error(row: Row) -> BaseException:
    """The exception of an error row: its own type, remote traceback chained as __cause__."""
    _kind, payload, type_name, message, tb = row[-5:]
    tb = with_source_lines(tb) if tb else tb
    exc: BaseException | None = None
    if payload is not None:
        try:
            loaded = cloudpickle.loads(payload)
            if isinstance(loaded, BaseException):
                exc = loaded
        except Exception as load_error:  # noqa: BLE001 - any failure of user code: say so
            message = f"{message} (could not be unpickled on the client: {load_error!r})"
    if exc is None:
        exc = RemoteError(type_name, message, tb)
    if tb:
        exc.__cause__ = RemoteTraceback(f'\n"""\n{tb}"""')
    return exc


def decode_row(row: Row) -> tuple[bool, Any]:
    """(True, value) or (False, exception) for one result row."""
    if row[0] == "ok":
        try:
            return True, cloudpickle.loads(row[1])
        except Exception as exc:  # noqa: BLE001 - a user class's __setstate__ may raise anything
            err = RemoteError("<result>", f"the result could not be unpickled on the client: "
                              f"{type(exc).__name__}: {exc}")
            err.__cause__ = exc
            return False, err
    return False, rebuild_error(("raise", *row[1:]))
