"""Batch tasks: the task state machine (docs/dev/emulator-rest.md) and the BatchTask JSON.

Role: `Task` owns one task's definition (as validated from the request) and its
execution record (`executionInfo`, `nodeInfo`). Each row of that page's transition table
is one method: `start` (row 2; `prepare` / `unprepare` around a job preparation task),
`finish` (rows 3-8), `requeue` (rows 10-11), `terminate` (row 9), `reactivate` (row 12).
The allowed state changes are the data in `TRANSITIONS`. Each entry into `active` sets
`eligible_at`, the earliest time the scheduler may place the task (the emulated
scheduling latency, `Settings.scheduling_latency`). `exit_options` resolves a
task's `exitConditions` for job actions.

Imports: the standard library, `..wire`, `..runner` (data classes only) and `.base`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from .. import wire
from ..runner import RunOutcome
from .base import Entity

DEFAULT_RETENTION = 7 * 86400.0


def failure_info(category: str, code: str, message: str) -> dict[str, Any]:
    return {"category": category, "code": code, "message": message,
            "details": [{"name": "Message", "value": message}]}


class Task(Entity):
    TRANSITIONS: ClassVar[dict[str, frozenset[str]]] = {
        "active": frozenset({"preparing", "running", "completed"}),
        "preparing": frozenset({"running", "active", "completed"}),
        "running": frozenset({"completed", "active"}),
        "completed": frozenset({"active"}),
    }

    def __init__(self, job_id: str, seq: int, spec: dict[str, Any], *, now: float,
                 default_max_retries: int,
                 eligible: Callable[[float], float] | None = None) -> None:
        super().__init__(spec["id"], now, "active")
        # scheduling latency: `eligible(t)` is when a task entering `active` at t may first
        # be placed (0.0: at once); recomputed on every entry (add, retry, requeue, ...)
        self._eligible = eligible
        self.eligible_at: float = eligible(now) if eligible is not None else 0.0
        self.job_id = job_id
        self.seq = seq
        self.spec = spec  # the validated request body, echoed on GET
        constraints = spec.get("constraints") or {}
        self.max_wall_clock: float | None = _duration(constraints.get("maxWallClockTime"))
        self.retention: float = _duration(constraints.get("retentionTime")) or DEFAULT_RETENTION
        self.max_retries: int = constraints.get("maxTaskRetryCount", default_max_retries)
        self.required_slots: int = spec.get("requiredSlots", 1)
        # executionInfo
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.exit_code: int | None = None
        self.result: str | None = None
        self.failure: dict[str, Any] | None = None
        self.retry_count = 0
        self.requeue_count = 0
        self.last_retry_time: float | None = None
        self.last_requeue_time: float | None = None
        # placement
        self.pool_id: str | None = None
        self.node_id: str | None = None
        self.run_id: str | None = None  # the attempt in flight, if any
        self.terminated_run_id: str | None = None  # attempt stopped by terminate()
        self.attempts = 0

    # --- definition -------------------------------------------------------------------

    @property
    def command_line(self) -> str:
        return str(self.spec["commandLine"])

    def depends_on_ids(self) -> list[str]:
        deps = self.spec.get("dependsOn") or {}
        ids = [str(t) for t in deps.get("taskIds") or []]
        for r in deps.get("taskIdRanges") or []:
            ids.extend(str(i) for i in range(int(r["start"]), int(r["end"]) + 1))
        return ids

    def replace_constraints(self, constraints: dict[str, Any], now: float) -> None:
        self.spec["constraints"] = constraints
        self.max_wall_clock = _duration(constraints.get("maxWallClockTime"))
        self.retention = _duration(constraints.get("retentionTime")) or DEFAULT_RETENTION
        if "maxTaskRetryCount" in constraints:
            self.max_retries = constraints["maxTaskRetryCount"]
        self.touch(now)

    # --- transitions (rows of the task state machine) ------------------------------------

    def _move_to(self, state: str, now: float) -> None:
        super()._move_to(state, now)
        if state == "active":  # back in the queue: a new scheduling latency
            self.eligible_at = self._eligible(now) if self._eligible is not None else 0.0

    def start(self, now: float, pool_id: str, node_id: str, run_id: str) -> None:
        """Row 2: scheduled on a node."""
        self._move_to("running", now)
        self.pool_id, self.node_id, self.run_id = pool_id, node_id, run_id
        self.start_time = now
        self.terminated_run_id = None
        self.attempts += 1
        if self.retry_count > 0:
            self.last_retry_time = now
        self.end_time = self.exit_code = self.result = self.failure = None

    def prepare(self, now: float, pool_id: str, node_id: str, run_id: str) -> None:
        """Row 2a: placed on a node whose job preparation task has not succeeded yet; the
        task holds its slots there and waits (`preparing`, counted as running)."""
        self._move_to("preparing", now)
        self.pool_id, self.node_id, self.run_id = pool_id, node_id, run_id
        self.terminated_run_id = None
        self.end_time = self.exit_code = self.result = self.failure = None

    def unprepare(self, now: float) -> str | None:
        """Row 2b: the job preparation task failed on the node: back to active, eligible for
        another node; the retry and requeue counts are unchanged. Returns the run to drop."""
        run_id, self.run_id = self.run_id, None
        self._move_to("active", now)
        return run_id

    def finish(self, outcome: RunOutcome, now: float) -> str:
        """Rows 3-8: an attempt ended. Returns "retried" or "completed"."""
        self.run_id = None
        reason = outcome.reason
        if reason == "exited" and outcome.exit_code not in (0, None) and self._may_retry():
            self._move_to("active", now)
            self.retry_count += 1
            self.end_time = self.exit_code = self.result = self.failure = None
            return "retried"
        self._move_to("completed", now)
        self.end_time = now
        if reason == "preprocessing":
            self.exit_code = None
        else:
            self.exit_code = outcome.exit_code
        if reason == "exited" and outcome.exit_code == 0:
            self.result, self.failure = "success", None
        elif reason == "exited":
            self.result = "failure"
            self.failure = failure_info(
                "usererror", "FailureExitCode",
                f"The task process exited with an unexpected exit code {outcome.exit_code}")
        else:
            self.result = "failure"
            info = outcome.failure
            if info is None:
                self.failure = failure_info("servererror", "TaskFailed", f"Task {reason}.")
            else:
                self.failure = failure_info(info.category, info.code, info.message)
        return "completed"

    def _may_retry(self) -> bool:
        return self.max_retries == -1 or self.retry_count < self.max_retries

    def requeue(self, now: float, *, bump: bool) -> str | None:
        """Rows 10-11: back to active; returns the run to stop."""
        run_id, self.run_id = self.run_id, None
        self._move_to("active", now)
        if bump:
            self.requeue_count += 1
            self.last_requeue_time = now
        self.end_time = self.exit_code = self.result = self.failure = None
        return run_id

    def terminate(self, now: float, message: str = "Task was ended by user request") -> str | None:
        """Row 9: active/running -> completed (failure, TaskEnded); returns the run to stop."""
        run_id, self.run_id = self.run_id, None
        self.terminated_run_id = run_id
        self._move_to("completed", now)
        self.end_time = now
        self.exit_code = None
        self.result = "failure"
        self.failure = failure_info("usererror", "TaskEnded", message)
        return run_id

    def late_exit_code(self, run_id: str, outcome: RunOutcome) -> None:
        """A terminated attempt's process ended: record its exit code if it ran."""
        if self.state == "completed" and self.terminated_run_id == run_id \
                and self.exit_code is None and outcome.exit_code is not None:
            self.exit_code = outcome.exit_code

    def reactivate(self, now: float) -> None:
        """Row 12: a failed task goes back to active with its retry count reset."""
        self._move_to("active", now)
        self.retry_count = 0
        self.terminated_run_id = None
        self.end_time = self.exit_code = self.result = self.failure = None
        self.touch(now)

    # --- files ---------------------------------------------------------------------------

    def files_expired(self, now: float) -> bool:
        return self.end_time is not None and now > self.end_time + self.retention

    def root_dir_name(self) -> str:
        return f"workitems/{self.job_id}/job-1/{self.id}"

    # --- REST JSON ------------------------------------------------------------------------

    def execution_json(self) -> dict[str, Any]:
        info: dict[str, Any] = {"retryCount": self.retry_count, "requeueCount": self.requeue_count}
        if self.start_time is not None:
            info["startTime"] = wire.iso(self.start_time)
        if self.end_time is not None:
            info["endTime"] = wire.iso(self.end_time)
        if self.exit_code is not None:
            info["exitCode"] = self.exit_code
        if self.failure is not None:
            info["failureInfo"] = dict(self.failure)
        if self.last_retry_time is not None:
            info["lastRetryTime"] = wire.iso(self.last_retry_time)
        if self.last_requeue_time is not None:
            info["lastRequeueTime"] = wire.iso(self.last_requeue_time)
        if self.result is not None:
            info["result"] = self.result
        return info

    def to_json(self, base_url: str, casing: Any) -> dict[str, Any]:
        url = f"{base_url}/jobs/{self.job_id}/tasks/{self.id}"
        doc = self.base_json(url)
        spec = dict(self.spec)
        spec.pop("id", None)
        constraints = dict(spec.get("constraints") or {})
        constraints["maxWallClockTime"] = wire.format_duration(self.max_wall_clock)
        constraints["retentionTime"] = wire.format_duration(self.retention)
        constraints["maxTaskRetryCount"] = self.max_retries
        spec["constraints"] = constraints
        spec.setdefault("requiredSlots", 1)
        spec.setdefault("userIdentity", {"autoUser": {"scope": "pool",
                                                      "elevationLevel": "nonadmin"}})
        if casing.realistic and spec.get("outputFiles"):
            spec["outputFiles"] = [_recase_upload(o, casing) for o in spec["outputFiles"]]
        doc.update(spec)
        doc["executionInfo"] = self.execution_json()
        if self.failure is not None:
            doc["executionInfo"]["failureInfo"]["category"] = casing(self.failure["category"])
        if self.node_id is not None and self.pool_id is not None:
            node_url = f"{base_url}/pools/{self.pool_id}/nodes/{self.node_id}"
            doc["nodeInfo"] = {
                "affinityId": f"TVM:{self.node_id}",
                "nodeUrl": node_url,
                "poolId": self.pool_id,
                "nodeId": self.node_id,
                "taskRootDirectory": self.root_dir_name(),
                "taskRootDirectoryUrl": f"{node_url}/files/{self.root_dir_name()}",
            }
        return doc


