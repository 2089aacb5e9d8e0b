"""Batch jobs: the job state machine (docs/dev/emulator-rest.md), its tasks, the BatchJob JSON.

Role: `Job` owns its tasks (in creation order, which is also the paging cursor order),
an index of its active tasks sorted by creation order (what the scheduler scans), the
job-level settings the scheduler obeys (priority, maxParallelTasks, pool) and the rules
that end a job (`onAllTasksComplete`, terminate, delete). Task counts derive from the
current task states.

Imports: the standard library, `..wire` and sibling model modules.
"""

from __future__ import annotations

import bisect
import collections
from collections.abc import Iterator
from typing import Any, ClassVar

from .. import wire
from .base import Entity
from .jobprep import NodePrep, prep_id, release_id
from .tasks import Task, _duration

WRITABLE_DEFAULTS: dict[str, Any] = {
    "priority": 0,
    "allowTaskPreemption": False,
    "maxParallelTasks": -1,
    "onAllTasksComplete": "noaction",
}


class Job(Entity):
    TRANSITIONS: ClassVar[dict[str, frozenset[str]]] = {
        "active": frozenset({"disabling", "terminating", "completed", "deleting"}),
        "disabling": frozenset({"disabled", "terminating", "deleting"}),
        "disabled": frozenset({"enabling", "terminating", "deleting"}),
        "enabling": frozenset({"active", "terminating", "deleting"}),
        "terminating": frozenset({"completed", "deleting"}),
        "completed": frozenset({"deleting"}),
        "deleting": frozenset(),
    }

    def __init__(self, spec: dict[str, Any], seq: int, now: float) -> None:
        super().__init__(spec["id"], now, "active")
        self.seq = seq
        self.spec = {k: v for k, v in spec.items() if k != "id"}
        self.start_time = now
        self.end_time: float | None = None
        self.terminate_reason: str | None = None
        self.pending: tuple[float, str] | None = None  # (deadline, state) of a transient state
        self.tasks: dict[str, Task] = {}
        self._order_seqs: list[int] = []
        self._order: list[Task] = []
        self._active_seqs: list[int] = []
        self._active: dict[int, Task] = {}
        self.counts: collections.Counter[str] = collections.Counter()  # tasks per state
        self.preps: dict[str, NodePrep] = {}  # node key -> job preparation/release record
        self.awaiting_release = False  # a due transient state waits for release tasks

    # --- settings -----------------------------------------------------------------------

    @property
    def pool_id(self) -> str | None:
        return (self.spec.get("poolInfo") or {}).get("poolId")

    @property
    def priority(self) -> int:
        return int(self.spec.get("priority", 0))

    @property
    def max_parallel(self) -> int:
        return int(self.spec.get("maxParallelTasks", -1))

    @property
    def on_all_tasks_complete(self) -> str:
        return str(self.spec.get("onAllTasksComplete", "noaction")).lower()

    @property
    def on_task_failure(self) -> str:
        return str(self.spec.get("onTaskFailure", "noaction")).lower()

    @property
    def uses_dependencies(self) -> bool:
        return bool(self.spec.get("usesTaskDependencies", False))

    @property
    def max_wall_clock(self) -> float | None:
        return _duration((self.spec.get("constraints") or {}).get("maxWallClockTime"))

    @property
    def max_task_retries(self) -> int:
        return int((self.spec.get("constraints") or {}).get("maxTaskRetryCount", 0))

    @property
    def common_env(self) -> list[dict[str, Any]]:
        return list(self.spec.get("commonEnvironmentSettings") or [])

    @property
    def prep_task(self) -> dict[str, Any] | None:
        return self.spec.get("jobPreparationTask")

    @property
    def release_task(self) -> dict[str, Any] | None:
        return self.spec.get("jobReleaseTask")

    def blocked_nodes(self) -> frozenset[str]:
        """Keys of the nodes where this job's tasks may not run (failed preparation)."""
        return frozenset(k for k, rec in self.preps.items() if rec.blocked)

    def update(self, changes: dict[str, Any], now: float, *, replace: bool = False) -> None:
        """PATCH (only given properties change) or PUT (writable properties reset first)."""
        if replace:
            for key in ("priority", "allowTaskPreemption", "maxParallelTasks", "constraints",
                        "onAllTasksComplete", "metadata", "networkConfiguration"):
                self.spec.pop(key, None)
        self.spec.update(changes)
        self.touch(now)

    # --- tasks ----------------------------------------------------------------------------

    def add_task(self, task: Task) -> None:
        self.tasks[task.key] = task
        self._order_seqs.append(task.seq)
        self._order.append(task)
        task.observer = self._observe
        self.counts[task.state] += 1
        self._set_active(task, task.state == "active")

    def remove_task(self, task: Task) -> None:
        self.tasks.pop(task.key, None)
        i = bisect.bisect_left(self._order_seqs, task.seq)
        if i < len(self._order_seqs) and self._order_seqs[i] == task.seq:
            del self._order_seqs[i]
            del self._order[i]
        self._set_active(task, False)
        self.counts[task.state] -= 1
        task.observer = None

    def _observe(self, task: Entity, old: str, new: str) -> None:
        self.counts[old] -= 1
        self.counts[new] += 1
        assert isinstance(task, Task)
        self._set_active(task, new == "active")

    @property
    def running(self) -> int:
        """Tasks on a node (`preparing` ones hold their slots too): what maxParallelTasks caps."""
        return self.counts["running"] + self.counts["preparing"]

    def _set_active(self, task: Task, active: bool) -> None:
        present = task.seq in self._active
        if active and not present:
            bisect.insort(self._active_seqs, task.seq)
            self._active[task.seq] = task
        elif not active and present:
            del self._active[task.seq]
            i = bisect.bisect_left(self._active_seqs, task.seq)
            del self._active_seqs[i]

    def active_tasks(self) -> Iterator[Task]:
        """Active tasks in creation order; stays correct while tasks change state."""
        last = -1
        while True:
            i = bisect.bisect_right(self._active_seqs, last)
            if i >= len(self._active_seqs):
                return
            last = self._active_seqs[i]
            yield self._active[last]

    def has_active(self) -> bool:
        return bool(self._active_seqs)

    def tasks_from(self, position: int) -> Iterator[tuple[int, Task]]:
        """(cursor position, task) pairs in creation order, starting at `position`."""
        i = bisect.bisect_left(self._order_seqs, position)
        yield from zip(self._order_seqs[i:], self._order[i:], strict=True)

    def all_tasks_completed(self) -> bool:
        return self.counts["completed"] == len(self.tasks)

    def task_counts(self) -> dict[str, dict[str, int]]:
        keys = ("active", "running", "completed", "succeeded", "failed")
        counts = dict.fromkeys(keys, 0)
        slots = dict.fromkeys(keys, 0)
        for t in self.tasks.values():
            bucket = "running" if t.state in ("running", "preparing") else t.state
            counts[bucket] += 1
            slots[bucket] += t.required_slots
            if t.state == "completed":
                outcome = "succeeded" if t.result == "success" else "failed"
                counts[outcome] += 1
                slots[outcome] += t.required_slots
        return {"taskCounts": counts, "taskSlotCounts": slots}

    # --- transitions ----------------------------------------------------------------------

    def begin(self, transient: str, final: str, now: float, delay: float) -> None:
        """Enter a transient state (terminating, deleting, ...) that ends in `final`."""
        self._move_to(transient, now)
        self.pending = (now + delay, final)

    def complete(self, now: float, reason: str) -> None:
        self._move_to("completed", now)
        self.end_time = now
        self.terminate_reason = reason
        self.pending = None

    def settle(self, now: float) -> str | None:
        """Finish a due transient state; returns the state entered ("gone" for deleted)."""
        if self.pending is None or self.pending[0] > now:
            return None
        final = self.pending[1]
        self.pending = None
        if final == "gone":
            return "gone"
        if final == "completed":
            self.complete(now, self.terminate_reason or "UserTerminate")
        else:
            self._move_to(final, now)
        return final

    # --- REST JSON ------------------------------------------------------------------------

    def to_json(self, base_url: str) -> dict[str, Any]:
        doc = self.base_json(f"{base_url}/jobs/{self.id}")
        spec = dict(self.spec)
        for key, value in WRITABLE_DEFAULTS.items():
            spec.setdefault(key, value)
        spec.setdefault("usesTaskDependencies", False)
        spec.setdefault("onTaskFailure", "noaction")
        constraints = dict(spec.get("constraints") or {})
        constraints["maxWallClockTime"] = wire.format_duration(self.max_wall_clock)
        constraints["maxTaskRetryCount"] = self.max_task_retries
        spec["constraints"] = constraints
        if self.prep_task is not None:  # the service fills in the default ids
            spec["jobPreparationTask"] = dict(self.prep_task, id=prep_id(self.prep_task))
        if self.release_task is not None:
            spec["jobReleaseTask"] = dict(self.release_task, id=release_id(self.release_task))
        doc.update(spec)
        info: dict[str, Any] = {"startTime": wire.iso(self.start_time)}
        if self.end_time is not None:
            info["endTime"] = wire.iso(self.end_time)
        if self.pool_id is not None:
            info["poolId"] = self.pool_id
        if self.terminate_reason is not None and self.state == "completed":
            info["terminateReason"] = self.terminate_reason
        doc["executionInfo"] = info
        return doc
