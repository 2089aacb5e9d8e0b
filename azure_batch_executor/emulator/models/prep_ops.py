"""Job preparation and release task operations: when they run, what their endings do.

Role: the scheduler asks `prep_gate` before a task of a job with a preparation task
starts on a node: run now, or wait (`preparing`) while the preparation task runs there.
`job_task_done` applies a preparation or release attempt's outcome: retries, starting the
waiting tasks on success, sending them back to `active` and barring the node from the
job on failure (with `waitForSuccess`). `releases_outstanding` runs the release tasks of
an ending job on the nodes that need one and says whether the job must keep waiting.
`node_restarted` applies a reboot (or a reimage: preemption) to the records. The rules
and their sources are in `jobprep.py`; the list operation reads the records.

Imports: the standard library, `..exceptions`, `..runner` (data classes) and sibling
model modules.
"""

from __future__ import annotations

from typing import Any

from .. import exceptions as exc
from ..runner import RunOutcome
from .core import Core, Run
from .jobprep import RELEASE_MAX_WALL_CLOCK, NodePrep, prep_id, release_id
from .jobs import Job
from .pools import SCHEDULABLE, Node, Pool
from .runtime import job_task_run_spec
from .tasks import _duration

WAITING_NODE_STATES = frozenset({"creating", "starting", "waitingforstarttask", "rebooting",
                                 "preempted"})


def wait_for_success(spec: dict[str, Any]) -> bool:
    return bool(spec.get("waitForSuccess", True))


