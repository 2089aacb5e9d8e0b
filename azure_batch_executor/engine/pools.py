"""The pool watcher: never a silent wait for nodes.

Role: while the job has tasks in flight, `PoolWatcher` (called by the manager thread on
its ticks) reads the pool's nodes (`BatchPort.pool_status`: one request, the node counts
by state) and says so when none of them can run tasks (no node ``idle`` or ``running``),
in INFO lines printed even with logging unconfigured (`logs.announce`): one at first
(once the wait has lasted `GRACE` seconds: nodes that are ready at once are not worth a
line), then a status line every `pool_status_interval` (allocation state, nodes by state,
elapsed time), and a line when nodes are ready. While it waits it
reads the cause as Batch reports it (the pool's resize errors and autoscale run, a start
task failure with its stderr tail, unusable nodes) and raises the error the waiting
futures fail with (`PoolStartError`, or `CoreQuotaError` for a core quota), naming the
cause and the fix:

- at once when the cause is final: a core quota with room for no node of the pool (its
  ``CoreQuota`` value is 0, or no other pool of the account holds a node that would give
  cores back) while the pool has no node at all; or every node's start task failed;
- after `pool_start_timeout` without a usable node, whatever the cause.

Reads: one request per check (every `pool_status_interval`, 10 s at least, while nodes are
usable; while waiting after 1 s, then doubling up to 10 s or `pool_status_interval`), a
second one (the pool itself) while waiting, and once per wait the start task's stderr or
the other pools' nodes. Job preparation failures (the nodes are ``idle`` but cannot run
the job's tasks) are the manager's health check (`nodeenv.jobprep.preparation_error`).

Imports: the settings, errors, the Batch port and `logs`; nothing of the manager.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from .. import constants as C
from ..cloud.ports import BatchPort, PoolStatus, ResizeError, StartTaskFailure
from ..config import Settings, human_duration
from ..errors import CoreQuotaError, PoolStartError, quota_fix
from .logs import announce

log = logging.getLogger(__name__)

CORE_QUOTA_CODES = {"accountcorequotareached": True, "accountlowprioritycorequotareached": False}
ALLOCATION_CODES = ("allocationfailed", "allocationtimedout")
# node states that may still become usable (all but these)
DEAD_STATES = frozenset({"starttaskfailed", "leavingpool"})
RESIZE_DOCS = "https://learn.microsoft.com/troubleshoot/azure/hpc/batch/azure-batch-pool-resizing-failure"
NODE_DOCS = "https://learn.microsoft.com/azure/batch/batch-pool-node-error-checking"
FIRST_PACE = 1.0  # seconds between the first checks of a wait
GRACE = 5.0  # seconds of a wait before its first line (at most pool_status_interval)


class PoolWatcher:
    """Watches the pool of one job while its tasks wait for a node (see the module)."""

    def __init__(self, batch: BatchPort, settings: Settings, job_id: str, *,
                 attempt: Callable[..., Any] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.batch = batch
        self.settings = settings
        self.pool_id = settings.pool_id
        self.job_id = job_id
        # how a read is made: the manager passes its watcher's `attempt` (a passing failure
        # is None and counted, as a failed poll is)
        self.attempt: Callable[..., Any] = attempt or (lambda fn, *a: fn(*a))
        self.clock = clock
        self.next_check = 0.0
        self.pace = FIRST_PACE
        self.waiting_since: float | None = None
        self.said = False  # the wait's first line was logged
        self.next_status = 0.0
        self.start_failure: StartTaskFailure | None = None
        self.elsewhere: dict[bool, int] = {}  # nodes other pools hold, by kind (dedicated?)
        self.postfix = ""  # while waiting for nodes: the status, for the progress bar

    # ------------------------------------------------------------------ the check
    def due_in(self) -> float:
        return max(0.0, self.next_check - self.clock())

    def check(self, queued: int) -> None:
        """One check when due, while `queued` tasks of the job are in flight: log what
        there is to say; raise the error the waiting futures fail with."""
        now = self.clock()
        if now < self.next_check:
            return
        status = self.attempt(self.batch.pool_status, False)
        if status is not None and status.usable == 0:
            status = self.attempt(self.batch.pool_status, True)
        if status is None:  # a passing failure, or no pool: the health check says which
            self.next_check = now + self.waiting_pace()
            return
        if status.usable:
            self.ready(status, now)
        else:
            self.waiting(status, now, queued)
        self.next_check = now + self.waiting_pace()

    def waiting_pace(self) -> float:
        """Seconds to the next check: while nodes are usable, the status interval (10 s at
        least); while waiting 1 s at first (a resize error shows within seconds), doubling
        up to the status interval or the health interval, whichever is shorter."""
        if self.waiting_since is None:
            self.pace = FIRST_PACE
            return max(C.HEALTH_CHECK_INTERVAL, self.settings.pool_status_interval)
        pace = min(self.pace, self.settings.pool_status_interval)
        self.pace = min(self.pace * 2, self.settings.pool_status_interval,
                        C.HEALTH_CHECK_INTERVAL)
        if not self.said:  # the first line is due after the grace
            pace = min(pace, max(self.waiting_since + self.grace - self.clock(), 0.0))
        return pace

    @property
    def grace(self) -> float:
        """Seconds of a wait before it is said: nodes that boot at once (the local stack)
        are not worth a line."""
        return min(GRACE, self.settings.pool_status_interval)

    def ready(self, status: PoolStatus, now: float) -> None:
        if self.said and self.waiting_since is not None:
            announce(log, "pool %s: %d node(s) can run tasks, after %s", self.pool_id,
                     status.usable, human_duration(now - self.waiting_since))
        self.waiting_since = None
        self.said = False
        self.postfix = ""
        self.start_failure = None
        self.elsewhere.clear()

    def waiting(self, status: PoolStatus, now: float, queued: int) -> None:
        s = self.settings
        if self.waiting_since is None:
            self.waiting_since = now
        elapsed = now - self.waiting_since
        if status.nodes.get("starttaskfailed") and self.start_failure is None:
            self.start_failure = self.attempt(self.batch.start_task_failure)
        cause = self.cause(status)
        self.postfix = f"waiting for nodes {human_duration(elapsed)}: {describe(status, None)}"
        final = cause.final(status, self)
        ending = final or elapsed >= s.pool_start_timeout
        first = not self.said and (ending or elapsed >= self.grace)
        if first:
            announce(log, "pool %s: no node can run tasks yet (%s); %d task(s) of job %s "
                     "wait. Status every %s; the futures fail after %s without a usable node "
                     "(pool_start_timeout)", self.pool_id, describe(status, cause), queued,
                     self.job_id, human_duration(s.pool_status_interval),
                     human_duration(s.pool_start_timeout))
            self.said = True
            self.next_status = now + s.pool_status_interval
        if ending:
            raise self.error(status, cause, elapsed, timed_out=not final)
        if self.said and not first and now >= self.next_status:
            announce(log, "pool %s: still no usable node after %s: %s", self.pool_id,
                     human_duration(elapsed), describe(status, cause))
            self.next_status = now + s.pool_status_interval

    # ------------------------------------------------------------------ causes
    def cause(self, status: PoolStatus) -> Cause:
        """The most telling cause of the wait, as Batch reports it."""
        s = self.settings
        if status.nodes.get("starttaskfailed"):
            return StartTaskCause(status.nodes["starttaskfailed"], self.start_failure,
                                  self.pool_id)
        errors = sorted(status.resize_errors, key=lambda e: e.code.lower()
                        not in CORE_QUOTA_CODES)  # quota first
        if errors:
            return ResizeCause(errors[0], s)
        if status.nodes.get("unusable"):
            return Cause(f"{status.nodes['unusable']} node(s) are unusable (Batch cannot run "
                         "tasks on them: the VM did not boot or cannot be reached)",
                         f"use another vm_size or image; see the nodes' errors: az batch node "
                         f"list --pool-id {self.pool_id} --query \"[].{{id:id, state:state, "
                         f"errors:errors}}\" ({NODE_DOCS})", code="unusable")
        if status.autoscale_error:
            return Cause(f"its autoscale formula failed: {status.autoscale_error}",
                         f"see the last run: az batch pool show --pool-id {self.pool_id} "
                         "--query autoScaleRun", code=status.autoscale_error.split(":")[0])
        if status.full and not status.total and not (status.target_dedicated
                                                      or status.target_spot):
            if status.autoscale:
                return Cause("its autoscale formula has asked for no node yet (it runs "
                             "every 5 minutes on Azure)",
                             "wait, or raise pool_start_timeout=; see the last run: az batch "
                             f"pool show --pool-id {self.pool_id} --query autoScaleRun",
                             noted=True)
            return Cause("the pool asks for no node (target 0 dedicated, 0 spot)",
                         f"resize it: az batch pool resize --pool-id {self.pool_id} "
                         "--target-dedicated-nodes N, or pass another pool_id", noted=True)
        return Cause("its nodes did not start in time",
                     f"raise pool_start_timeout=, or look at the pool: az batch pool show "
                     f"--pool-id {self.pool_id}")

    def nodes_elsewhere(self, dedicated: bool) -> int | None:
        if dedicated not in self.elsewhere:
            count = self.attempt(self.batch.nodes_elsewhere, dedicated)
            if count is None:
                return None
            self.elsewhere[dedicated] = count
        return self.elsewhere[dedicated]

    def error(self, status: PoolStatus, cause: Cause, elapsed: float, *, timed_out: bool
              ) -> PoolStartError:
        when = (f" after {human_duration(elapsed)} (pool_start_timeout="
                f"{self.settings.pool_start_timeout:g})" if timed_out else "")
        message = (f"no node of pool {self.pool_id} could run the tasks of job {self.job_id}"
                   f"{when}: {cause.text} [{describe(status, None)}]. Fix: {cause.fix}.")
        tail = cause.stderr_tail
        if tail.strip():
            message += f"\nstart task stderr tail:\n{tail.rstrip()}"
        kw: dict[str, Any] = dict(pool_id=self.pool_id, job_id=self.job_id, code=cause.code,
                                  elapsed=elapsed, nodes=dict(status.nodes), stderr_tail=tail)
        if cause.code.lower() in CORE_QUOTA_CODES:
            return CoreQuotaError(message, account=self.settings.batch_account, **kw)
        return PoolStartError(message, **kw)


class Cause:
    """Why no node runs tasks: what Batch reports, the fix, whether it is final."""

    def __init__(self, text: str, fix: str, code: str = "", *, noted: bool | None = None
                 ) -> None:
        self.text = text
        self.fix = fix
        self.code = code
        self.noted = bool(code) if noted is None else noted  # said in the status lines
        self.stderr_tail = ""

    def final(self, status: PoolStatus, watcher: PoolWatcher) -> bool:
        return False


class StartTaskCause(Cause):
    """The pool's start task failed on some nodes; final when it failed on all of them and
    no resize is under way."""

    def __init__(self, count: int, failure: StartTaskFailure | None, pool_id: str) -> None:
        detail = ""
        if failure is not None:
            code = f", {failure.failure_code}" if failure.failure_code else ""
            message = f": {failure.failure_message}" if failure.failure_message else ""
            detail = f" (node {failure.node_id}: exit code {failure.exit_code}{code}{message})"
        super().__init__(f"the pool's start task failed on {count} node(s){detail}",
                         "fix the pool's start task or its image (az batch pool show "
                         f"--pool-id {pool_id} --query startTask), or pass another pool_id",
                         code="StartTaskFailed")
        self.count = count
        self.stderr_tail = failure.stderr_tail if failure is not None else ""

    def final(self, status: PoolStatus, watcher: PoolWatcher) -> bool:
        return self.count == status.total and status.allocation_state in ("steady", "")


class ResizeCause(Cause):
    """A resize error of the pool; final for a core quota that leaves no room for a node."""

    def __init__(self, error: ResizeError, settings: Settings) -> None:
        values = ", ".join(f"{k}={v}" for k, v in error.values.items())
        text = f"Batch reports {error.code}: {error.message}" + (f" ({values})" if values
                                                                else "")
        code = error.code.lower()
        if code in CORE_QUOTA_CODES:
            fix = quota_fix(error.code, settings.batch_account)
        elif code in ALLOCATION_CODES:
            fix = (f"Azure has no capacity for {settings.vm_size} there now: try another "
                   "vm_size, Spot instead of dedicated nodes or the other way round, or "
                   f"later ({RESIZE_DOCS})")
        else:
            fix = (f"see the pool's resize errors: az batch pool show --pool-id "
                   f"{settings.pool_id} --query resizeErrors ({RESIZE_DOCS})")
        super().__init__(text, fix, code=error.code)
        self.error = error

    def final(self, status: PoolStatus, watcher: PoolWatcher) -> bool:
        dedicated = CORE_QUOTA_CODES.get(self.code.lower())
        if dedicated is None:
            return False
        alive = sum(n for state, n in status.nodes.items() if state not in DEAD_STATES)
        if alive:  # nodes on their way: some cores were granted
            return False
        if self.error.values.get("CoreQuota") == "0":
            return True
        return watcher.nodes_elsewhere(dedicated) == 0  # no other pool gives cores back


def describe(status: PoolStatus, cause: Cause | None) -> str:
    """'allocation steady, 0 of 2 target nodes: 2 starting; Batch reports ...'."""
    parts = []
    if status.allocation_state:
        parts.append(f"allocation {status.allocation_state}")
    if status.full:
        target = status.target_dedicated + status.target_spot
        scale = " (autoscale)" if status.autoscale else ""
        parts.append(f"{status.usable} of {target} target node(s){scale}")
    states = ", ".join(f"{n} {state}" for state, n in sorted(status.nodes.items()) if n)
    text = ", ".join(parts) + (": " if parts else "") + (states or "no node")
    if cause is not None and cause.noted:
        text += f"; {cause.text}"
    return text

