"""The backend's shared state: one lock around all model state, registries, deferred effects.

Role: `Core` holds pools, jobs and the attempts in flight (`runs`), the settings, and the
discipline every operation follows: mutate model state inside `op()` (which holds the
lock), and *defer* anything that talks to the runner or the disk (`defer`), so those
effects run after the lock is released (the runner may call back synchronously).
Helpers shared by the pool/job/task operation mixins live here: lookups with the
service's 404/409 codes, stopping attempts, requeueing and terminating tasks.

Imports: the standard library, `..exceptions`, `..wire` and sibling model modules.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import random
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import exceptions as exc
from .. import wire
from ..quotas import Quotas
from ..runner import FailureInfo, RunOutcome, RunSpec
from .jobprep import prep_id
from .jobs import Job
from .pools import Node, Pool
from .runtime import task_run_spec
from .tasks import Task

log = logging.getLogger("azure_batch_executor.emulator")


@dataclass
class Settings:
    """Everything that tunes the emulator's behaviour (see BatchEmulator for the meanings)."""

    account_name: str = "devbatch"
    account_url: str = ""
    data_dir: Path = Path(".")
    node_quota: int = 2
    max_slots_per_node: int = 2
    loose: bool = False
    realistic_casing: bool = False
    transition_delay: float = 0.05
    allocation_delay: float = 0.0  # extra seconds a node spends `starting` (VM boot)
    # (min, max) seconds between a task entering `active` (added, retried, requeued) and
    # its first chance of a node slot: each entry draws uniform(min, max); (0, 0): none.
    # Real Batch takes seconds here, but Microsoft documents no figure: its best practices
    # (https://learn.microsoft.com/en-us/azure/batch/best-practices, "Avoid short execution
    # time") only say 1-2 s tasks are not ideal, aim for 10 s or more, and from a minute up
    # the scheduling overhead is a small fraction; users report ~7 s between a task ending
    # and its dependent starting (https://github.com/Azure/Batch/issues/58). The 2-5 s the
    # docs suggest (docs/dev/emulator-rest.md, "Scheduling latency") is an assumption.
    scheduling_latency: tuple[float, float] = (0.0, 0.0)
    scheduling_seed: int | None = None  # seeds the latency draws (None: unpredictable)
    page_size: int = 1000
    requeue_counts_preemption: bool = True
    max_active_jobs: int | None = None
    # account quotas and scripted allocation trouble (quotas.py); none by default
    quotas: Quotas = field(default_factory=Quotas)
    # emulator seconds that stand for the service's 5-minute minimum autoscale interval
    # (all autoscale time is scaled by it); None: real time
    autoscale_min_interval: float | None = None
    auto_storage: bool = False  # autoStorageContainerName resolvable by the runner
    base_env: dict[str, str] = field(default_factory=dict)
    # the environment of commands run "in a container" (containerSettings); None: base_env
    container_base_env: dict[str, str] | None = None


@dataclass
class Run:
    """One attempt in flight on a node: a task attempt, a start task, a job preparation or
    release task. A task `preparing` on a node holds its slots in a Run not yet `started`
    (no process: it waits for the job preparation task)."""

    run_id: str
    kind: str  # "task" | "start" | "prep" | "release"
    pool_key: str
    node_id: str
    slots: int
    job_key: str = ""
    task_key: str = ""
    disposition: str | None = None  # None | "terminated" | "requeued" | "deleted"
    started: bool = True  # False while a task waits (preparing) for its job preparation


