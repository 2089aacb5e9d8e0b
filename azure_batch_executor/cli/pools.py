"""The `azure-batch-executor pools` command: the pools of an account and what they hold.

Role: one row per pool of the Batch account (`--mine`: only those the executor created,
marked in their metadata), with whether this package created it, its allocation state
(its state when not active: ``deleting``), VM size, nodes (current / target, and by
state) and the live jobs on it: three listings (pools, node counts, jobs) whatever the
number of pools.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import accounts, inventory


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `pools` on the CLI's subparsers; `run` is its handler."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "pools", help="list the pools, their nodes and the jobs on them",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=accounts.describe(
            "List the pools of the Batch account: whether this package created them, "
            "allocation state, VM size, nodes (current/target and by state) and the live "
            "jobs on each.",
            "pools --mine", "pools --output json | jq '.[] | {id, nodes}'"))
    parser.add_argument("--mine", action="store_true",
                        help="only the pools this package created")
    parser.add_argument("--pool-id", metavar="POOL", help="only this pool")
    accounts.add_options(parser, container=False)
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    with accounts.session(args) as account:
        found = [p for p in inventory.pools(account)
                 if (not args.mine or inventory.created_here(p))
                 and (args.pool_id is None or p.id == args.pool_id)]
        nodes = inventory.node_counts(account) if found else {}
        live = [j for j in inventory.jobs(account) if j.live] if found else []
    rows = []
    for p in found:
        row = inventory.pool_summary(p, nodes.get(p.id))
        row["live_jobs"] = sum(1 for j in live if j.pool_id == p.id)
        rows.append(row)
    accounts.emit(args, rows, ["POOL", "MINE", "STATE", "VM SIZE", "SCALING", "DEDICATED",
                               "SPOT", "NODES", "LIVE JOBS"],
                  [[r["id"], r["created_by_package"],
                    r["allocation_state"] if r["state"] == "active" else r["state"], r["vm_size"],
                    "autoscale" if r["autoscale"] else "fixed",
                    f"{r['dedicated']['current']}/{r['dedicated']['target']}",
                    f"{r['spot']['current']}/{r['spot']['target']}",
                    r["nodes"], r["live_jobs"]] for r in rows])
    return 0
