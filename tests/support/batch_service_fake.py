"""`ScriptedBatch`: a `BatchPort` for the SuperBatch client's unit tests.

The SuperBatch client's tasks are the user's own command lines in a Docker image, which a
unit test cannot run; this fake completes each task as soon as it is added, with an
outcome read off its command line, and writes its outputs into a `MemoryBlobStore`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from azure_batch_executor.cloud.ports import (
    AddResult,
    CompletedTask,
    EnsuredPool,
    JobRecord,
    ListedTask,
    PoolStatus,
    PreparationFailure,
    StartTaskFailure,
    TaskCounts,
)
from support.memory_store import MemoryBlobStore


class ScriptedBatch:
    """A `BatchPort` whose tasks complete as soon as they are added, with an outcome read off
    their command line: "fail" in it fails the task (exit code 3, a traceback in its
    stderr), "no-output" leaves no outputs.pickle; otherwise it succeeds."""

    def __init__(self, store: MemoryBlobStore, pool_exists: bool) -> None:
        self.store = store
        self.pools: set[str] = set()
        self._pool_exists = pool_exists
        self.collections: list[int] = []
        self.completed: list[CompletedTask] = []
        self.jobs: dict[str, str] = {}
        self.ensure_pool_calls = 0
        self.registries: list[dict[str, str]] = []  # given to the last ensure_pool()

    def pool_exists(self, pool_id: str | None = None) -> bool:
        return self._pool_exists

    def ensure_pool(self, registries: Sequence[Mapping[str, Any]] = ()) -> EnsuredPool:
        self.ensure_pool_calls += 1
        self.registries = [dict(r) for r in registries]
        created, self._pool_exists = not self._pool_exists, True
        return EnsuredPool(4, created)

    def pool_status(self, full: bool = True) -> PoolStatus | None:
        return PoolStatus("pool", {"idle": 4}, full=full) if self._pool_exists else None

    def start_task_failure(self) -> StartTaskFailure | None:
        return None

    def nodes_elsewhere(self, dedicated: bool) -> int:
        return 0

    def create_job(self, job_id: str, environment: Mapping[str, str] | None = None,
                   preparation: Mapping[str, Any] | None = None,
                   max_parallel_tasks: int | None = None) -> None:
        self.jobs[job_id] = "active"

    def add_collection(self, job_id: str, tasks: Sequence[str]) -> list[AddResult]:
        assert len(tasks) <= 100
        bodies = [json.loads(text) for text in tasks]
        self.collections.append(len(bodies))
        for t in bodies:
            self._complete(t)
        return [AddResult(t["id"], True, False) for t in bodies]

    def _complete(self, task: dict[str, Any]) -> None:
        command = task["commandLine"]
        ok = "fail" not in command
        outputs = task["outputFiles"]
        for o in outputs:
            blob = o["destination"]["container"]["path"]
            if o["filePattern"] == "../stderr.txt":
                self.store.blobs[blob] = b"" if ok else b"Traceback ...\nValueError: bad seed 12\n"
            elif o["filePattern"] != "../stdout.txt" and ok and "no-output" not in command:
                self.store.blobs[blob] = task["id"].encode()
        self.completed.append(CompletedTask(
            task_id=task["id"], transition_time=dt.datetime.now(dt.timezone.utc),
            result="success" if ok else "failure", exit_code=0 if ok else 3,
            failure_code=None if ok else "FailureExitCode",
            failure_message=None if ok else "The task exited with a failure exit code",
        ))

    def task_counts(self, job_id: str) -> tuple[int, int, int]:
        return 0, 0, len(self.completed)

    def completed_since(self, job_id: str, since: dt.datetime | None) -> list[CompletedTask]:
        return [t for t in self.completed if since is None or t.transition_time > since]

    def transitions_since(self, job_id: str, since: dt.datetime | None) -> list[CompletedTask]:
        return self.completed_since(job_id, since)  # its tasks complete as they are added

    def preparation_failures(self, job_id: str) -> list[PreparationFailure]:
        return []

    def check_alive(self, job_id: str) -> None:
        pass

    def terminate_job(self, job_id: str, reason: str = "UserTerminate") -> None:
        self.jobs[job_id] = "terminated"

    def terminate_task(self, job_id: str, task_id: str) -> None:
        pass

    def delete_job(self, job_id: str) -> None:
        del self.jobs[job_id]

    def delete_pool(self) -> None:
        self._pool_exists = False

    def job_record(self, job_id: str) -> JobRecord | None:
        state = self.jobs.get(job_id)
        return None if state is None else JobRecord(job_id, state, None, "pool")

    def list_jobs(self) -> list[JobRecord]:
        return [JobRecord(job_id, state, None, "pool") for job_id, state in self.jobs.items()]

    def job_task_counts(self, job_id: str) -> TaskCounts:
        failed = sum(t.result == "failure" for t in self.completed)
        return TaskCounts(0, 0, len(self.completed), len(self.completed) - failed, failed)

    def list_job_tasks(self, job_id: str) -> list[ListedTask]:
        return [ListedTask(**vars(t)) for t in self.completed]

    def close(self) -> None:
        pass
