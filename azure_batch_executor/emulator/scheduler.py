"""The scheduler: places active tasks on free node slots, starts attempts, applies outcomes.

Role: one thread that, on every wake-up (any state change) or when something is due,
runs a tick: settle timed transitions (node boots, resizes, transient job states), then
place tasks (docs/dev/emulator-rest.md, "Scheduling"): pools' schedulable nodes with
free slots; jobs that are `active`, by priority (higher first) then task creation
order; honouring `maxParallelTasks`, `requiredSlots`, `dependsOn` and the pool's
`nodeFillType`, and never on a node where the job's preparation task failed. A task whose
scheduling latency has not passed (`Task.eligible_at`) is skipped, the tasks behind it
are not; the earliest such time joins the tick's deadline, so the thread wakes then. Each
placement becomes a `RunSpec` handed to the runner after the model lock is released, or
waits `preparing` for the job's preparation task on that node (`prep_ops`). `on_done`
turns a runner's `RunOutcome` into task state (rows 3-8 of the task state machine) and
job reactions; start, preparation and release outcomes go to their model operations.
`tick()` can be driven by hand (unit tests) instead of the thread.

Imports: the standard library and sibling emulator modules (`models`, `runner` data
classes).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from typing import Any

from .models import BatchBackend, Job, Node, Pool, Run, Task
from .runner import FailureInfo, RunOutcome

log = logging.getLogger("azure_batch_executor.emulator")

IDLE_TICK = 1.0  # seconds between ticks when nothing is due (retention, job wall clock)


class Scheduler:
    def __init__(self, backend: BatchBackend, runner: Any) -> None:
        self.backend = backend
        self.runner = runner
        backend.runner = runner
        backend.on_run_done = self.on_done
        backend.wake = self.wake
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0
        # the earliest `eligible_at` among the tasks the last placement pass skipped for
        # their scheduling latency (None: none was)
        self.next_eligible: float | None = None

    # --- thread ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="batch-emulator-scheduler",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                timeout = self.tick()
            except Exception:
                log.exception("emulator scheduler tick failed")
                timeout = IDLE_TICK
            self._wake.wait(timeout)
            self._wake.clear()

    # --- one tick -------------------------------------------------------------------------

    def tick(self) -> float:
        """Settle, place, start. Returns seconds until something is next due."""
        b = self.backend
        with b.op(wake=False):
            now = b.now()
            b.settle(now)
            self.next_eligible = None
            self._place(now)
            deadline = b.next_deadline()
            if self.next_eligible is not None and (deadline is None
                                                   or self.next_eligible < deadline):
                deadline = self.next_eligible
        self.ticks += 1
        if deadline is None:
            return IDLE_TICK
        return min(IDLE_TICK, max(0.0, deadline - b.now()))

    def _place(self, now: float) -> None:
        b = self.backend
        by_pool: dict[str, list[Job]] = {}
        for job in b.jobs.values():
            if job.state == "active" and job.has_active() and job.pool_id:
                by_pool.setdefault(job.pool_id.lower(), []).append(job)
        for pool_key, jobs in by_pool.items():
            pool = b.pools.get(pool_key)
            if pool is not None and pool.state == "active":
                self._place_pool(pool, jobs, now)

    def _place_pool(self, pool: Pool, jobs: list[Job], now: float) -> None:
        capacity = pool.slots_per_node
        nodes = [n for n in pool.nodes.values() if n.free_slots(capacity) > 0]
        free = sum(n.free_slots(capacity) for n in nodes)
        if free == 0:
            return
        jobs.sort(key=lambda j: (-j.priority, j.seq))
        # nodes where a job's preparation task failed never run that job's tasks
        blocked = {j.key: j.blocked_nodes() for j in jobs if j.preps}
        full: set[str] = set()  # jobs with blocked nodes that found no node this pass
        for _, group in itertools.groupby(jobs, key=lambda j: j.priority):
            members = {j.key: j for j in group}
            streams = [j.active_tasks() for j in members.values()]
            for task in heapq.merge(*streams, key=lambda t: t.seq):
                job = members[task.job_id.lower()]
                if task.state != "active" or task.required_slots > capacity:
                    continue
                if job.state != "active" or job.key in full:
                    continue
                if 0 < job.max_parallel <= job.running:
                    continue
                if task.eligible_at > now:  # its scheduling latency has not passed yet
                    if self.next_eligible is None or task.eligible_at < self.next_eligible:
                        self.next_eligible = task.eligible_at
                    continue
                if task.depends_on_ids() and not self.backend.dependencies_satisfied(job, task):
                    continue
                excluded = blocked.get(job.key)
                node = self._pick(nodes, task.required_slots, capacity, pool.fill_type,
                                  excluded)
                if node is None:
                    if excluded:  # other jobs may still use the nodes this one may not
                        if task.required_slots == 1:
                            full.add(job.key)
                        continue
                    if task.required_slots == 1:
                        return
                    continue
                free -= self._begin(pool, node, job, task, now)
                if free <= 0:
                    return

    @staticmethod
    def _pick(nodes: list[Node], slots: int, capacity: int, fill: str,
              excluded: frozenset[str] | None = None) -> Node | None:
        best: Node | None = None
        best_free = 0
        for node in nodes:
            if excluded and node.key in excluded:
                continue
            node_free = node.free_slots(capacity)
            if node_free < slots:
                continue
            better = node_free > best_free if fill != "pack" else (
                best is None or node_free < best_free)
            if best is None or better:
                best, best_free = node, node_free
        return best

    def _begin(self, pool: Pool, node: Node, job: Job, task: Task, now: float) -> int:
        """Start one attempt (task state machine row 2), or let it wait for the job's
        preparation task on that node (`preparing`); returns the slots it took."""
        b = self.backend
        run_id = b.new_run_id(f"{job.id}/{task.id}")
        if job.prep_task is not None and \
                bool(task.spec.get("containerSettings")) == pool.has_containers and \
                b.prep_gate(job, pool, node, now) == "wait":
            task.prepare(now, pool.id, node.id, run_id)
            b.runs[run_id] = Run(run_id, "task", pool.key, node.id, task.required_slots,
                                 job.key, task.key, started=False)
            node.runs[run_id] = task.required_slots
            node.task_runs[run_id] = (job.id, task.id)
            node.refresh_busy(now)
            return task.required_slots
        task.start(now, pool.id, node.id, run_id)
        if bool(task.spec.get("containerSettings")) != pool.has_containers:
            b.runs[run_id] = Run(run_id, "task", pool.key, node.id, 0, job.key, task.key)
            message = ("The task has containerSettings but its pool has no containerConfiguration"
                       if task.spec.get("containerSettings") else
                       "The pool has a containerConfiguration but the task has no "
                       "containerSettings")
            outcome = RunOutcome(run_id, "preprocessing", None,
                                 FailureInfo("usererror", "ContainerInvalidSettings", message),
                                 now, now)
            self._apply(outcome, now)
            return 0
        b.runs[run_id] = Run(run_id, "task", pool.key, node.id, task.required_slots, job.key,
                             task.key)
        node.runs[run_id] = task.required_slots
        node.task_runs[run_id] = (job.id, task.id)
        node.refresh_busy(now)
        if job.prep_task is not None:
            b.task_started_on(job, node)
        b.start_task_process(pool, node, job, task, run_id)
        return task.required_slots

    # --- outcomes -------------------------------------------------------------------------

    def on_done(self, outcome: RunOutcome) -> None:
        """Runner callback (any thread): apply one attempt's outcome."""
        b = self.backend
        with b.op():
            self._apply(outcome, b.now())

    def _apply(self, outcome: RunOutcome, now: float) -> None:
        b = self.backend
        run = b.runs.pop(outcome.run_id, None)
        if run is None:
            return
        b.release(run, now)
        if run.kind == "start":
            b.start_task_done(run, outcome, now)
            return
        if run.kind in ("prep", "release"):
            b.job_task_done(run, outcome, now)
            return
        job = b.jobs.get(run.job_key)
        task = job.tasks.get(run.task_key) if job is not None else None
        if job is None or task is None:
            return
        if run.disposition is not None or task.run_id != run.run_id:
            task.late_exit_code(run.run_id, outcome)
            return
        if outcome.reason == "requeued":  # the runner gave the attempt back on its own
            b.requeue_task(task, now)
            return
        result = task.finish(outcome, now)
        located = b.node_of(task)
        if located is not None:
            node = located[1]
            node.total_tasks_run += 1
            if task.result == "success":
                node.total_tasks_succeeded += 1
            node.recent.appendleft({
                "taskUrl": f"{b.settings.account_url}/jobs/{job.id}/tasks/{task.id}",
                "jobId": job.id, "taskId": task.id, "taskState": task.state,
                "executionInfo": task.execution_json(),
            })
        if result == "completed" and task.result == "failure":
            b.apply_task_failure(job, task, outcome.reason, outcome.exit_code, now)
        b.check_job_rules(job, now)

