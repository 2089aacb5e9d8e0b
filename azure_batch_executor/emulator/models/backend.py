"""The Batch account's state: pools, nodes, jobs and tasks behind one lock.

Role: `BatchBackend` combines the pool, job and task operation mixins (each a seam of
the account's behaviour; `autoscale_ops` and `account_ops` extend the pool operations with
autoscale and the account's quotas and node trouble) with what spans them: the periodic
`settle` step the scheduler runs on every tick, the next time something is due, and the
admin operations (preempt a node, kill a task's process, reset). It never sees HTTP;
`responses` calls its methods with Python names inside `op()`.

Imports: the standard library, `..exceptions` and sibling model modules.
"""

from __future__ import annotations

import shutil

from .account_ops import AccountOps
from .autoscale_ops import AutoScaleOps
from .core import Settings
from .job_ops import JobOps
from .pool_ops import PoolOps
from .task_ops import TaskOps

__all__ = ["BatchBackend", "Settings"]


class BatchBackend(AutoScaleOps, AccountOps, PoolOps, JobOps, TaskOps):
    """All model state of one emulated Batch account (thread-safe through `op()`)."""

    def settle(self, now: float) -> None:
        """Advance everything that is due by time: node boots, resizes, transient states."""
        self.settle_pools(now)
        self.settle_jobs(now)
        self.settle_autoscale(now)

    def next_deadline(self) -> float | None:
        deadlines = [p.pending[0] for p in self.pools.values() if p.pending]
        deadlines += [n.pending[0] for p in self.pools.values() for n in p.nodes.values()
                      if n.pending]
        job_deadline = self.next_job_deadline()
        if job_deadline is not None:
            deadlines.append(job_deadline)
        autoscale_deadline = self.next_autoscale_deadline()
        if autoscale_deadline is not None:
            deadlines.append(autoscale_deadline)
        return min(deadlines) if deadlines else None

    # --- admin ------------------------------------------------------------------------------

    def kill_task_run(self, job_id: str, task_id: str) -> str | None:
        """The run id of a running task (the caller kills it outside the lock)."""
        _, task = self.task(job_id, task_id)
        if task.state != "running" or task.run_id is None:
            return None
        return task.run_id

    def reset(self) -> None:
        """Drop every pool, job, task and attempt; processes are killed (deferred)."""
        for run_id in list(self.runs):
            self.stop_run(run_id, "deleted")
        self.runs.clear()
        self.pools.clear()
        self.jobs.clear()
        self.autoscaled.clear()
        self.settings.quotas.allocation_failures.clear()
        self.settings.quotas.unusable_boots.clear()
        data_dir = self.settings.data_dir

        def wipe() -> None:
            if data_dir.is_dir():
                for child in data_dir.iterdir():
                    shutil.rmtree(child, ignore_errors=True)

        self.defer(wipe)
