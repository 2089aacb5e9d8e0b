"""What the serving commands (`local`, `emulator`) share: serving until a signal, and errors.

Role: `serve` starts a service, prints the `export NAME=VALUE` lines a client
needs (flushed at once, so a parent reading a pipe sees them) and serves until
SIGINT or SIGTERM, then stops it. `CommandError` is an error a user can fix:
`main` prints it as one line on stderr, `azure-batch-executor COMMAND: error:
...`, and exits with code 2, without a traceback. `listen_error` words an
`OSError` from binding a listening socket as such an error.
"""

from __future__ import annotations

import errno
import shlex
import signal
import socket
import sys
import threading
from collections.abc import Callable
from types import FrameType

EXIT_USAGE = 2  # argparse's code for a command line that cannot run


class CommandError(Exception):
    """A command cannot run as asked; the message names the fix (one line once printed)."""

    def one_line(self) -> str:
        return " ".join(str(self).split())


def check_at_least(option: str, value: int, least: int, meaning: str) -> None:
    """A `CommandError` unless `value` (given as `option`) is `least` or more."""
    if value < least:
        raise CommandError(f"{option} {value} is too small: pass {option} {least} or more "
                           f"({meaning})")


def listen_error(exc: OSError, host: str, port: int, port_option: bool = True) -> CommandError:
    """A `CommandError` for an `OSError` of listening on `host:port`, naming the fix."""
    where = f"cannot listen on {host}:{port} ({exc.strerror or exc})"
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return CommandError(f"{where}: pass --host with an address of this machine "
                            "(default: 127.0.0.1)")
    if exc.errno == errno.EADDRINUSE and port_option:
        return CommandError(f"{where}: another process uses the port; pass another --port, "
                            "or --port 0 for a free one")
    if exc.errno in (errno.EACCES, errno.EPERM) and port_option:
        return CommandError(f"{where}: ports below 1024 need privileges; pass --port 1024 or "
                            "more, or --port 0 for a free one")
    return CommandError(f"{where}: check that loopback networking works on this machine")


def serve(start: Callable[[], dict[str, str]], stop_service: Callable[[], None]) -> int:
    """Start a service, print its `export` lines (flushed) and serve until SIGINT/SIGTERM.

    `start` returns the variables to export; whatever it raises propagates after
    `stop_service` ran. A signal during `start` ends the serving as soon as it started.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        exports = start()
        for name, value in exports.items():
            print(f"export {name}={shlex.quote(value)}")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        stop_service()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
