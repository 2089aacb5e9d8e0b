"""The `azure-batch-executor jobs` command: the jobs this package made in an account.

Role: one row per job of the Batch account whose id the executor made
(``<job_id_prefix>-<stamp>-<hex>``; `--all`: every job), oldest first, with its state,
pool, creation time, task counts (one request per job, a few at a time) and when its
blobs expire; then, as state ``deleted``, the jobs whose Batch job is gone but whose
blobs are kept (`blob_retention`: their own containers, or prefixes of the shared one
from before containers per job): `logs` still reads those.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import accounts, inventory, jobblobs

COUNT_THREADS = 8  # task-count requests in flight at once


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `jobs` on the CLI's subparsers; `run` is its handler."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "jobs", help="list the jobs this package made, with their task counts",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=accounts.describe(
            "List the Batch jobs the executor made (ids starting with the job_id_prefix, "
            "abx- by default), oldest first: state, pool, creation time, task counts and "
            "when their blobs expire; and, as state 'deleted', the jobs whose Batch job is "
            "gone but whose blobs are kept.",
            "jobs", "jobs --output json | jq -r '.[].id'"))
    parser.add_argument("--all", action="store_true",
                        help="every job of the Batch account, not only this package's")
    parser.add_argument("--pool-id", metavar="POOL", help="only the jobs on this pool")
    accounts.add_options(parser, job_id_prefix=True)
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    with accounts.session(args) as account:
        prefix = account.settings.job_id_prefix
        found = [j for j in inventory.jobs(account)
                 if (args.all or inventory.made_here(j.id, prefix))
                 and (args.pool_id is None or j.pool_id == args.pool_id)]
        with ThreadPoolExecutor(COUNT_THREADS, thread_name_prefix="abx-cli") as pool:
            counts = list(pool.map(lambda j: inventory.task_counts(account, j.id), found))
        markers = inventory.markers(account)
        listed = {j.id for j in found}
        # blobs kept (blob_retention) of jobs gone from Batch: a job's own container, or
        # the `<job_id>/` prefix in the shared one (jobs made before containers per job)
        left = sorted(set(jobblobs.job_containers(account)) | set(inventory.prefixes(account)))
        kept = [] if args.pool_id else [
            inventory.Job(name, "deleted", created=inventory.stamped(name))
            for name in left if inventory.made_here(name, prefix) and name not in listed]
        rows = [_row(j, c, markers, prefix) for j, c in
                [*zip(found, counts, strict=True), *((j, None) for j in kept)]]
    accounts.emit(args, rows, ["JOB", "STATE", "POOL", "CREATED", "ACTIVE", "RUNNING",
                               "SUCCEEDED", "FAILED", "BLOBS EXPIRE"],
                  [[r["id"], r["state"], r["pool_id"], r["created"],
                    *(None if r["tasks"] is None else r["tasks"][k]
                      for k in ("active", "running", "succeeded", "failed")),
                    r["blobs_expire"]] for r in rows])
    return 0


def _row(job: inventory.Job, counts: dict[str, int] | None, markers: inventory.Markers,
         prefix: str) -> dict[str, Any]:
    return {
        "id": job.id,
        "state": job.state,
        "pool_id": job.pool_id,
        "created": accounts.iso(job.created),
        "ended": accounts.iso(job.ended),
        "created_by_package": inventory.made_here(job.id, prefix),
        "tasks": counts,
        "blobs_expire": accounts.iso(markers.deadline(job.id)),
    }
