"""Job operations and job rules: create / update / replace / disable / enable / terminate / delete.

Role: the job half of the backend, including the rules that end a job without an API
call (docs/dev/emulator-rest.md, "Job state machine"):
`onAllTasksComplete=terminatejob` (also with zero tasks, the real service's trap), job
`maxWallClockTime`, and `onTaskFailure=performexitoptionsjobaction` with the failed
task's `exitOptions.jobAction`. A job with a release task stays `terminating` /
`deleting` until its release tasks have ended (`prep_ops.releases_outstanding`).

Imports: the standard library, `..exceptions`, `..wire` and sibling model modules.
"""

from __future__ import annotations

from typing import Any

from .. import exceptions as exc
from .. import wire
from .jobprep import RELEASE_MAX_WALL_CLOCK
from .jobs import Job
from .prep_ops import PrepOps
from .task_ops import check_resource_files
from .tasks import Task, _duration, exit_options


class JobOps(PrepOps):
    # --- API operations -------------------------------------------------------------------

    def create_job(self, spec: dict[str, Any]) -> Job:
        job_id = spec["id"]
        if not wire.valid_id(job_id):
            raise exc.InvalidPropertyValue(
                f"The value provided for property 'id' is invalid: ids must be 1-64 characters "
                f"of letters, digits, hyphens and underscores (got {job_id!r}).",
                {"PropertyName": "id", "PropertyValue": str(job_id)})
        existing = self.jobs.get(job_id.lower())
        if existing is not None:
            if existing.state == "deleting":
                raise exc.JobBeingDeleted(values={"JobId": job_id})
            raise exc.JobExists(values={"JobId": job_id})
        _check_parallel(spec)
        _check_prep_release(spec)
        quota = self.settings.max_active_jobs
        if quota is not None and sum(j.state != "completed" for j in self.jobs.values()) >= quota:
            raise exc.ActiveJobAndScheduleQuotaReached()
        now = self.now()
        job = Job(spec, self.next_seq(), now)
        self.jobs[job.key] = job
        self.check_job_rules(job, now)
        return job

    def update_job(self, job_id: str, changes: dict[str, Any], *, replace: bool = False) -> Job:
        job = self.job(job_id)
        self.require_job_open(job)
        new_mode = changes.get("onAllTasksComplete")
        if job.on_all_tasks_complete == "terminatejob" and (
                (new_mode is not None and str(new_mode).lower() == "noaction")
                or (replace and new_mode is None)):
            raise exc.InvalidPropertyValue(
                "The value provided for property 'onAllTasksComplete' is invalid: it cannot be "
                "changed from terminatejob back to noaction.",
                {"PropertyName": "onAllTasksComplete", "PropertyValue": str(new_mode)})
        _check_parallel(changes)
        now = self.now()
        job.update(changes, now, replace=replace)
        self.check_job_rules(job, now)
        return job

    def disable_job(self, job_id: str, option: str) -> Job:
        job = self.job(job_id)
        self.require_job_open(job)
        if job.state in ("disabling", "disabled"):
            raise exc.JobDisabled(values={"JobId": job.id})
        if job.state != "active":
            raise exc.JobNotActive(values={"JobId": job.id})
        now = self.now()
        option = option.lower()
        job.touch(now)
        for task in list(job.tasks.values()):
            if task.state == "preparing" and option == "wait":  # not running yet: no start
                self.stop_run(task.unprepare(now), "requeued")
                continue
            if task.state not in ("running", "preparing"):
                continue
            if option == "requeue":
                self.requeue_task(task, now)
            elif option == "terminate":
                self.terminate_task(task, now, "The task was terminated because its job was "
                                               "disabled")
        job.begin("disabling", "disabled", now, self.settings.transition_delay)
        return job

    def enable_job(self, job_id: str) -> Job:
        job = self.job(job_id)
        self.require_job_open(job)
        if job.state != "disabled":
            raise exc.OperationInvalidForCurrentState(
                f"Job {job.id} is {job.state}; only a disabled job can be enabled.")
        now = self.now()
        job.touch(now)
        job.begin("enabling", "active", now, self.settings.transition_delay)
        return job

    def terminate_job(self, job_id: str, reason: str | None) -> Job:
        job = self.job(job_id)
        self.require_job_open(job)
        now = self.now()
        job.touch(now)
        self._terminate(job, reason or "UserTerminate", now)
        return job

    def _terminate(self, job: Job, reason: str, now: float) -> None:
        job.terminate_reason = reason
        for task in list(job.tasks.values()):
            if task.state in ("running", "preparing"):
                self.terminate_task(task, now, "The task was ended because its job was "
                                               "terminated")
        self._stop_preps(job)
        job.begin("terminating", "completed", now, self.settings.transition_delay)

    def _stop_preps(self, job: Job) -> None:
        """An ending job's preparation tasks still running are stopped (its release tasks,
        run by `settle_jobs`, are what the service runs at the end)."""
        for rec in job.preps.values():
            self.stop_run(rec.prep_run, "terminated")

    def _end(self, job: Job, reason: str, now: float) -> None:
        """A job rule ends the job: at once, or through `terminating` while release tasks
        run (a job is not completed before its release tasks end)."""
        if job.release_task is not None and any(r.needs_release() for r in job.preps.values()):
            self._terminate(job, reason, now)
        else:
            job.complete(now, reason)

    def delete_job(self, job_id: str) -> None:
        job = self.job(job_id)
        if job.state == "deleting":
            raise exc.JobBeingDeleted(values={"JobId": job.id})
        now = self.now()
        for task in job.tasks.values():
            self.stop_run(task.run_id, "deleted")
            task.run_id = None
        self._stop_preps(job)
        job.begin("deleting", "gone", now, self.settings.transition_delay)

    def task_counts(self, job_id: str) -> dict[str, dict[str, int]]:
        return self.job(job_id).task_counts()

    # --- rules ----------------------------------------------------------------------------

    def check_job_rules(self, job: Job, now: float) -> None:
        """Rules evaluated after every change and on every tick."""
        if job.state != "active":
            return
        if job.on_all_tasks_complete == "terminatejob" and job.all_tasks_completed():
            self._end(job, "AllTasksComplete", now)
            return
        limit = job.max_wall_clock
        if limit is not None and now >= job.creation_time + limit:
            for task in list(job.tasks.values()):
                if task.state == "running":
                    self.terminate_task(task, now, "The task was ended because its job "
                                                   "reached its maxWallClockTime")
            self._end(job, "MaxWallClockTimeExpiry", now)

    def apply_task_failure(self, job: Job, task: Task, reason: str, exit_code: int | None,
                           now: float) -> None:
        """onTaskFailure=performexitoptionsjobaction: act on the failed task's jobAction."""
        if job.on_task_failure != "performexitoptionsjobaction" or job.state != "active":
            return
        action = str(exit_options(task, reason, exit_code).get("jobAction", "none")).lower()
        if action == "terminate":
            self._terminate(job, "TaskFailed", now)
        elif action == "disable":
            for other in list(job.tasks.values()):
                self.requeue_task(other, now)
            job.begin("disabling", "disabled", now, self.settings.transition_delay)

    def settle_jobs(self, now: float) -> None:
        """Finish due transient states, apply job rules (called on every scheduler tick)."""
        for job in list(self.jobs.values()):
            if job.pending is not None and job.release_task is not None:
                job.awaiting_release = self.releases_outstanding(job, now)
                if job.awaiting_release:
                    continue
            if job.settle(now) == "gone":
                del self.jobs[job.key]
                for pool in self.pools.values():
                    for node in pool.nodes.values():
                        self.remove_tree(node.root / "workitems" / job.id)
                continue
            self.check_job_rules(job, now)

    def next_job_deadline(self) -> float | None:
        deadlines = [j.pending[0] for j in self.jobs.values()
                     if j.pending and not j.awaiting_release]
        deadlines += [j.creation_time + j.max_wall_clock for j in self.jobs.values()
                      if j.state == "active" and j.max_wall_clock is not None]
        return min(deadlines) if deadlines else None


