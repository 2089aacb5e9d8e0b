"""Pool autoscale: enable / disable / evaluate, metric samples, periodic evaluation.

Role: `AutoScaleOps` extends the pool operations with the service's autoscale
(docs/dev/emulator-rest.md, "Autoscale"): a pool created with `enableAutoScale` or
enabled later gets an `AutoScale` record; while it lasts, the pool's metrics are sampled
every 30 service seconds and its formula (`..autoscale`) is evaluated every
`autoScaleEvaluationInterval`, setting the pool's targets and `$NodeDeallocationOption`
and starting a resize when they change. Each run is the pool's `autoScaleRun`. A manual
resize of an autoscale pool is refused. `settle_autoscale` runs on every scheduler tick
and is free when no pool autoscales.

Time: the service's minimum interval is 5 minutes (PT5M, maximum PT168H); the emulator
refuses what the service refuses. `Settings.autoscale_min_interval` (emulator seconds
that stand for PT5M) compresses all autoscale time by the same factor: intervals, the
30-second sample period, `TimeInterval_*` in formulas and the 30 seconds between enable
calls, so a test runs realistic formulas fast.

Sources: REST "Pools - Enable Pool Auto Scale", "Evaluate Pool Auto Scale", "Disable Pool
Auto Scale" (https://learn.microsoft.com/rest/api/batchservice/pools): enable needs a
formula when autoscale is off, refuses a pool being resized, may not be called more than
once every 30 seconds; evaluate needs an autoscale pool and does not apply the formula;
"Pool - Resize": an autoscale pool cannot be resized (409); the interval limits and the
formula's 8 KB, "Create an automatic formula for scaling compute nodes in a Batch pool"
(https://learn.microsoft.com/azure/batch/batch-automatic-scaling).

Imports: the standard library, `..autoscale`, `..exceptions`, `..wire` and sibling model
modules.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

from .. import autoscale as formula_language
from .. import exceptions as exc
from .. import wire
from ..autoscale import Context, Formula, Outcome
from .core import Settings
from .pool_ops import PoolOps
from .pools import Pool
from .task_ops import TaskOps

SERVICE_MIN_INTERVAL = 300.0  # PT5M
SERVICE_MAX_INTERVAL = 168 * 3600.0  # PT168H
DEFAULT_INTERVAL = 900.0  # PT15M
ENABLE_GAP = 30.0  # service seconds between two enable calls on a pool
MIN_SAMPLE_PERIOD = 0.02  # emulator seconds: the fastest the scheduler samples
HISTORY = 4096  # samples kept per pool (34 hours at the service's pace)
AUTOSCALE_PROPERTIES = ("autoScaleFormula", "autoScaleEvaluationInterval", "autoScaleRun")


@dataclass
class AutoScale:
    """One autoscale pool's formula, schedule and metric history."""

    pool: Pool
    formula: Formula
    interval: float  # service seconds
    next_eval: float = 0.0  # emulator time
    next_sample: float = 0.0
    last_enable: float | None = None
    samples: collections.deque[tuple[float, dict[str, float]]] = field(
        default_factory=lambda: collections.deque(maxlen=HISTORY))


