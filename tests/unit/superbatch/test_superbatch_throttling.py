"""The SuperBatch client under throttling: the executor's retry policy (the same budget,
backoff and `Retry-After`), adds tried again with the same task ids, and polls that are
throttled for a while never fail the run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from support.batch_service_fake import ScriptedBatch
from support.http_errors import service_error

from azure_batch_executor import superbatch
from azure_batch_executor.cloud.ports import AddResult, CompletedTask
from azure_batch_executor.cloud.retry import RETRY_BUDGET, RequestStats, RetryPolicy
from azure_batch_executor.config import Settings


class StormyBatch(ScriptedBatch):
    """Its first add is taken by the service but its reply lost to throttling (the retry
    policy gave up); its first polls are throttled (503, Retry-After 0.05 s)."""

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        self.added: list[list[str]] = []
        self.throttled_polls = 4

    def add_collection(self, job_id: str, tasks: Sequence[str]) -> list[AddResult]:
        import json

        ids = [json.loads(t)["id"] for t in tasks]
        self.added.append(ids)
        if len(self.added) == 1:
            super().add_collection(job_id, tasks)
            raise service_error(429, "TooManyRequests")
        known = {t.task_id for t in self.completed}
        fresh = [t for t, i in zip(tasks, ids, strict=True) if i not in known]
        if fresh:
            super().add_collection(job_id, fresh)
        return [AddResult(i, True, False) for i in ids]  # TaskExists counts as accepted

    def _poll(self) -> None:
        if self.throttled_polls:
            self.throttled_polls -= 1
            raise service_error(503, "ServerBusy", retry_after=0.05)

    def task_counts(self, job_id: str) -> tuple[int, int, int]:
        self._poll()
        return super().task_counts(job_id)

    def completed_since(self, job_id: str, since: Any) -> list[CompletedTask]:
        self._poll()
        return super().completed_since(job_id, since)


def test_throttled_adds_and_polls_fail_nothing(fakes, make_client, tmp_path) -> None:
    policies: list[RetryPolicy] = []
    sleeps: list[float] = []
    made: list[StormyBatch] = []

    def connect(settings: Settings, stats: RequestStats, retry: RetryPolicy) -> Any:
        retry.sleep = sleeps.append  # the pause between add rounds: recorded, not slept
        policies.append(retry)
        made.append(StormyBatch(fakes.store, False))
        return fakes.store, made[0]

    fakes.connect = connect
    c = make_client()
    for i in range(3):
        c.add_task([], [superbatch.OutputFile("out.txt", f"out_{i}.txt", f"out_{i}.txt")],
                   command_line=f"python3 worker.py {i}")
    c.run()
    batch = made[0]
    assert batch.added[0] == batch.added[1]  # the same task ids, added again
    assert len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5  # after the policy's backoff
    assert batch.throttled_polls == 0 and len({t.task_id for t in batch.completed}) == 3
    assert batch.jobs == {c.job_id: "terminated"}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out_")) == [
        "out_0.txt", "out_1.txt", "out_2.txt"]
    policy = policies[0]  # the executor's own defaults
    assert (policy.budget, policy.cap) == (RETRY_BUDGET, RetryPolicy().cap)
