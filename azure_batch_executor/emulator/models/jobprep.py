"""Job preparation and release tasks: what the service keeps per (job, node), and its JSON.

Role: `NodePrep` records a job's preparation and release tasks on one compute node: the
`jobPreparationTaskExecutionInfo` and `jobReleaseTaskExecutionInfo` of that node (one item
of `list_job_preparation_and_release_task_status`), whether the node may run the job's
tasks, and whether the preparation must run again. The operations that drive it are in
`prep_ops.py`. The service's rules it encodes (docs/dev/emulator-rest.md, "Job preparation
and release tasks"), from the Batch documentation:

- the preparation task runs on a node before the first task of the job scheduled there,
  once per node (learn.microsoft.com/azure/batch/batch-job-prep-release; REST
  `JobPreparationTask`);
- `waitForSuccess` (default true): the job's tasks there wait (`preparing`); when it
  fails after its retries (`constraints.maxTaskRetryCount`) they go back to `active` and
  the node never runs the job's tasks until it is reimaged; the node stays usable for
  other jobs (REST `JobPreparationTask.waitForSuccess`, `TaskState.preparing`;
  learn.microsoft.com/azure/batch/batch-job-task-error-checking);
- after a reboot it runs again before the job's next task there if
  `rerunOnNodeRebootAfterSuccess` (default true) or if it had not completed; after a
  reimage always, and a node reimaged after its preparation gets no release task unless
  a task of the job runs there again (REST `JobPreparationTask`, `JobReleaseTask`);
- the release task runs when the job ends (terminate, delete, job rules) on each node
  where tasks of the job ran and the preparation task ran to completion; the job is not
  completed until every release task has ended, whatever its result; it takes no slot
  and `maxWallClockTime` is at most 15 minutes (REST `JobReleaseTask`).

Imports: the standard library, `..wire` and `.tasks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import wire
from .tasks import failure_info

PREP_DEFAULT_ID = "jobpreparation"   # the service's default ids (REST JobPreparationTask.id,
RELEASE_DEFAULT_ID = "jobrelease"    # JobReleaseTask.id)
RELEASE_MAX_WALL_CLOCK = 15 * 60.0   # seconds: the default and the maximum of a release task


def prep_id(spec: dict[str, Any]) -> str:
    return str(spec.get("id") or PREP_DEFAULT_ID)


def release_id(spec: dict[str, Any]) -> str:
    return str(spec.get("id") or RELEASE_DEFAULT_ID)


@dataclass
class NodePrep:
    """A job's preparation and release tasks on one node (kept after the node leaves)."""

    seq: int  # position in the job's list (creation order: the paging cursor)
    pool_id: str
    node_id: str
    prep: dict[str, Any] | None = None  # jobPreparationTaskExecutionInfo
    prep_run: str | None = None  # the preparation attempt in flight
    prep_retries: int = 0
    prep_ok: bool = False  # the last preparation completed with success
    prep_completed: bool = False  # a preparation ran to completion here (any result)
    blocked: bool = False  # failed with waitForSuccess: no task of the job runs here
    rerun: bool = False  # run again before the job's next task here (reboot, interruption)
    tasks_ran: bool = False  # a task of the job started here
    release: dict[str, Any] | None = None  # jobReleaseTaskExecutionInfo
    release_run: str | None = None
    release_done: bool = False

    def ready(self) -> bool:
        """The job's tasks may start here without waiting for a preparation."""
        return self.prep_ok and not self.rerun and self.prep_run is None

    def needs_release(self) -> bool:
        return self.prep_completed and self.tasks_ran and not self.release_done

    def started(self, what: str, now: float, directory: str, retries: int = 0) -> None:
        """An attempt of the preparation ("prep") or release task began."""
        info: dict[str, Any] = {"state": "running", "startTime": wire.iso(now),
                                "taskRootDirectory": directory}
        if what == "prep":
            info["retryCount"] = retries
            if retries:
                info["lastRetryTime"] = wire.iso(now)
            self.prep = info
        else:
            self.release = info

    def ended(self, what: str, now: float, exit_code: int | None,
              failure: tuple[str, str, str] | None) -> None:
        """The attempt completed: `failure` is (category, code, message) or None."""
        info = self.prep if what == "prep" else self.release
        if info is None:
            return
        info.update({"state": "completed", "endTime": wire.iso(now),
                     "result": "failure" if failure else "success"})
        info.pop("exitCode", None)
        info.pop("failureInfo", None)
        if exit_code is not None:
            info["exitCode"] = exit_code
        if failure is not None:
            info["failureInfo"] = failure_info(*failure)

    def to_json(self, base_url: str, casing: Any) -> dict[str, Any]:
        node_url = f"{base_url}/pools/{self.pool_id}/nodes/{self.node_id}"
        doc: dict[str, Any] = {"poolId": self.pool_id, "nodeId": self.node_id,
                               "nodeUrl": node_url}
        for key, info in (("jobPreparationTaskExecutionInfo", self.prep),
                          ("jobReleaseTaskExecutionInfo", self.release)):
            if info is None:
                continue
            out = dict(info)
            out["taskRootDirectoryUrl"] = f"{node_url}/files/{info['taskRootDirectory']}"
            if "failureInfo" in out:
                out["failureInfo"] = dict(out["failureInfo"],
                                          category=casing(out["failureInfo"]["category"]))
            doc[key] = out
        return doc