def latency_range(value: Any, name: str = "scheduling_latency") -> tuple[float, float]:
    """A valid (min, max) scheduling latency in seconds, or ValueError naming `name`."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (min, max) pair of seconds, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi):
        raise ValueError(f"{name} must be (min, max) seconds with 0 <= min <= max, "
                         f"got {value!r}")
    return lo, hi


TRASH_DIR = ".trash"  # under the data directory, outside every node's file tree


def discard(path: Path, trash: Path) -> None:
    """Rename `path` into `trash` (one metadata operation: a task re-added under the same
    id finds its directory free) and delete it there in a background thread."""
    target = trash / uuid.uuid4().hex
    try:
        trash.mkdir(parents=True, exist_ok=True)
        os.rename(path, target)
    except FileNotFoundError:
        return
    except OSError:  # e.g. another file system: delete in place, now
        shutil.rmtree(path, ignore_errors=True)
        return
    threading.Thread(target=shutil.rmtree, args=(target,), kwargs={"ignore_errors": True},
                     name="emulator-discard", daemon=True).start()


class Core:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.casing = wire.Casing(settings.realistic_casing)
        self.lock = threading.Lock()
        self.pools: dict[str, Pool] = {}
        self.jobs: dict[str, Job] = {}
        self.runs: dict[str, Run] = {}
        self._effects: list[Callable[[], Any]] = []
        self._seq = itertools.count(1)
        self._run_seq = itertools.count(1)
        self.runner: Any = None  # set by the emulator; only touched from deferred effects
        self.on_run_done: Callable[[Any], None] = lambda outcome: None
        self.wake: Callable[[], None] = lambda: None
        self.now: Callable[[], float] = time.time
        self.latency_rng = random.Random(settings.scheduling_seed)

    # --- discipline -----------------------------------------------------------------------

    @contextlib.contextmanager
    def op(self, *, wake: bool = True) -> Iterator[None]:
        """Hold the lock for a model operation; run its deferred effects after release."""
        self.lock.acquire()
        try:
            yield
        finally:
            effects, self._effects = self._effects, []
            self.lock.release()
            for effect in effects:
                try:
                    effect()
                except Exception:  # an effect must never break the operation
                    log.exception("emulator effect failed")
            if wake:
                self.wake()

    def defer(self, effect: Callable[[], Any]) -> None:
        self._effects.append(effect)

    def next_seq(self) -> int:
        return next(self._seq)

    def new_run_id(self, what: str) -> str:
        return f"{what}#{next(self._run_seq)}"

    def eligible_time(self, now: float) -> float:
        """When a task that enters `active` at `now` may first be placed: `now` plus a draw
        of the scheduling latency (`Settings.scheduling_latency`); 0.0 (at once) when the
        latency is off, whatever clock `now` comes from."""
        lo, hi = self.settings.scheduling_latency
        if hi <= 0:
            return 0.0
        return now + (lo if lo == hi else self.latency_rng.uniform(lo, hi))

    def remove_tree(self, path: Path) -> None:
        """Remove a directory (a deleted job's or task's files) once the operation ends:
        moved out of the nodes' trees at once, deleted in the background, so the thread
        that deleted the job (often the scheduler's) is not held for its files."""
        trash = self.settings.data_dir / TRASH_DIR
        self.defer(lambda: discard(path, trash))

    # --- lookups --------------------------------------------------------------------------

    def pool(self, pool_id: str) -> Pool:
        pool = self.pools.get(pool_id.lower())
        if pool is None:
            raise exc.PoolNotFound(values={"PoolId": pool_id})
        return pool

    def node(self, pool_id: str, node_id: str) -> tuple[Pool, Node]:
        pool = self.pool(pool_id)
        node = pool.nodes.get(node_id.lower())
        if node is None:
            raise exc.NodeNotFound(values={"NodeId": node_id})
        return pool, node

    def job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id.lower())
        if job is None:
            raise exc.JobNotFound(values={"JobId": job_id})
        return job

    def task(self, job_id: str, task_id: str) -> tuple[Job, Task]:
        job = self.job(job_id)
        task = job.tasks.get(task_id.lower())
        if task is None:
            raise exc.TaskNotFound(values={"TaskId": task_id})
        return job, task

    def node_of(self, task: Task) -> tuple[Pool, Node] | None:
        if task.pool_id is None or task.node_id is None:
            return None
        pool = self.pools.get(task.pool_id.lower())
        node = pool.nodes.get(task.node_id.lower()) if pool else None
        return (pool, node) if pool is not None and node is not None else None

    @staticmethod
    def require_job_open(job: Job) -> None:
        """The 409s for writes to a job that no longer accepts them."""
        if job.state == "completed":
            raise exc.JobCompleted(values={"JobId": job.id})
        if job.state == "terminating":
            raise exc.JobBeingTerminated(values={"JobId": job.id})
        if job.state == "deleting":
            raise exc.JobBeingDeleted(values={"JobId": job.id})

    # --- stopping attempts ----------------------------------------------------------------

    def stop_run(self, run_id: str | None, disposition: str) -> None:
        """Mark an attempt as no longer owning its task and kill its process (deferred)."""
        if run_id is None:
            return
        run = self.runs.get(run_id)
        if run is not None:
            run.disposition = disposition
            if not run.started:  # a task waiting for its job preparation: no process yet
                del self.runs[run_id]
                self.release(run, self.now())
                return
        reason = "requeued" if disposition == "requeued" else "terminated"
        runner = self.runner
        if runner is not None:
            self.defer(lambda: runner.terminate(run_id, reason))

    def requeue_task(self, task: Task, now: float, *, bump: bool = True) -> None:
        """Task state machine rows 10-11: a running (or preparing) task goes back to active."""
        if task.state in ("running", "preparing"):
            self.stop_run(task.requeue(now, bump=bump), "requeued")

    def terminate_task(self, task: Task, now: float, message: str) -> None:
        """Task state machine row 9: an active, preparing or running task completes as failed
        (TaskEnded)."""
        if task.state in ("active", "preparing", "running"):
            self.stop_run(task.terminate(now, message), "terminated")

    # --- starting processes -----------------------------------------------------------------

    def base_env_for(self, spec: dict[str, Any]) -> dict[str, str]:
        """The node image a command runs in: a command with `containerSettings` runs "in its
        container" (`container_base_env`), any other one on the node (`base_env`)."""
        container = self.settings.container_base_env
        if container is not None and spec.get("containerSettings"):
            return container
        return self.settings.base_env

    def start_process(self, spec: RunSpec) -> None:
        """Hand an attempt to the runner once the lock is released; a refusal ends it."""
        runner, done = self.runner, self.on_run_done

        def start() -> None:
            try:
                runner.start(spec, done)
            except Exception as error:
                log.exception("the task runner refused run %s", spec.run_id)
                now = time.time()
                done(RunOutcome(spec.run_id, "preprocessing", None,
                                FailureInfo("servererror", "TaskStartFailed",
                                            f"The emulator could not start the task "
                                            f"process: {error}"), now, now))

        self.defer(start)

    def start_task_process(self, pool: Pool, node: Node, job: Job, task: Task,
                           run_id: str) -> None:
        """The process of a task attempt that is `running` on `node`."""
        prep = job.prep_task
        spec = task_run_spec(
            run_id=run_id, base_env=self.base_env_for(task.spec),
            account=(self.settings.account_name, self.settings.account_url),
            pool_id=pool.id, node_id=node.id, dedicated=node.dedicated, root=node.root,
            job_common_env=job.common_env, task=task,
            job_prep_id=prep_id(prep) if prep is not None else None)
        self.start_process(spec)

    def release(self, run: Run, now: float) -> None:
        """An attempt's process is gone: free its node slots."""
        pool = self.pools.get(run.pool_key)
        node = pool.nodes.get(run.node_id.lower()) if pool else None
        if node is None:
            return
        node.runs.pop(run.run_id, None)
        node.task_runs.pop(run.run_id, None)
        node.refresh_busy(now)