class AutoScaleOps(PoolOps, TaskOps):
    autoscaled: dict[str, AutoScale]

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.autoscaled = {}

    # --- time -------------------------------------------------------------------------------

    @property
    def autoscale_scale(self) -> float:
        """Emulator seconds per service second for autoscale."""
        fast = self.settings.autoscale_min_interval
        return fast / SERVICE_MIN_INTERVAL if fast else 1.0

    def _sample_period(self) -> float:
        return max(formula_language.SAMPLE_PERIOD * self.autoscale_scale, MIN_SAMPLE_PERIOD)

    def reschedule_autoscale(self, now: float) -> None:
        """After the time scale changed: every pool's next sample and evaluation."""
        for state in self.autoscaled.values():
            state.next_sample = now
            state.next_eval = now + state.interval * self.autoscale_scale

    # --- API operations ---------------------------------------------------------------------

    def create_pool(self, spec: dict[str, Any]) -> Pool:
        if not spec.get("enableAutoScale"):
            for prop in ("autoScaleFormula", "autoScaleEvaluationInterval"):
                if spec.get(prop) is not None:
                    raise _invalid(prop, f"{prop} must not be specified when enableAutoScale is "
                                         "false (pass enableAutoScale=true with it).")
            return super().create_pool(spec)
        for prop in ("targetDedicatedNodes", "targetLowPriorityNodes"):
            if spec.get(prop) is not None:
                raise _invalid(prop, f"{prop} must not be specified when enableAutoScale is true: "
                                     "the autoscale formula sets the targets.")
        if not spec.get("autoScaleFormula"):
            raise exc.MissingRequiredProperty(
                "autoScaleFormula is required when enableAutoScale is true.",
                {"PropertyName": "autoScaleFormula"})
        formula = self._formula(spec["autoScaleFormula"])
        interval = self._interval(spec.get("autoScaleEvaluationInterval"))
        pool = super().create_pool(dict(spec, targetDedicatedNodes=0, targetLowPriorityNodes=0))
        for prop in ("targetDedicatedNodes", "targetLowPriorityNodes"):
            pool.spec.pop(prop, None)
        state = AutoScale(pool, formula, interval)
        self.autoscaled[pool.key] = state
        self._start(state, self.now())
        return pool

    def resize_pool(self, pool_id: str, changes: dict[str, Any]) -> Pool:
        pool = self.pool(pool_id)
        if pool.key in self.autoscaled and pool.state == "active":
            raise exc.OperationInvalidForCurrentState(
                f"Pool {pool.id} has automatic scaling enabled and cannot be resized; disable "
                "it first (disable_pool_auto_scale).", {"PoolId": pool.id})
        return super().resize_pool(pool_id, changes)

    def enable_autoscale(self, pool_id: str, text: str | None, interval: str | None) -> Pool:
        pool = self.pool(pool_id)
        self._require_pool_open(pool)
        state = self.autoscaled.get(pool.key)
        now = self.now()
        if state is None:
            if pool.allocation_state != "steady":
                raise exc.PoolBeingResized(
                    f"Pool {pool.id} is being resized (allocationState "
                    f"{pool.allocation_state}); enable automatic scaling once it is steady.",
                    {"PoolId": pool.id})
            if not text:
                raise exc.MissingRequiredProperty(
                    "autoScaleFormula is required to enable automatic scaling on a pool that "
                    "does not scale automatically.", {"PropertyName": "autoScaleFormula"})
        elif text is None and interval is None:
            raise exc.MissingRequiredProperty(
                "Specify autoScaleFormula, autoScaleEvaluationInterval or both.",
                {"PropertyName": "autoScaleFormula"})
        formula = self._formula(text) if text else None
        seconds = self._interval(interval) if interval is not None else None
        # after validation: the service refuses a bad interval with 400 even within the 30
        # seconds, and a refused call does not count (azure-batch-sdk-for-net's
        # AutoScaleEvaluationIntervalTest)
        if state is not None and state.last_enable is not None and \
                now - state.last_enable < ENABLE_GAP * self.autoscale_scale:
            raise exc.TooManyEnableAutoScaleRequests(
                "Enable AutoScale requests for the same pool must be separated by at least 30 "
                "seconds.", {"PoolId": pool.id})
        if state is None:
            assert formula is not None
            state = AutoScale(pool, formula, seconds or DEFAULT_INTERVAL)
            self.autoscaled[pool.key] = state
        else:
            state.formula = formula or state.formula
            state.interval = seconds or state.interval
        state.last_enable = now
        pool.touch(now)
        self._start(state, now)
        return pool

    def disable_autoscale(self, pool_id: str) -> Pool:
        pool = self.pool(pool_id)
        self._require_pool_open(pool)
        self.autoscaled.pop(pool.key, None)
        for prop in AUTOSCALE_PROPERTIES:
            pool.spec.pop(prop, None)
        pool.spec["enableAutoScale"] = False
        pool.touch(self.now())
        return pool

    def evaluate_autoscale(self, pool_id: str, text: str) -> dict[str, Any]:
        """The `AutoScaleRun` of `text` on the pool now; the pool is not changed."""
        pool = self.pool(pool_id)
        state = self.autoscaled.get(pool.key)
        if state is None:
            raise exc.OperationInvalidForCurrentState(
                f"Pool {pool.id} does not scale automatically; a formula can only be evaluated "
                "on an autoscale pool (enable_pool_auto_scale first).", {"PoolId": pool.id})
        now = self.now()
        outcome = formula_language.evaluate(self._formula(text), self._context(state, now))
        return run_json(outcome, now)

    def evaluate_autoscale_now(self, pool_id: str) -> None:
        """Admin: run the pool's formula at once (its schedule restarts from now)."""
        pool = self.pool(pool_id)
        state = self.autoscaled.get(pool.key)
        if state is None:
            raise exc.OperationInvalidForCurrentState(
                f"Pool {pool.id} does not scale automatically.", {"PoolId": pool.id})
        now = self.now()
        self._sample(state, now)
        self._run(state, now)

    # --- checks -----------------------------------------------------------------------------

    def _formula(self, text: str) -> Formula:
        if len(text) > formula_language.MAX_LENGTH:
            raise exc.AutoScaleFormulaTooLong(
                f"The autoscale formula is {len(text)} characters long; the maximum is "
                f"{formula_language.MAX_LENGTH}.", {"PropertyName": "autoScaleFormula"})
        try:
            formula = formula_language.parse(text)
        except formula_language.FormulaSyntaxError as err:
            raise exc.AutoScalingFormulaSyntaxError(
                f"The autoscale formula has a syntax error: {err}",
                {"PropertyName": "autoScaleFormula", "Message": str(err)}) from None
        if formula.not_emulated and not self.settings.loose:
            features = ", ".join(formula.not_emulated)
            raise exc.InvalidPropertyValue(
                exc.with_loose_hint(f"The autoscale formula uses {features}, which the "
                                    "emulator does not evaluate (emulated: the targets, "
                                    "$NodeDeallocationOption, $ActiveTasks, $RunningTasks, "
                                    "$PendingTasks, $PreemptedNodeCount and the node counts "
                                    "with GetSample/GetSamplePercent, arithmetic, comparisons, "
                                    "?:, min/max/avg and friends)."),
                {"PropertyName": "autoScaleFormula", "NotEmulated": features})
        return formula

    def _interval(self, value: str | None) -> float:
        if value is None:
            return DEFAULT_INTERVAL
        seconds = wire.parse_duration(value)
        if seconds is None or not SERVICE_MIN_INTERVAL <= seconds <= SERVICE_MAX_INTERVAL:
            fast = "" if self.settings.autoscale_min_interval else (
                " To evaluate faster in tests, keep PT5M and start the emulator with "
                "autoscale_min_interval=<seconds that stand for 5 minutes> (or POST "
                "/_emulator/autoscale).")
            raise _invalid("autoScaleEvaluationInterval",
                           f"autoScaleEvaluationInterval must be between PT5M and PT168H, got "
                           f"{value}.{fast}")
        return seconds

    # --- running ----------------------------------------------------------------------------

    def _start(self, state: AutoScale, now: float) -> None:
        """(Re)start a pool's autoscale: properties, a sample, an evaluation now."""
        pool = state.pool
        pool.spec["enableAutoScale"] = True
        pool.spec["autoScaleFormula"] = state.formula.text
        pool.spec["autoScaleEvaluationInterval"] = wire.format_duration(state.interval)
        self._sample(state, now)
        self._run(state, now)

    def pool_metrics(self, pool: Pool) -> dict[str, float]:
        """The pool's task and node metrics now (one sample)."""
        active = 0
        for job in self.jobs.values():
            if job.state != "active" or (job.pool_id or "").lower() != pool.key:
                continue
            if job.uses_dependencies:
                active += sum(1 for t in job.active_tasks()
                              if not t.depends_on_ids() or self.dependencies_satisfied(job, t))
            else:
                active += job.counts["active"]
        running = sum(len(n.task_runs) for n in pool.nodes.values())
        return {"$ActiveTasks": float(active), "$RunningTasks": float(running),
                "$PendingTasks": float(active + running),
                "$PreemptedNodeCount": float(sum(n.state == "preempted"
                                                 for n in pool.nodes.values())),
                "$CurrentDedicatedNodes": float(pool.current(True)),
                "$CurrentLowPriorityNodes": float(pool.current(False))}

    def _sample(self, state: AutoScale, now: float) -> None:
        state.samples.append((now, self.pool_metrics(state.pool)))
        state.next_sample = now + self._sample_period()

    def _context(self, state: AutoScale, now: float) -> Context:
        pool = state.pool
        return Context(now=now, history=tuple(state.samples), period=self._sample_period(),
                       scale=self.autoscale_scale,
                       current={"$CurrentDedicatedNodes": float(pool.current(True)),
                                "$CurrentLowPriorityNodes": float(pool.current(False))},
                       target_dedicated=pool.target_dedicated, target_low_priority=pool.target_low)

    def _run(self, state: AutoScale, now: float) -> None:
        """One scheduled evaluation: `autoScaleRun`, then the targets (no ETag change)."""
        pool = state.pool
        outcome = formula_language.evaluate(state.formula, self._context(state, now))
        pool.spec["autoScaleRun"] = run_json(outcome, now)
        state.next_eval = now + state.interval * self.autoscale_scale
        if outcome.error is not None or pool.state != "active":
            return
        targets = (outcome.target_dedicated, outcome.target_low_priority)
        changed = targets != (pool.target_dedicated, pool.target_low)
        pool.target_dedicated, pool.target_low = targets
        pool.deallocation = outcome.deallocation
        if pool.allocation_state == "steady":
            if changed or targets != (pool.current(True), pool.current(False)):
                pool.set_allocation("resizing", now)
                pool.pending = (now + self.settings.transition_delay, "resize")
        elif pool.allocation_state == "resizing" and pool.pending is None:
            pool.pending = (now + self.settings.transition_delay, "resize")

    def settle_autoscale(self, now: float) -> None:
        """Due samples and evaluations of every autoscale pool (each scheduler tick)."""
        if not self.autoscaled:
            return
        for key, state in list(self.autoscaled.items()):
            if self.pools.get(key) is not state.pool or state.pool.state != "active":
                del self.autoscaled[key]  # being deleted, gone, or gone and re-created
                continue
            if now >= state.next_sample:
                self._sample(state, now)
            if now >= state.next_eval:
                self._run(state, now)

    def next_autoscale_deadline(self) -> float | None:
        if not self.autoscaled:
            return None
        return min(min(s.next_sample, s.next_eval) for s in self.autoscaled.values())


def run_json(outcome: Outcome, now: float) -> dict[str, Any]:
    """REST `AutoScaleRun`: timestamp, results, and error (code, message, values)."""
    doc: dict[str, Any] = {"timestamp": wire.iso(now), "results": outcome.results}
    err = outcome.error
    if err is not None:
        doc["error"] = {"code": err.code, "message": err.summary,
                        "values": [{"name": "Message", "value": str(err)}]}
    return doc


def _invalid(prop: str, message: str) -> exc.BatchError:
    return exc.InvalidPropertyValue(message, {"PropertyName": prop})