def _recase_upload(output: dict[str, Any], casing: Any) -> dict[str, Any]:
    out = dict(output)
    options = dict(out.get("uploadOptions") or {})
    if "uploadCondition" in options:
        options["uploadCondition"] = casing(str(options["uploadCondition"]).lower())
    out["uploadOptions"] = options
    return out


def _duration(value: Any) -> float | None:
    if value is None:
        return None
    seconds = wire.parse_duration(value)
    if seconds is None or seconds >= wire.UNBOUNDED_SECONDS:
        return None
    return seconds


def exit_options(task: Task, outcome_reason: str, exit_code: int | None) -> dict[str, Any]:
    """The `exitOptions` that apply to a finished task, with the service's defaults."""
    cond = task.spec.get("exitConditions") or {}
    chosen: dict[str, Any] | None = None
    if outcome_reason == "preprocessing":
        chosen = cond.get("preProcessingError")
    elif outcome_reason == "upload":
        chosen = cond.get("fileUploadError")
    elif exit_code is not None:
        for mapping in cond.get("exitCodes") or []:
            if mapping["code"] == exit_code:
                chosen = mapping["exitOptions"]
                break
        else:
            for rng in cond.get("exitCodeRanges") or []:
                if rng["start"] <= exit_code <= rng["end"]:
                    chosen = rng["exitOptions"]
                    break
    if chosen is None:
        chosen = cond.get("default")
    options = dict(chosen or {})
    failed = outcome_reason != "exited" or exit_code != 0
    options.setdefault("jobAction", "terminate" if failed else "none")
    options.setdefault("dependencyAction", "block" if failed else "satisfy")
    return options