class PrepOps(Core):
    # --- job preparation ------------------------------------------------------------------

    def prep_gate(self, job: Job, pool: Pool, node: Node, now: float) -> str:
        """"run" a task of `job` on `node` now, or "wait" (preparing) for the preparation
        task, which this launches when the node needs one."""
        spec = job.prep_task
        if spec is None:
            return "run"
        rec = job.preps.get(node.key)
        if rec is None:
            rec = job.preps[node.key] = NodePrep(len(job.preps), pool.id, node.id)
        if rec.ready():
            return "run"
        if rec.prep_run is None and (rec.prep is None or rec.rerun):
            self._launch_prep(job, pool, node, rec, now, retry=False)
        return "wait" if wait_for_success(spec) else "run"

    def task_started_on(self, job: Job, node: Node) -> None:
        rec = job.preps.get(node.key)
        if rec is not None:
            rec.tasks_ran = True

    def _launch_prep(self, job: Job, pool: Pool, node: Node, rec: NodePrep, now: float, *,
                     retry: bool) -> None:
        spec = job.prep_task or {}
        if not retry:
            rec.prep_retries = 0
        rec.rerun = rec.prep_ok = False
        task_id = prep_id(spec)
        rec.started("prep", now, f"workitems/{job.id}/job-1/{task_id}", rec.prep_retries)
        rec.prep_run = self._launch(job, pool, node, "prep", spec, task_id,
                                    _duration((spec.get("constraints") or {})
                                              .get("maxWallClockTime")))

    def _launch(self, job: Job, pool: Pool, node: Node, kind: str, spec: dict[str, Any],
                task_id: str, max_wall_clock: float | None) -> str:
        run_id = self.new_run_id(f"{kind}:{job.id}/{node.id}")
        self.runs[run_id] = Run(run_id, kind, pool.key, node.id, 0, job.key)
        node.runs[run_id] = 0  # runs in the background: no slot
        prep = job.prep_task or {}
        self.start_process(job_task_run_spec(
            kind=kind, run_id=run_id, base_env=self.base_env_for(spec),
            account=(self.settings.account_name, self.settings.account_url),
            pool_id=pool.id, node_id=node.id, dedicated=node.dedicated, root=node.root,
            job_id=job.id, job_common_env=job.common_env, task_spec=spec, task_id=task_id,
            job_prep_id=prep_id(prep), max_wall_clock=max_wall_clock))
        return run_id

    def job_task_done(self, run: Run, outcome: RunOutcome, now: float) -> None:
        """A preparation or release attempt ended (the run's slots are already released)."""
        job = self.jobs.get(run.job_key)
        rec = job.preps.get(run.node_id.lower()) if job is not None else None
        if job is None or rec is None:
            return
        if run.kind == "release":
            if rec.release_run != run.run_id:
                return
            rec.release_run = None
            if run.disposition is None:  # else: interrupted (reboot), runs again
                rec.release_done = True
                rec.ended("release", now, outcome.exit_code, _failure(outcome))
            return
        if rec.prep_run != run.run_id:
            return
        rec.prep_run = None
        if run.disposition is not None:  # interrupted: node rebooted or left, job ended
            rec.rerun = True
            rec.ended("prep", now, outcome.exit_code,
                      ("usererror", "TaskEnded", "The job preparation task was interrupted "
                                                 "before it completed"))
            return
        spec = job.prep_task or {}
        ok = outcome.reason == "exited" and outcome.exit_code == 0
        located = self._node(run)
        retries = int((spec.get("constraints") or {}).get("maxTaskRetryCount", 0))
        if not ok and outcome.reason == "exited" and located is not None and (
                retries == -1 or rec.prep_retries < retries):
            rec.prep_retries += 1
            self._launch_prep(job, located[0], located[1], rec, now, retry=True)
            return
        rec.ended("prep", now, outcome.exit_code, _failure(outcome))
        rec.prep_completed = True
        rec.prep_ok = ok
        if located is None:
            return
        if ok:
            self._start_waiting(job, located[0], located[1], rec, now)
        elif wait_for_success(spec):
            rec.blocked = True
            self._unprepare_waiting(job, located[1], now)

    def _node(self, run: Run) -> tuple[Pool, Node] | None:
        pool = self.pools.get(run.pool_key)
        node = pool.nodes.get(run.node_id.lower()) if pool is not None else None
        return (pool, node) if pool is not None and node is not None else None

    def _waiting(self, job: Job, node: Node) -> list[tuple[Run, Any]]:
        """The runs of `job`'s tasks waiting (preparing) on `node`, with their tasks."""
        out = []
        for run_id, (job_id, task_id) in list(node.task_runs.items()):
            run = self.runs.get(run_id)
            task = job.tasks.get(task_id.lower()) if job_id.lower() == job.key else None
            if run is not None and not run.started and task is not None \
                    and task.run_id == run_id and task.state == "preparing":
                out.append((run, task))
        return out

    def _start_waiting(self, job: Job, pool: Pool, node: Node, rec: NodePrep,
                       now: float) -> None:
        for run, task in self._waiting(job, node):
            run.started = True
            task.start(now, pool.id, node.id, run.run_id)
            rec.tasks_ran = True
            self.start_task_process(pool, node, job, task, run.run_id)

    def _unprepare_waiting(self, job: Job, node: Node, now: float) -> None:
        for run, task in self._waiting(job, node):
            task.unprepare(now)
            self.runs.pop(run.run_id, None)
            self.release(run, now)

    # --- job release ----------------------------------------------------------------------

    def releases_outstanding(self, job: Job, now: float) -> bool:
        """Start the release tasks an ending job still owes; True while any is due or runs."""
        spec = job.release_task
        if spec is None:
            return False
        busy = False
        for rec in job.preps.values():
            if not rec.needs_release():
                continue
            if rec.release_run is not None:
                busy = True
                continue
            pool = self.pools.get(rec.pool_id.lower())
            node = pool.nodes.get(rec.node_id.lower()) if pool is not None else None
            if pool is None or node is None or not (
                    node.state in SCHEDULABLE or node.state in WAITING_NODE_STATES):
                rec.release_done = True  # the node is gone or unusable: nowhere to run it
                continue
            busy = True
            if node.state not in SCHEDULABLE or rec.prep_run is not None or any(
                    j.lower() == job.key for j, _ in node.task_runs.values()):
                continue  # after the job's task processes there have ended
            task_id = release_id(spec)
            rec.started("release", now, f"workitems/{job.id}/job-1/{task_id}")
            limit = _duration(spec.get("maxWallClockTime")) or RELEASE_MAX_WALL_CLOCK
            rec.release_run = self._launch(job, pool, node, "release", spec, task_id, limit)
        return busy

    # --- nodes ----------------------------------------------------------------------------

    def node_restarted(self, node: Node, *, reimage: bool) -> None:
        """The node reboots (or is reimaged): which preparations must run again there."""
        for job in self.jobs.values():
            rec = job.preps.get(node.key)
            spec = job.prep_task
            if rec is None or spec is None:
                continue
            if reimage:  # a new disk: no release task owed here unless it prepares again
                rec.blocked = rec.prep_completed = rec.tasks_ran = False
                rec.rerun = True
            elif rec.prep_run is not None or not rec.prep_completed or (
                    rec.prep_ok and spec.get("rerunOnNodeRebootAfterSuccess", True)):
                rec.rerun = True

    # --- the list operation ---------------------------------------------------------------

    def prep_job(self, job_id: str) -> Job:
        """The job whose preparation and release statuses are asked for (409 without)."""
        job = self.job(job_id)
        if job.prep_task is None and job.release_task is None:
            raise exc.JobPreparationTaskNotSpecified(values={"JobId": job.id})
        return job


def _failure(outcome: RunOutcome) -> tuple[str, str, str] | None:
    if outcome.reason == "exited" and outcome.exit_code == 0:
        return None
    if outcome.failure is not None:
        f = outcome.failure
        return f.category, f.code, f.message
    return ("usererror", "FailureExitCode",
            f"The task process exited with an unexpected exit code {outcome.exit_code}")