def _check_parallel(spec: dict[str, Any]) -> None:
    if spec.get("maxParallelTasks") == 0:
        raise exc.InvalidPropertyValue(
            "The value provided for property 'maxParallelTasks' is invalid: it must be -1 "
            "(unlimited) or greater than 0.", {"PropertyName": "maxParallelTasks"})


def _check_prep_release(spec: dict[str, Any]) -> None:
    """What the service checks of a job's preparation and release tasks at create time
    (REST `JobReleaseTask`: a release task needs a preparation task; its maxWallClockTime
    is at most 15 minutes, else 400)."""
    prep, release = spec.get("jobPreparationTask"), spec.get("jobReleaseTask")
    if release is not None and prep is None:
        raise exc.InvalidPropertyValue(
            "The value provided for property 'jobReleaseTask' is invalid: a job release task "
            "cannot be specified without a job preparation task.",
            {"PropertyName": "jobReleaseTask"})
    for name, task in (("jobPreparationTask", prep), ("jobReleaseTask", release)):
        if task is None:
            continue
        if task.get("id") is not None and not wire.valid_id(task["id"]):
            raise exc.InvalidPropertyValue(
                f"The value provided for property '{name}.id' is invalid: ids must be 1-64 "
                f"characters of letters, digits, hyphens and underscores (got "
                f"{task['id']!r}).", {"PropertyName": f"{name}.id"})
        if task.get("resourceFiles"):
            check_resource_files(task["resourceFiles"], f"{name}.resourceFiles")
    if release is not None:
        limit = _duration(release.get("maxWallClockTime"))
        if release.get("maxWallClockTime") is not None and (
                limit is None or limit > RELEASE_MAX_WALL_CLOCK):
            raise exc.InvalidPropertyValue(
                "The value provided for property 'jobReleaseTask.maxWallClockTime' is invalid: "
                "a job release task may run at most 15 minutes (PT15M).",
                {"PropertyName": "jobReleaseTask.maxWallClockTime"})
