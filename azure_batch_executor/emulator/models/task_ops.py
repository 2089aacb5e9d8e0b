"""Task operations: add (single and collection), replace, delete, terminate, reactivate, files.

Role: the task half of the backend. Adding a task checks what the service checks at add
time (ids, resource/output file rules, `containerSettings` against a known pool,
`dependsOn` needing `usesTaskDependencies`, job actions needing `performexitoptions
jobaction`) and inserts it in creation order. `task_files_root` / `node_files_root`
locate the directories the file APIs read.

Imports: the standard library, `..exceptions`, `..wire` and sibling model modules.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

from .. import exceptions as exc
from .. import wire
from .core import Core
from .jobprep import prep_id, release_id
from .jobs import Job
from .runtime import task_dir
from .tasks import Task, exit_options


def _invalid(prop: str, reason: str) -> exc.BatchError:
    return exc.InvalidPropertyValue(f"The value provided for property '{prop}' is invalid: "
                                    f"{reason}.", {"PropertyName": prop, "Reason": reason})


def _check_relative(prop: str, path: str) -> None:
    norm = posixpath.normpath(path.replace("\\", "/"))
    if path.startswith(("/", "\\")) or norm == ".." or norm.startswith("../"):
        raise _invalid(prop, f"{path!r} must be a relative path inside the task working "
                             "directory")


_OCTAL = frozenset("01234567")


def check_resource_files(files: list[dict[str, Any]], prop: str = "resourceFiles") -> None:
    for i, rf in enumerate(files):
        get = rf.get
        http = bool(get("httpUrl"))
        if http + bool(get("storageContainerUrl")) + bool(get("autoStorageContainerName")) != 1:
            raise _invalid(f"{prop}[{i}]", "exactly one of httpUrl, storageContainerUrl and "
                                           "autoStorageContainerName must be specified")
        file_path = get("filePath")
        if http and not file_path:
            raise exc.MissingRequiredProperty(
                f"The property '{prop}[{i}].filePath' is required with httpUrl.",
                {"PropertyName": f"{prop}[{i}].filePath"})
        if http and get("blobPrefix"):
            raise _invalid(f"{prop}[{i}].blobPrefix", "blobPrefix is only valid with "
                                                      "storageContainerUrl or "
                                                      "autoStorageContainerName")
        if file_path:
            _check_relative_at(prop, i, file_path)
        mode = get("fileMode")
        if mode is not None and (not mode or not _OCTAL.issuperset(mode)):
            raise _invalid(f"{prop}[{i}].fileMode", f"{mode!r} is not an octal file mode")


def _check_relative_at(prop: str, i: int, path: str) -> None:
    # without a ".." component the normalized path cannot leave the directory
    if ".." in path or path.startswith(("/", "\\")):
        _check_relative(f"{prop}[{i}].filePath", path)


class TaskOps(Core):
    # --- add ------------------------------------------------------------------------------

    def add_task(self, job_id: str, spec: dict[str, Any]) -> Task:
        job = self.job(job_id)
        self.require_job_open(job)
        task = self._new_task(job, spec)
        job.add_task(task)
        return task

    def add_task_collection(self, job_id: str,
                            items: list[dict[str, Any] | exc.BatchError]
                            ) -> list[tuple[str, Task | exc.BatchError]]:
        """Per-task results in request order; whole-request problems raise."""
        job = self.job(job_id)
        self.require_job_open(job)
        results: list[tuple[str, Task | exc.BatchError]] = []
        for item in items:
            if isinstance(item, exc.BatchError):
                results.append((str(item.values.get("TaskId", "")), item))
                continue
            try:
                task = self._new_task(job, item)
            except exc.BatchError as err:
                results.append((str(item.get("id", "")), err))
                continue
            job.add_task(task)
            results.append((task.id, task))
        return results

    def _new_task(self, job: Job, spec: dict[str, Any]) -> Task:
        task_id = spec["id"]
        if not wire.valid_id(task_id):
            raise _invalid("id", f"ids must be 1-64 characters of letters, digits, hyphens and "
                                 f"underscores (got {task_id!r})")
        if task_id.lower() in job.tasks:
            raise exc.TaskExists(values={"TaskId": task_id})
        if job.prep_task is not None and task_id.lower() == prep_id(job.prep_task).lower():
            raise exc.TaskIdSameAsJobPreparationTask(values={"TaskId": task_id})
        if job.release_task is not None and \
                task_id.lower() == release_id(job.release_task).lower():
            raise exc.TaskIdSameAsJobReleaseTask(values={"TaskId": task_id})
        resource_files = spec.get("resourceFiles")
        if resource_files:
            check_resource_files(resource_files)
            self._check_auto_storage(resource_files)
        for i, out in enumerate(spec.get("outputFiles") or ()):
            if not (out.get("destination") or {}).get("container"):
                raise exc.MissingRequiredProperty(
                    f"The property 'outputFiles[{i}].destination.container' is required.",
                    {"PropertyName": f"outputFiles[{i}].destination.container"})
        pool = self.pools.get((job.pool_id or "").lower())
        if pool is not None:
            has = bool(spec.get("containerSettings"))
            if has != pool.has_containers:
                raise _invalid("containerSettings",
                               "the pool has a containerConfiguration, so every task needs "
                               "containerSettings" if pool.has_containers else
                               "the pool has no containerConfiguration, so tasks must not "
                               "specify containerSettings")
        if spec.get("dependsOn") and not job.uses_dependencies:
            raise exc.TaskDependenciesNotSpecifiedOnJob(values={"JobId": job.id})
        conditions = spec.get("exitConditions")
        if conditions and job.on_task_failure == "noaction" and _has_job_action(conditions):
            raise _invalid("exitConditions", "exitOptions.jobAction requires the job's "
                                             "onTaskFailure to be performexitoptionsjobaction")
        return Task(job.id, self.next_seq(), spec, now=self.now(),
                    default_max_retries=job.max_task_retries, eligible=self.eligible_time)

    def _check_auto_storage(self, files: list[dict[str, Any]]) -> None:
        if self.settings.auto_storage or self.settings.loose:
            return
        for i, rf in enumerate(files):
            if rf.get("autoStorageContainerName"):
                raise exc.InvalidPropertyValue(
                    exc.with_loose_hint(
                        f"The property 'resourceFiles[{i}].autoStorageContainerName' needs the "
                        "account's linked storage, which this emulator has not been given "
                        "(BatchEmulator(auto_storage_container_url=...)); use storageContainerUrl "
                        "with a SAS instead."),
                    {"PropertyName": f"resourceFiles[{i}].autoStorageContainerName"})

    # --- single-task operations -------------------------------------------------------------

    def replace_task(self, job_id: str, task_id: str, constraints: dict[str, Any]) -> Task:
        job, task = self.task(job_id, task_id)
        self.require_job_open(job)
        if task.state == "completed":
            raise exc.TaskCompleted(values={"TaskId": task.id})
        task.replace_constraints(constraints, self.now())
        return task

    def delete_task(self, job_id: str, task_id: str) -> None:
        job, task = self.task(job_id, task_id)
        self.stop_run(task.run_id, "deleted")
        task.run_id = None
        located = self.node_of(task)
        if located is not None:
            self.remove_tree(task_dir(located[1].root, task.job_id, task.id))
        job.remove_task(task)

    def terminate_task_api(self, job_id: str, task_id: str) -> Task:
        job, task = self.task(job_id, task_id)
        if task.state == "completed":
            raise exc.TaskCompleted(values={"TaskId": task.id})
        if job.state == "deleting":
            raise exc.JobBeingDeleted(values={"JobId": job.id})
        now = self.now()
        self.terminate_task(task, now, "The task was ended by user request")
        task.touch(now)
        return task

    def reactivate_task(self, job_id: str, task_id: str) -> Task:
        job, task = self.task(job_id, task_id)
        self.require_job_open(job)
        if task.state != "completed":
            raise exc.TaskNotCompleted(values={"TaskId": task.id})
        if task.result == "success":
            raise exc.TaskSucceeded(values={"TaskId": task.id})
        task.reactivate(self.now())
        return task

    # --- dependencies -------------------------------------------------------------------------

    def dependencies_satisfied(self, job: Job, task: Task) -> bool:
        for dep_id in task.depends_on_ids():
            dep = job.tasks.get(dep_id.lower())
            if dep is None or dep.state != "completed":
                return False
            if dep.result != "success":
                reason = "exited" if dep.exit_code is not None else "preprocessing"
                action = exit_options(dep, reason, dep.exit_code).get("dependencyAction")
                if str(action).lower() != "satisfy":
                    return False
        return True

    # --- files ----------------------------------------------------------------------------------

    def task_files_root(self, job_id: str, task_id: str) -> Path:
        _, task = self.task(job_id, task_id)
        if task.node_id is None:
            raise exc.TaskFilesUnavailable(
                f"Task {task.id} has not run on a compute node yet, so it has no files.")
        located = self.node_of(task)
        if located is None or task.files_expired(self.now()):
            raise exc.TaskFilesCleanedup(
                f"The files of task {task.id} were removed (its node left the pool or its "
                "retentionTime expired).")
        return task_dir(located[1].root, task.job_id, task.id)

    def node_files_root(self, pool_id: str, node_id: str) -> Path:
        _, node = self.node(pool_id, node_id)
        return node.root


def _has_job_action(conditions: dict[str, Any] | None) -> bool:
    if not conditions:
        return False
    options = [m.get("exitOptions") or {} for m in conditions.get("exitCodes") or []]
    options += [m.get("exitOptions") or {} for m in conditions.get("exitCodeRanges") or []]
    options += [conditions.get(k) or {} for k in ("preProcessingError", "fileUploadError",
                                                  "default")]
    return any(o.get("jobAction") is not None for o in options)
