"""The `azure-batch-executor local` command: the whole local stack, until a signal.

Role: start Azurite and the Batch emulator on loopback (`local.LocalStack`),
print the export lines an `AzureBatchExecutor` in another process needs
(`BATCH_ACCOUNT_URL / _NAME / _KEY`, `STORAGE_ACCOUNT_CONNECTION_STRING`) and
serve until SIGINT or SIGTERM. Errors a user can fix (a bad option, Azurite or
Node.js missing) are `CommandError`s: one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
from typing import Any

from .serving import CommandError, check_at_least, listen_error, serve


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `local` on the CLI's subparsers; `run` is its handler."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "local", help="run the whole local stack (Batch emulator + Azurite) until Ctrl-C",
        description="Start Azurite and the Batch emulator on loopback, print the export lines "
                    "an AzureBatchExecutor in another process needs (BATCH_ACCOUNT_URL / _NAME "
                    "/ _KEY and STORAGE_ACCOUNT_CONNECTION_STRING) and serve until SIGINT or "
                    "SIGTERM. Azurite comes from node_modules/.bin (`npm ci`) or PATH, or "
                    "AZURITE_BLOB_URL names one already running.")
    parser.add_argument("--nodes", type=int, default=2, help="nodes a pool may have")
    parser.add_argument("--slots", type=int, default=2,
                        help="largest taskSlotsPerNode a pool may ask for")
    parser.add_argument("--loose", action="store_true",
                        help="the emulator stores and echoes properties it does not emulate "
                             "instead of answering 400")
    parser.add_argument("--node-image", choices=("client", "bare"), default="client",
                        help="what python3 is on the nodes: 'client' (default) this "
                             "interpreter with its packages, as an image built from this "
                             "environment; 'bare' this Python with no third-party packages, "
                             "as a stock Ubuntu Batch image")
    parser.add_argument("--allocation-delay", type=float, default=0.0, metavar="SECONDS",
                        help="how long a new node boots (in 'starting') before its start "
                             "task runs; default 0")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Serve the local stack until a signal; 0 then, or a `CommandError`."""
    check_at_least("--nodes", args.nodes, 1, "the nodes a pool may have")
    check_at_least("--slots", args.slots, 1, "the task slots a node may have")
    if not args.allocation_delay >= 0:
        raise CommandError(f"--allocation-delay {args.allocation_delay} is not a delay: pass "
                           "0 or more seconds")

    from ..emulator import tune_gc_for_serving
    from ..local import LocalStack, LocalStackError

    stack = LocalStack(nodes=args.nodes, slots_per_node=args.slots, loose=args.loose,
                       node_image=args.node_image, allocation_delay=args.allocation_delay)

    def start() -> dict[str, str]:
        stack.start()
        tune_gc_for_serving()
        return {
            "BATCH_ACCOUNT_URL": stack.batch_account_url,
            "BATCH_ACCOUNT_NAME": stack.batch_account_name,
            "BATCH_ACCOUNT_KEY": stack.batch_account_key,
            "STORAGE_ACCOUNT_CONNECTION_STRING": stack.storage_connection_string,
        }

    try:
        return serve(start, stack.stop)
    except LocalStackError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:  # the emulator's socket: Azurite's own errors are LocalStackErrors
        raise listen_error(exc, "127.0.0.1", 0, port_option=False) from None
