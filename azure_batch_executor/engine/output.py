"""What a task printed, on the client: echoed when its future resolves, or read in full.

Role: the worker carries the last 64 KiB of each of the task's stdout.txt and stderr.txt
in ``outputs.pickle`` (no extra request per task); `echo` writes them to the client's
stdout and stderr, each line prefixed with the task id, as Ray's ``log_to_driver`` does,
with a line saying what was cut. `TaskOutput` is what ``AzureBatchExecutor.task_output``
returns: the whole of both files, read from their blobs.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import NamedTuple, TextIO

_lock = threading.Lock()  # one task's lines are never interleaved with another's


def _new_lock_after_fork() -> None:  # the parent's poller may have held it at the fork
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_after_fork)


class TaskOutput(NamedTuple):
    """A task's whole stdout and stderr (``''`` for an empty or missing file)."""

    stdout: str
    stderr: str


def echo(task_id: str, output: dict[str, tuple[bytes, int]]) -> None:
    """Write a task's output tails to this process's stdout and stderr, each line prefixed
    with ``(task_id)``."""
    for stream, target in (("stdout", sys.stdout), ("stderr", sys.stderr)):
        tail, size = output.get(stream, (b"", 0))
        if tail:
            _write(target, _prefixed(task_id, tail, size, stream))


def _prefixed(task_id: str, tail: bytes, size: int, stream: str) -> str:
    text = tail.decode("utf-8", errors="replace")
    lines = text.splitlines()
    head = f"({task_id}) "
    cut = size - len(tail)
    if cut > 0 and lines:
        cut += len(lines[0].encode("utf-8", errors="replace"))  # a partial first line
        lines = lines[1:]
    out = [f"{head}[{cut} earlier bytes of {stream} not shown: "
           f"executor.task_output(future) has them all]"] if cut > 0 else []
    out.extend(head + line for line in lines)
    return "\n".join(out) + "\n"


def _write(target: TextIO | None, text: str) -> None:
    if target is None:  # pythonw, or a closed stream: nowhere to echo
        return
    with _lock:
        try:
            target.write(text)
            target.flush()
        except (OSError, ValueError):
            pass


def decode(data: bytes | None) -> str:
    return "" if not data else data.decode("utf-8", errors="replace")
