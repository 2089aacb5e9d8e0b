"""The `azure-batch-executor` command: one argparse subcommand per tool.

    azure-batch-executor emulator [--host 127.0.0.1] [--port 0] [--nodes N] [--slots N]
                                  [--loose] [--realistic-casing] [--path-prefix DIR ...]
    azure-batch-executor local [--nodes N] [--slots N]   (emulator + Azurite)
    azure-batch-executor env --resource-group NAME       (see azure_setup.py)
    azure-batch-executor dockerfile [...]                (see images.py)

`COMMANDS` maps a subcommand name to a function that registers it on the subparsers and
sets `handler` (the convention of `azure_setup.add_parser` and `images.add_parser`);
adding a tool is one entry. Tool modules are imported only when the parser is built.
`emulator` starts the Batch emulator, prints the `export BATCH_ACCOUNT_*=...` lines a
client needs (flushed at once) and serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

Register = Callable[[Any], argparse.ArgumentParser]  # (subparsers) -> the command's parser


def _add_emulator(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "emulator", help="run the local Azure Batch emulator until Ctrl-C",
        description="Run the Azure Batch REST emulator on loopback, print the export lines "
                    "of BATCH_ACCOUNT_URL / _NAME / _KEY and serve until SIGINT or SIGTERM.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0: pick a free one)")
    parser.add_argument("--nodes", type=int, default=2,
                        help="nodes a pool may have on this machine (per-pool quota)")
    parser.add_argument("--slots", type=int, default=2,
                        help="largest taskSlotsPerNode a pool may ask for")
    parser.add_argument("--loose", action="store_true",
                        help="store and echo properties the emulator does not emulate "
                             "instead of answering 400")
    parser.add_argument("--realistic-casing", action="store_true",
                        help="emit the service's PascalCase enum values (ClientError, ...)")
    parser.add_argument("--path-prefix", action="append", default=[], metavar="DIR",
                        help="directory put first on PATH for task processes (repeatable)")
    parser.set_defaults(handler=_run_emulator)
    return parser


def _serve(start: Callable[[], dict[str, str]], stop_service: Callable[[], None]) -> int:
    """Start a service, print its `export` lines (flushed) and serve until SIGINT/SIGTERM."""
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


def _run_emulator(args: argparse.Namespace) -> int:
    from ..emulator import BatchEmulator, tune_gc_for_serving

    emulator = BatchEmulator(nodes=args.nodes, slots_per_node=args.slots, loose=args.loose,
                             host=args.host, port=args.port, path_prefix=args.path_prefix,
                             realistic_casing=args.realistic_casing)

    def start() -> dict[str, str]:
        emulator.start()
        tune_gc_for_serving()
        return {
            "BATCH_ACCOUNT_URL": emulator.url,
            "BATCH_ACCOUNT_NAME": emulator.account_name,
            "BATCH_ACCOUNT_KEY": emulator.account_key,
        }

    return _serve(start, emulator.stop)


def _add_local(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "local", help="run the whole local stack (Batch emulator + Azurite) until Ctrl-C",
        description="Start Azurite and the Batch emulator on loopback, print the export lines "
                    "an AzureBatchExecutor in another process needs (BATCH_ACCOUNT_URL / _NAME "
                    "/ _KEY and STORAGE_ACCOUNT_CONNECTION_STRING) and serve until SIGINT or "
                    "SIGTERM.")
    parser.add_argument("--nodes", type=int, default=2, help="nodes a pool may have")
    parser.add_argument("--slots", type=int, default=2,
                        help="largest taskSlotsPerNode a pool may ask for")
    parser.set_defaults(handler=_run_local)
    return parser


def _run_local(args: argparse.Namespace) -> int:
    from ..emulator import tune_gc_for_serving
    from ..local import LocalStack

    stack = LocalStack(nodes=args.nodes, slots_per_node=args.slots)

    def start() -> dict[str, str]:
        stack.start()
        tune_gc_for_serving()
        return {
            "BATCH_ACCOUNT_URL": stack.batch_account_url,
            "BATCH_ACCOUNT_NAME": stack.batch_account_name,
            "BATCH_ACCOUNT_KEY": stack.batch_account_key,
            "STORAGE_ACCOUNT_CONNECTION_STRING": stack.storage_connection_string,
        }

    return _serve(start, stack.stop)


def _add_env(subparsers: Any) -> argparse.ArgumentParser:
    from . import env as azure_setup

    return azure_setup.add_parser(subparsers)


def _add_dockerfile(subparsers: Any) -> argparse.ArgumentParser:
    from . import dockerfile as images

    return images.add_parser(subparsers)


COMMANDS: dict[str, Register] = {
    "emulator": _add_emulator,
    "local": _add_local,
    "env": _add_env,
    "dockerfile": _add_dockerfile,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="azure-batch-executor")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for register in COMMANDS.values():
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
