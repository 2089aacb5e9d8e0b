"""Test doubles for the emulator's unit tests: a fake task runner and a hand-driven world.

A unique module name (not conftest) so test modules can import it whichever other
conftest.py files pytest collected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from azure_batch_executor.emulator.models import BatchBackend, Settings
from azure_batch_executor.emulator.runner import FailureInfo, RunOutcome, RunSpec
from azure_batch_executor.emulator.scheduler import Scheduler

TERMINATED = FailureInfo("usererror", "TaskEnded", "terminated")


class FakeRunner:
    """Records attempts; `auto(spec)` may end one at once, else it waits for `finish`."""

    def __init__(self) -> None:
        self.auto: Callable[[RunSpec], int | RunOutcome | None] | None = None
        self.specs: list[RunSpec] = []
        self.pending: dict[str, tuple[RunSpec, Callable[[RunOutcome], None]]] = {}
        self.terminated: list[tuple[str, str]] = []
        self.killed: list[str] = []

    def start(self, spec: RunSpec, on_done: Callable[[RunOutcome], None]) -> None:
        self.specs.append(spec)
        result = self.auto(spec) if self.auto else None
        if result is None:
            self.pending[spec.run_id] = (spec, on_done)
            return
        if isinstance(result, int):
            result = RunOutcome(spec.run_id, "exited", result, None, time.time(), time.time())
        on_done(result)

    def finish(self, run_id: str, exit_code: int | None = 0, reason: str = "exited",
               failure: FailureInfo | None = None) -> None:
        _, on_done = self.pending.pop(run_id)
        on_done(RunOutcome(run_id, reason, exit_code, failure, time.time(),  # type: ignore[arg-type]
                           time.time()))

    def running(self) -> list[str]:
        return list(self.pending)

    def terminate(self, run_id: str, reason: str) -> None:
        self.terminated.append((run_id, reason))
        if run_id in self.pending:
            self.finish(run_id, 143, reason, TERMINATED if reason == "terminated" else None)

    def kill(self, run_id: str) -> bool:
        self.killed.append(run_id)
        if run_id not in self.pending:
            return False
        self.finish(run_id, 137)
        return True

    def stop(self) -> None:
        self.pending.clear()


class World:
    """A backend + scheduler + fake runner, driven by hand."""

    def __init__(self, tmp: Path, **settings: Any) -> None:
        settings.setdefault("transition_delay", 0.0)
        settings.setdefault("node_quota", 4)
        settings.setdefault("max_slots_per_node", 4)
        self.settings = Settings(data_dir=tmp, account_url="http://127.0.0.1:1", **settings)
        self.backend = BatchBackend(self.settings)
        self.runner = FakeRunner()
        self.scheduler = Scheduler(self.backend, self.runner)

    def tick(self, n: int = 3) -> None:
        for _ in range(n):
            self.scheduler.tick()

    def do(self, name: str, *args: Any, **kwargs: Any) -> Any:
        with self.backend.op():
            return getattr(self.backend, name)(*args, **kwargs)

    def pool(self, pool_id: str = "p1", dedicated: int = 1, slots: int = 1, **spec: Any) -> Any:
        body = {"id": pool_id, "vmSize": "standard_d2s_v3", "targetDedicatedNodes": dedicated,
                "taskSlotsPerNode": slots, **spec}
        pool = self.do("create_pool", body)
        self.tick()
        return pool

    def job(self, job_id: str = "j1", pool_id: str = "p1", **spec: Any) -> Any:
        return self.do("create_job", {"id": job_id, "poolInfo": {"poolId": pool_id}, **spec})

    def task(self, task_id: str, job_id: str = "j1", command: str = "/bin/true",
             **spec: Any) -> Any:
        return self.do("add_task", job_id, {"id": task_id, "commandLine": command, **spec})

    def get(self, task_id: str, job_id: str = "j1") -> Any:
        with self.backend.op(wake=False):
            return self.backend.task(job_id, task_id)[1]

    def task_json(self, task_id: str, job_id: str = "j1") -> dict[str, Any]:
        from azure_batch_executor.emulator.wire import Casing

        with self.backend.op(wake=False):
            return self.backend.task(job_id, task_id)[1].to_json("http://x", Casing())
