"""The autoscale formula language: evaluate a parsed `Formula` against a pool's samples.

Role: `evaluate(formula, Context)` runs the statements in order and returns an `Outcome`:
the whole-node targets, `$NodeDeallocationOption`, the `autoScaleRun.results` string
(`$TargetDedicatedNodes=3;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;...`,
as the azure-batch tests record it) and the error that stopped the run, if any. The
values are the documented types: double, doubleVec (a list), timeinterval (`Interval`),
and the deallocation keywords as strings. The models (`models/autoscale_ops.py`) build the
`Context` from the pool's samples and apply the outcome.

Time: interval constants are in the service's seconds; `Context.scale` converts them to
the emulator's seconds (a test may run the service's 5 minutes in 0.1 s), so a formula
reads the same on Azure and on the emulator. Samples are taken every `Context.period`.

Imports: the standard library and `.syntax`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .syntax import (
    ALIASES,
    DEALLOCATION_OPTIONS,
    METRICS,
    NODE_COUNTS,
    NOT_EMULATED_FUNCTIONS,
    NOT_EMULATED_METHODS,
    NOT_EMULATED_METRICS,
    SAMPLE_PERIOD,
    TARGETS,
    TIME_INTERVALS,
    Binary,
    Call,
    Cond,
    EvaluationError,
    Formula,
    InsufficientSampleData,
    Interval,
    Method,
    MetricRef,
    Name,
    Node,
    NotEmulatedError,
    Num,
    Statement,
    StopEvaluation,
    Str,
    Unary,
    Value,
    format_value,
)


@dataclass
class Context:
    """What one evaluation sees. Times are the emulator's seconds; `scale` is the
    emulator's seconds per service second (1.0 unless the emulator runs autoscale fast)."""

    now: float
    history: Sequence[tuple[float, Mapping[str, float]]] = ()  # (time, metrics), oldest first
    period: float = SAMPLE_PERIOD  # the emulator's seconds between samples
    scale: float = 1.0
    current: Mapping[str, float] = field(default_factory=dict)  # $CurrentDedicatedNodes, ...
    target_dedicated: int = 0
    target_low_priority: int = 0
    rng: Callable[[], float] = random.random


@dataclass
class Outcome:
    """The result of one evaluation (`autoScaleRun`): targets are whole node counts."""

    target_dedicated: int
    target_low_priority: int
    deallocation: str
    results: str
    error: EvaluationError | None = None


