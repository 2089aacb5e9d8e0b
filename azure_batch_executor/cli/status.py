"""The `azure-batch-executor status JOB` command: one job, its tasks and its pool.

Role: the job's state and times, its task counts (active, running, completed; succeeded,
failed), its pool's allocation state, size and nodes by state, and where its blobs are
(its own container, or its prefix in the shared container for a job made before
containers per job: `jobblobs.locate`) with their expiry: five requests and one listing
of the expiry markers. A job whose Batch job was deleted but whose blobs are kept is
shown as state ``deleted``.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..wire.layout import JobLayout
from . import accounts, inventory, jobblobs
from .serving import CommandError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `status` on the CLI's subparsers; `run` is its handler."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "status", help="one job: its state, task counts, pool and nodes",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=accounts.describe(
            "Show a job's state, its task counts (active, running, completed; succeeded, "
            "failed), its pool's allocation state and nodes by state, and when its blobs "
            "expire.",
            "status abx-20250131-120000-1a2b3c4d", "status JOB --output json | jq .tasks"))
    parser.add_argument("job", metavar="JOB", help="the job id (see `azure-batch-executor "
                                                   "jobs`)")
    accounts.add_options(parser)
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    with accounts.session(args) as account:
        job = inventory.job(account, args.job)
        layout = JobLayout(args.job)
        stored = jobblobs.locate(account, args.job)
        if job is None:
            if stored is None:
                raise CommandError(
                    f"no job {args.job} in the Batch account {account.settings.batch_account},"
                    f" no container {layout.container} and no blobs under {layout.prefix} in "
                    f"the container {account.settings.container_name}: list the jobs with "
                    f"`{accounts.PROG} jobs` (a job of another shared container: pass "
                    "--container-name)")
            job = inventory.Job(args.job, "deleted", created=inventory.stamped(args.job))
        counts = inventory.task_counts(account, job.id) if job.state != "deleted" else None
        pool = None
        if job.pool_id:
            found = inventory.pool(account, job.pool_id)
            if found is not None:
                nodes = inventory.node_counts(account, job.pool_id).get(job.pool_id, {})
                pool = inventory.pool_summary(found, nodes)
        deadline = inventory.markers(account).deadline(job.id)
    value = {
        "job": {"id": job.id, "state": job.state, "pool_id": job.pool_id,
                "created": accounts.iso(job.created), "ended": accounts.iso(job.ended)},
        "tasks": counts,
        "pool": pool,
        "blobs": {"container": stored.container if stored else layout.container,
                  "prefix": layout.prefix, "expire": accounts.iso(deadline)},
    }
    if args.output == "json":
        accounts.emit(args, value)
    else:
        print(_text(value))
    return 0


def _text(value: dict[str, Any]) -> str:
    job, tasks, pool, blobs = value["job"], value["tasks"], value["pool"], value["blobs"]
    lines: list[tuple[str, Any]] = [
        ("job", job["id"]), ("state", job["state"]), ("created", job["created"]),
        ("ended", job["ended"]),
        ("tasks", None if tasks is None else
         f"active {tasks['active']}, running {tasks['running']}, completed "
         f"{tasks['completed']} (succeeded {tasks['succeeded']}, failed {tasks['failed']})"),
        ("pool", job["pool_id"] if pool or not job["pool_id"]
         else f"{job['pool_id']} (deleted)"),
    ]
    if pool is not None:
        sizing = "autoscale" if pool["autoscale"] else "fixed size"
        lines += [
            ("pool state", f"{pool['state']}, {pool['allocation_state']}, {sizing}, "
                           f"{pool['vm_size']}"),
            ("pool nodes", f"dedicated {pool['dedicated']['current']}/"
                           f"{pool['dedicated']['target']}, spot {pool['spot']['current']}/"
                           f"{pool['spot']['target']} (current/target)"),
            ("nodes", pool["nodes"]),
        ]
        lines += [("resize error", f"{e['code']}: {e['message']}")
                  for e in pool["resize_errors"]]
        if pool["autoscale_error"]:
            lines.append(("autoscale error", pool["autoscale_error"]))
    lines.append(("blobs", f"{blobs['container']}/{blobs['prefix']}"
                           + (f" (expire {blobs['expire']})" if blobs["expire"] else "")))
    width = max(len(label) for label, _ in lines)
    return "\n".join(f"{label.ljust(width)}  {accounts.cell(v)}" for label, v in lines)
