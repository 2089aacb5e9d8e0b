"""Finding a job's newly completed tasks at O(1) requests per tick: `CompletionFeed`.

Role: used by the watch loop (`engine.watch`) over any `ports.BatchPort`: the job's task
counts while idle, a listing of the tasks completed since a watermark when they moved,
and a bounded periodic listing so that a count that lags never hides a completion.
Asked to (`poll(started=True)`: the executor has calls queued at Batch whose futures
must turn RUNNING when they start), the same listing shows the tasks that started
running too, and a moved running count triggers it: still one request per tick.
"""

from __future__ import annotations

import datetime as dt

from .ports import BatchPort, CompletedTask


class CompletionFeed:
    """Finds the newly completed tasks of one job at O(1) requests per tick, never
    re-listing every completed task.

    Idle: one request (the job's task counts). When the completed count moved: one listing
    of the tasks completed since a watermark (the latest stateTransitionTime seen, minus a
    safety overlap for listing lag), deduplicated by id. While results flow (`flowing`,
    the last listing found new tasks) the count is skipped: the listing is the one request.
    If the counts ever show more completed tasks than were seen, the overlap widens, and
    after a few such ticks one full listing settles it. Completions never depend on the
    count alone: every `LIST_EVERY`-th quiet tick lists instead of counting (the tasks
    completed since the watermark minus the wide overlap: one short page when nothing was
    missed), so a count that lags or never moves hides nothing for long.
    """

    OVERLAP = dt.timedelta(seconds=2)
    WIDE_OVERLAP = dt.timedelta(seconds=60)
    LIST_EVERY = 10  # quiet ticks (the count unchanged) between two safety listings

    def __init__(self, batch: BatchPort, job_id: str) -> None:
        self._batch = batch
        self._job_id = job_id
        self._seen: set[str] = set()
        self._running: set[str] = set()  # tasks seen running (reported once in `started`)
        self._watermark: dt.datetime | None = None
        self._last_completed = 0
        self._last_running = 0
        self._deficit_ticks = 0
        self._quiet_ticks = 0
        self.flowing = False
        self.started: list[str] = []  # ids of tasks newly seen running (`poll(started=True)`)

    def poll(self, started: bool = False) -> list[CompletedTask]:
        """The tasks completed since the last poll; with `started`, the ids of the tasks
        newly seen running are appended to `self.started` (the caller empties it)."""
        completed: int | None = None
        safety = False
        if not self.flowing:
            if self._quiet_ticks >= self.LIST_EVERY - 1:
                safety = True  # this tick lists whatever the count would say
            else:
                _, running, completed = self._batch.task_counts(self._job_id)
                moved = started and running != self._last_running
                self._last_running = running
                if (completed == self._last_completed and len(self._seen) >= completed
                        and not moved):
                    self._quiet_ticks += 1
                    return []
        self._quiet_ticks = 0
        since = None
        if self._watermark is not None and self._deficit_ticks <= 5:
            wide = safety or self._deficit_ticks > 0
            since = self._watermark - (self.WIDE_OVERLAP if wide else self.OVERLAP)
        if started:
            tasks = self._batch.transitions_since(self._job_id, since)
        else:
            tasks = self._batch.completed_since(self._job_id, since)
        new: list[CompletedTask] = []
        began = False
        for t in tasks:
            if t.state == "running":
                if t.task_id not in self._running and t.task_id not in self._seen:
                    self._running.add(t.task_id)
                    self.started.append(t.task_id)
                    began = True
            elif t.task_id not in self._seen:
                self._seen.add(t.task_id)
                self._running.discard(t.task_id)
                new.append(t)
            if t.transition_time and (self._watermark is None
                                      or t.transition_time > self._watermark):
                self._watermark = t.transition_time
        if completed is not None:
            self._last_completed = completed
            self._deficit_ticks = self._deficit_ticks + 1 if len(self._seen) < completed else 0
        self.flowing = bool(new) or began
        return new