class _Evaluator:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.vars: dict[str, Value] = {
            "$TargetDedicatedNodes": float(ctx.target_dedicated),
            "$TargetLowPriorityNodes": float(ctx.target_low_priority),
            "$NodeDeallocationOption": "requeue",
        }
        self.assigned: set[str] = set()

    def run(self, formula: Formula) -> Outcome:
        error: EvaluationError | None = None
        try:
            for st in formula.statements:
                value = self.eval(st.expr)
                if st.target is not None:
                    self.assign(st.target, value, st)
        except StopEvaluation:
            pass
        except EvaluationError as err:
            error = err
        return self.outcome(error)

    def assign(self, target: str, value: Value, st: Statement) -> None:
        if isinstance(value, MetricRef):
            raise NotEmulatedError(f"{value.name} used without GetSample() is not emulated",
                                   st.line, st.col)
        name = ALIASES.get(target, target)
        if name in TARGETS and not isinstance(value, float):
            raise EvaluationError(f"{target} must be assigned a number, not "
                                  f"{_kind(value)}", st.line, st.col)
        if name == "$NodeDeallocationOption" and value not in DEALLOCATION_OPTIONS:
            raise EvaluationError(f"$NodeDeallocationOption must be one of "
                                  f"{', '.join(DEALLOCATION_OPTIONS)}", st.line, st.col)
        if target in ALIASES:  # the full name takes precedence when both are set
            self.vars[target] = value
            if name not in self.assigned:
                self.vars[name] = value
        else:
            self.vars[target] = value
        self.assigned.add(target)

    def outcome(self, error: EvaluationError | None) -> Outcome:
        first = ["$TargetDedicatedNodes", "$TargetLowPriorityNodes", "$NodeDeallocationOption"]
        rest = sorted((n for n in self.vars if n not in first),
                      key=lambda n: (n.lstrip("$").lower(), n))
        results = ";".join(f"{n}={format_value(self.vars[n])}" for n in first + rest)
        return Outcome(_nodes(self.vars["$TargetDedicatedNodes"]),
                       _nodes(self.vars["$TargetLowPriorityNodes"]),
                       str(self.vars["$NodeDeallocationOption"]), results, error)

    # --- expressions --------------------------------------------------------------------

    def eval(self, node: Node) -> Value:
        if isinstance(node, Num):
            return node.value
        if isinstance(node, Name):
            return self.name(node)
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Cond):
            test = self.eval(node.test)
            if not isinstance(test, float):
                raise EvaluationError(f"The condition of ?: must be a number, not "
                                      f"{_kind(test)}", node.line, node.col)
            return self.eval(node.then if test != 0 else node.other)
        if isinstance(node, Unary):
            return self.unary(node)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Method):
            return self.method(node)
        if isinstance(node, Str):
            raise NotEmulatedError("String literals are not emulated", node.line, node.col)
        raise EvaluationError("Unknown expression", node.line, node.col)

    def name(self, node: Name) -> Value:
        n = node.name
        if n in TIME_INTERVALS:
            return Interval(TIME_INTERVALS[n])
        if n in DEALLOCATION_OPTIONS:
            return n
        if n in NOT_EMULATED_METRICS:
            raise NotEmulatedError(f"{n} is not emulated", node.line, node.col)
        if n in NODE_COUNTS:
            return float(self.ctx.current.get(NODE_COUNTS[n], 0.0))
        if n in METRICS:
            return MetricRef(n)
        if n in ALIASES and n not in self.vars:
            return self.vars[ALIASES[n]]
        if n in self.vars:
            return self.vars[n]
        raise EvaluationError(f"The variable {n} is used before it is assigned", node.line,
                              node.col)

    def unary(self, node: Unary) -> Value:
        v = self.eval(node.operand)
        if node.op == "!":
            if isinstance(v, float):
                return 1.0 if v == 0 else 0.0
        elif isinstance(v, float):
            return -v
        elif isinstance(v, list):
            return [-x for x in v]
        elif isinstance(v, Interval):
            return Interval(-v.seconds)
        raise EvaluationError(f"Operator {node.op} does not apply to {_kind(v)}", node.line,
                              node.col)

    def binary(self, node: Binary) -> Value:
        op = node.op
        left = self.eval(node.left)
        if op in ("&&", "||"):
            if not isinstance(left, float):
                raise EvaluationError(f"Operator {op} needs numbers", node.line, node.col)
            if (op == "&&" and left == 0) or (op == "||" and left != 0):
                return 1.0 if op == "||" else 0.0
            right = self.eval(node.right)
            if not isinstance(right, float):
                raise EvaluationError(f"Operator {op} needs numbers", node.line, node.col)
            return 1.0 if right != 0 else 0.0
        right = self.eval(node.right)
        if op in ("<", "<=", "==", "!=", ">=", ">"):
            return self.compare(op, left, right, node)
        return self.arith(op, left, right, node)

    def compare(self, op: str, a: Value, b: Value, node: Node) -> float:
        if isinstance(a, Interval) and isinstance(b, Interval):
            a, b = a.seconds, b.seconds
        ok = (isinstance(a, float) and isinstance(b, float)) or (
            isinstance(a, str) and isinstance(b, str))
        if not ok:
            raise EvaluationError(f"Cannot compare {_kind(a)} with {_kind(b)}", node.line,
                                  node.col)
        result = {"<": a < b, "<=": a <= b, "==": a == b, "!=": a != b, ">=": a >= b,
                  ">": a > b}[op]
        return 1.0 if result else 0.0

    def arith(self, op: str, a: Value, b: Value, node: Node) -> Value:
        def num(x: float, y: float) -> float:
            if op == "+":
                return x + y
            if op == "-":
                return x - y
            if op == "*":
                return x * y
            if y == 0:
                raise EvaluationError("Division by zero", node.line, node.col)
            return x / y

        if isinstance(a, float) and isinstance(b, float):
            return num(a, b)
        if isinstance(a, list) and isinstance(b, float):
            return [num(x, b) for x in a]
        if isinstance(a, float) and isinstance(b, list):
            return [num(a, y) for y in b]
        if isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                raise EvaluationError(f"Vectors of lengths {len(a)} and {len(b)} cannot be "
                                      f"combined", node.line, node.col)
            return [num(x, y) for x, y in zip(a, b, strict=True)]
        if isinstance(a, Interval) and isinstance(b, float) and op in ("*", "/"):
            return Interval(num(a.seconds, b))
        if isinstance(a, float) and isinstance(b, Interval) and op == "*":
            return Interval(a * b.seconds)
        if isinstance(a, Interval) and isinstance(b, Interval) and op in ("+", "-"):
            return Interval(num(a.seconds, b.seconds))
        raise EvaluationError(f"Operator {op} does not apply to {_kind(a)} and {_kind(b)}",
                              node.line, node.col)

    # --- functions ----------------------------------------------------------------------

    def call(self, node: Call) -> Value:
        f = node.function
        if f in NOT_EMULATED_FUNCTIONS:
            raise NotEmulatedError(f"{f}() is not emulated", node.line, node.col)
        if f == "rand":
            return float(self.ctx.rng())
        if f == "stop":
            raise StopEvaluation()
        args = [self.eval(a) for a in node.args]
        for a in args:
            if isinstance(a, MetricRef):
                raise NotEmulatedError(f"{a.name} used without GetSample() is not emulated",
                                       node.line, node.col)
        if f in ("lg", "ln", "log"):
            base = {"lg": 2.0, "ln": math.e, "log": 10.0}[f]
            if len(args) != 1:
                raise EvaluationError(f"{f}() takes one argument", node.line, node.col)
            one = args[0]
            values = one if isinstance(one, list) else [one]
            out = [self._log(x, base, node) for x in values]
            return out if isinstance(one, list) else out[0]
        if f in ("val", "percentile"):
            if len(args) != 2 or not isinstance(args[1], float):
                raise EvaluationError(f"{f}() takes a vector and a number", node.line, node.col)
            vec = self.flat([args[0]], node)
            return _val(vec, args[1], node) if f == "val" else _percentile(vec, args[1], node)
        values = self.flat(args, node)
        if f == "len":
            return float(len(values))
        if f == "sum":
            return float(sum(values))
        if not values:
            raise EvaluationError(f"{f}() of an empty list", node.line, node.col)
        if f == "min":
            return min(values)
        if f == "max":
            return max(values)
        if f == "avg":
            return sum(values) / len(values)
        if f == "range":
            return max(values) - min(values)
        if f == "norm":
            return math.sqrt(sum(v * v for v in values))
        # std: the sample standard deviation
        if len(values) < 2:
            return 0.0
        mean = sum(values) / len(values)
        return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))

    @staticmethod
    def _log(x: Value, base: float, node: Node) -> float:
        if not isinstance(x, float) or x <= 0:
            raise EvaluationError("A logarithm needs a positive number", node.line, node.col)
        return math.log(x, base)

    @staticmethod
    def flat(args: list[Value], node: Node) -> list[float]:
        """A doubleVecList: doubles and doubleVecs, flattened."""
        out: list[float] = []
        for a in args:
            if isinstance(a, float):
                out.append(a)
            elif isinstance(a, list):
                out.extend(a)
            else:
                raise EvaluationError(f"Expected numbers or vectors, not {_kind(a)}", node.line,
                                      node.col)
        return out

    # --- samples ------------------------------------------------------------------------

    def method(self, node: Method) -> Value:
        counts = node.target.name if isinstance(node.target, Name) else ""
        target = MetricRef(NODE_COUNTS[counts]) if counts in NODE_COUNTS else self.eval(node.target)
        if node.args is None or node.method in NOT_EMULATED_METHODS:
            what = node.method if node.args is None else f"{node.method}()"
            raise NotEmulatedError(f"{what} is not emulated", node.line, node.col)
        if not isinstance(target, MetricRef):
            raise EvaluationError(f"{node.method}() applies to a metric such as $PendingTasks, "
                                  f"not {_kind(target)}", node.line, node.col)
        args = [self.eval(a) for a in node.args]
        series = [(t, float(m.get(target.name, 0.0))) for t, m in self.ctx.history]
        if node.method == "Count":
            return float(len(series))
        if node.method == "GetSamplePeriod":
            return Interval(SAMPLE_PERIOD)
        if node.method == "GetSamplePercent":
            if not 1 <= len(args) <= 2 or not all(isinstance(a, Interval) for a in args):
                raise EvaluationError("GetSamplePercent() takes one or two time intervals",
                                      node.line, node.col)
            start, end = (Interval(0.0), args[0]) if len(args) == 1 else (args[0], args[1])
            return self.window(series, start, end)[1]
        # GetSample
        if len(args) == 1 and isinstance(args[0], float):
            count = args[0]
            if count < 1 or not count.is_integer():
                raise EvaluationError("GetSample(count) needs a whole number of samples of at "
                                      "least 1", node.line, node.col)
            if not series:
                raise InsufficientSampleData(f"Insufficient data from data set: {target.name} "
                                             f"wanted {int(count)} samples, received 0",
                                             node.line, node.col)
            return [v for _, v in series[-int(count):]]
        if not 1 <= len(args) <= 3 or not isinstance(args[0], Interval):
            raise EvaluationError("GetSample() takes a count, or a time interval, an optional "
                                  "end interval and an optional sample percentage", node.line,
                                  node.col)
        intervals = [a for a in args if isinstance(a, Interval)]
        rest = args[len(intervals):]
        if len(intervals) > 2 or len(rest) > 1 or (rest and not isinstance(rest[0], float)):
            raise EvaluationError("GetSample() takes a count, or a time interval, an optional "
                                  "end interval and an optional sample percentage", node.line,
                                  node.col)
        start, end = (Interval(0.0), intervals[0]) if len(intervals) == 1 else (
            intervals[0], intervals[1])
        values, percent = self.window(series, start, end)
        if rest and percent < rest[0]:
            raise InsufficientSampleData(f"Insufficient data from data set: {target.name} wanted "
                                         f"{format_value(rest[0])}%, received "
                                         f"{format_value(float(math.floor(percent)))}%",
                                         node.line, node.col)
        return values

    def window(self, series: list[tuple[float, float]], start: Interval,
               end: Interval) -> tuple[list[float], float]:
        """Samples taken between `end` and `start` ago (look-back intervals), and the
        percentage of the samples that window should hold."""
        ctx = self.ctx
        newest = ctx.now - start.seconds * ctx.scale
        oldest = ctx.now - end.seconds * ctx.scale
        if oldest > newest:
            oldest, newest = newest, oldest
        values = [v for t, v in series if oldest < t <= newest]
        expected = (newest - oldest) / ctx.period if ctx.period > 0 else 0.0
        if expected < 1:
            percent = 100.0 if values else 0.0
        else:
            percent = min(100.0, 100.0 * len(values) / expected)
        return values, percent


