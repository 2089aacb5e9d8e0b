"""The `azure-batch-executor emulator` command: the Batch emulator alone, until a signal.

Role: start the Azure Batch REST emulator on loopback, print the
`export BATCH_ACCOUNT_URL / _NAME / _KEY=...` lines a client needs and serve
until SIGINT or SIGTERM. A client also needs Blob storage: `local` starts
Azurite as well. Errors a user can fix (a bad option, the port in use) are
`CommandError`s: one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from .serving import CommandError, check_at_least, listen_error, serve


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `emulator` on the CLI's subparsers; `run` is its handler."""
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
    parser.add_argument("--container-path-prefix", action="append", default=None,
                        metavar="DIR",
                        help="instead of --path-prefix for commands with containerSettings "
                             "(their image; repeatable)")
    parser.add_argument("--allocation-delay", type=float, default=0.0, metavar="SECONDS",
                        help="how long a new node boots (in 'starting') before its start "
                             "task runs; default 0")
    parser.add_argument("--scheduling-latency", default="0", metavar="MIN-MAX",
                        help="seconds a task waits after being added or requeued before it "
                             "may start, drawn uniformly from MIN-MAX (e.g. 2-5) or a "
                             "single number; emulates Azure Batch's scheduling latency; "
                             "default 0")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Serve the emulator until a signal; 0 then, or a `CommandError`."""
    check_at_least("--nodes", args.nodes, 0, "the nodes a pool may have; 0: none")
    check_at_least("--slots", args.slots, 1, "the task slots a node may have")
    if not 0 <= args.port <= 65535:
        raise CommandError(f"--port {args.port} is not a TCP port: pass --port 1 to 65535, "
                           "or --port 0 for a free one")
    if not args.allocation_delay >= 0:
        raise CommandError(f"--allocation-delay {args.allocation_delay} is not a delay: pass "
                           "0 or more seconds")
    latency = parse_latency(args.scheduling_latency)

    from ..emulator import BatchEmulator, tune_gc_for_serving

    emulator = BatchEmulator(nodes=args.nodes, slots_per_node=args.slots, loose=args.loose,
                             host=args.host, port=args.port, path_prefix=args.path_prefix,
                             realistic_casing=args.realistic_casing,
                             container_path_prefix=args.container_path_prefix,
                             allocation_delay=args.allocation_delay,
                             scheduling_latency=latency)

    def start() -> dict[str, str]:
        emulator.start()
        tune_gc_for_serving()
        return {
            "BATCH_ACCOUNT_URL": emulator.url,
            "BATCH_ACCOUNT_NAME": emulator.account_name,
            "BATCH_ACCOUNT_KEY": emulator.account_key,
        }

    try:
        return serve(start, emulator.stop)
    except OSError as exc:
        raise listen_error(exc, args.host, args.port) from None


def parse_latency(text: str) -> tuple[float, float]:
    """`--scheduling-latency`: "MIN-MAX" or one number of seconds, 0 <= MIN <= MAX."""
    parts = text.split("-")
    try:
        if len(parts) > 2:
            raise ValueError(text)
        lo, hi = float(parts[0]), float(parts[-1])
    except ValueError:
        lo = hi = math.nan
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi):
        raise CommandError(f"--scheduling-latency {text!r} is not a latency: pass seconds as "
                           "MIN-MAX with 0 <= MIN <= MAX (e.g. 2-5), or one number (e.g. 3)")
    return lo, hi