def _kind(value: Value) -> str:
    if isinstance(value, float):
        return "a number"
    if isinstance(value, list):
        return "a vector"
    if isinstance(value, Interval):
        return "a time interval"
    if isinstance(value, MetricRef):
        return f"the metric {value.name}"
    return "a string"


def _val(vec: list[float], i: float, node: Node) -> float:
    if not i.is_integer() or not 0 <= i < len(vec):
        raise EvaluationError(f"val(): index {format_value(i)} is outside the vector of length "
                              f"{len(vec)}", node.line, node.col)
    return vec[int(i)]


def _percentile(vec: list[float], p: float, node: Node) -> float:
    if not vec or not 0 <= p <= 100:
        raise EvaluationError("percentile() needs a non-empty vector and a percentage 0-100",
                              node.line, node.col)
    ordered = sorted(vec)
    rank = max(1, math.ceil(p / 100 * len(ordered)))  # nearest rank
    return ordered[rank - 1]


def _nodes(value: Value) -> int:
    """A target as a node count: truncated, as the docs' `(x + 3) / 4` idiom for a ceiling
    implies (Example 3), and never negative."""
    return max(0, int(value)) if isinstance(value, float) and math.isfinite(value) else 0


def evaluate(formula: Formula, ctx: Context) -> Outcome:
    """Run the statements in order. An error stops the run: the outcome keeps the targets
    from before it (`Context.target_*`) and reports the variables assigned so far."""
    ev = _Evaluator(ctx)
    out = ev.run(formula)
    if out.error is not None:
        out.target_dedicated, out.target_low_priority = (ctx.target_dedicated,
                                                         ctx.target_low_priority)
    return out
