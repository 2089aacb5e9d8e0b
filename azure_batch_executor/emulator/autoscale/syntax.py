"""The autoscale formula language: the names it knows, its tokens, its syntax tree, `parse`.

Role: turn a pool's `autoScaleFormula` into a `Formula` (statements as a small syntax
tree) and list what it uses that the emulator does not emulate; `evaluation.py` runs it.
The language is the one of "Create an automatic formula for scaling compute nodes in a
Batch pool" (https://learn.microsoft.com/azure/batch/batch-automatic-scaling), as far as
docs/dev/emulator-rest.md ("Autoscale formulas") says:

    formula := statement? (";" statement?)*         // and /* */ comments anywhere
    statement := name "=" expr | expr               name: $x or x (user), $Target... (service)
    expr := or ("?" expr ":" expr)?
    or := and ("||" and)*    and := eq ("&&" eq)*    eq := rel (("=="|"!=") rel)*
    rel := add (("<"|"<="|">"|">=") add)*    add := mul (("+"|"-") mul)*
    mul := unary (("*"|"/") unary)*    unary := ("-"|"!"|"+") unary | postfix
    postfix := primary ("." Method "(" args ")")*
    primary := number | name | function "(" args ")" | "(" expr ")"

Emulated: `$TargetDedicatedNodes`, `$TargetLowPriorityNodes` (aliases `$TargetDedicated`,
`$TargetLowPriority`), `$NodeDeallocationOption` (`requeue`, `terminate`,
`taskcompletion`, `retaineddata`); the sampled metrics `$ActiveTasks`, `$RunningTasks`,
`$PendingTasks`, `$PreemptedNodeCount`, `$CurrentDedicatedNodes`,
`$CurrentLowPriorityNodes` (the two node counts also as plain numbers) with
`GetSample`, `GetSamplePercent`, `Count`, `GetSamplePeriod`; `TimeInterval_*`; the
functions `min max avg sum len range std norm val percentile lg ln log rand stop`.
Documented but not emulated (listed in `Formula.not_emulated`, refused in strict mode by
the caller): the resource metrics (`$CPUPercent`, `$MemoryBytes`, ...), `$SucceededTasks`,
`$FailedTasks`, `$SampleNodeCount`, `time()`, `vec()`, string literals, timestamp
members, `HistoryBeginTime()`, and a task metric used without a method. Anything else
unknown is a syntax error, as on the service (400 `AutoScalingFormulaSyntaxError`).

Imports: the standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_LENGTH = 8192  # characters (BatchErrorCodeStrings.AutoScaleFormulaTooLong)
MAX_STATEMENTS = 100  # "can include up to 100 statements" (batch-automatic-scaling)
SAMPLE_PERIOD = 30.0  # service seconds between metric samples ("every 30 seconds")
DEALLOCATION_OPTIONS = ("requeue", "terminate", "taskcompletion", "retaineddata")

TIME_INTERVALS = {
    "TimeInterval_Zero": 0.0, "TimeInterval_100ns": 1e-7, "TimeInterval_Microsecond": 1e-6,
    "TimeInterval_Millisecond": 1e-3, "TimeInterval_Second": 1.0, "TimeInterval_Minute": 60.0,
    "TimeInterval_Hour": 3600.0, "TimeInterval_Day": 86400.0, "TimeInterval_Week": 604800.0,
    "TimeInterval_Year": 365 * 86400.0,
}
TARGETS = {"$TargetDedicatedNodes": "$TargetDedicated",
           "$TargetLowPriorityNodes": "$TargetLowPriority"}
ALIASES = {alias: name for name, alias in TARGETS.items()}
# sampled metrics the emulator records (models/autoscale_ops.py `pool_metrics`)
METRICS = frozenset({"$ActiveTasks", "$RunningTasks", "$PendingTasks", "$PreemptedNodeCount",
                     "$CurrentDedicatedNodes", "$CurrentLowPriorityNodes"})
NODE_COUNTS = {"$CurrentDedicatedNodes": "$CurrentDedicatedNodes",
               "$CurrentDedicated": "$CurrentDedicatedNodes",
               "$CurrentLowPriorityNodes": "$CurrentLowPriorityNodes"}
NOT_EMULATED_METRICS = frozenset({
    "$CPUPercent", "$WallClockSeconds", "$MemoryBytes", "$DiskBytes", "$DiskReadBytes",
    "$DiskWriteBytes", "$DiskReadOps", "$DiskWriteOps", "$NetworkInBytes", "$NetworkOutBytes",
    "$SampleNodeCount", "$SucceededTasks", "$FailedTasks"})
FUNCTIONS = frozenset({"min", "max", "avg", "sum", "len", "range", "std", "norm", "val",
                       "percentile", "lg", "ln", "log", "rand", "stop"})
NOT_EMULATED_FUNCTIONS = frozenset({"time", "vec"})
METHODS = frozenset({"GetSample", "GetSamplePercent", "Count", "GetSamplePeriod"})
NOT_EMULATED_METHODS = frozenset({"HistoryBeginTime"})


# --- errors ----------------------------------------------------------------------------


class FormulaError(Exception):
    """A formula problem, with the service's "Line L, Col C: ..." position."""

    code = "AutoScalingFormulaSyntaxError"

    def __init__(self, message: str, line: int = 0, col: int = 0) -> None:
        self.line, self.col, self.detail = line, col, message
        super().__init__(f"Line {line}, Col {col}: {message}" if line else message)


class FormulaSyntaxError(FormulaError):
    """The text is not a formula (the service answers 400 AutoScalingFormulaSyntaxError)."""


class EvaluationError(FormulaError):
    """The formula failed while it ran (reported in `autoScaleRun.error`, pool unchanged)."""

    code = "AutoScaleFormulaEvaluationError"
    summary = "Autoscale evaluation failed"


class InsufficientSampleData(EvaluationError):
    code = "InsufficientSampleData"
    summary = "Autoscale evaluation failed due to insufficient sample data"


class NotEmulatedError(EvaluationError):
    """A documented part of the language the emulator does not evaluate (loose mode)."""

    code = "NotImplemented"
    summary = "Autoscale evaluation failed: the formula uses what the emulator does not emulate"


class StopEvaluation(Exception):
    """`stop()`: end the evaluation, keeping what was assigned."""


# --- values ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A `timeinterval`, in the service's seconds."""

    seconds: float


@dataclass(frozen=True)
class MetricRef:
    name: str


Value = Any  # float | list[float] | Interval | str | MetricRef


def format_value(value: Value) -> str:
    """How `autoScaleRun.results` shows a value (`3`, `2.5`, `[1,2]`, `00:05:00`)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float | int):
        v = float(value)
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return repr(v)
    if isinstance(value, list):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if isinstance(value, Interval):
        total = value.seconds
        days, rest = divmod(abs(total), 86400)
        hours, rest = divmod(rest, 3600)
        minutes, seconds = divmod(rest, 60)
        text = f"{int(hours):02d}:{int(minutes):02d}:{seconds:06.3f}".rstrip("0").rstrip(".")
        text = f"{int(days)}.{text}" if days else text
        return "-" + text if total < 0 else text
    return str(value)


# --- lexer -----------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<str>"[^"\n]*")
  | (?P<name>\$?[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>&&|\|\||==|!=|<=|>=|[-+*/()?:;,.<>=!])
""", re.VERBOSE | re.DOTALL)


@dataclass(frozen=True)
class _Tok:
    kind: str  # num | str | name | op | end
    text: str
    line: int
    col: int


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos, line, line_start = 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise FormulaSyntaxError(f"Unexpected character {text[pos]!r}", line,
                                     pos - line_start + 1)
        kind = m.lastgroup or ""
        if kind not in ("ws", "comment"):
            out.append(_Tok(kind, m.group(), line, pos - line_start + 1))
        chunk = m.group()
        if "\n" in chunk:
            line += chunk.count("\n")
            line_start = pos + chunk.rindex("\n") + 1
        pos = m.end()
    out.append(_Tok("end", "", line, pos - line_start + 1))
    return out


# --- syntax tree -----------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    line: int
    col: int


@dataclass(frozen=True)
class Num(Node):
    value: float


@dataclass(frozen=True)
class Str(Node):
    value: str


@dataclass(frozen=True)
class Name(Node):
    name: str


@dataclass(frozen=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Cond(Node):
    test: Node
    then: Node
    other: Node


@dataclass(frozen=True)
class Call(Node):
    function: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Method(Node):
    target: Node
    method: str
    args: tuple[Node, ...] | None  # None: a member (`.hour`), not a call


@dataclass(frozen=True)
class Statement:
    target: str | None  # None: an expression statement (`stop()`)
    expr: Node
    line: int
    col: int


@dataclass(frozen=True)
class Formula:
    text: str
    statements: tuple[Statement, ...]
    not_emulated: tuple[str, ...] = ()  # what the formula uses that is not emulated


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.not_emulated: list[str] = []

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def take(self, text: str | None = None) -> _Tok:
        tok = self.tok
        if text is not None and tok.text != text:
            found = "the end of the formula" if tok.kind == "end" else repr(tok.text)
            raise FormulaSyntaxError(f"Expected {text!r} but found {found}", tok.line, tok.col)
        self.i += 1
        return tok

    def at(self, *texts: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in texts

    def note(self, feature: str) -> None:
        if feature not in self.not_emulated:
            self.not_emulated.append(feature)

    def formula(self, text: str) -> Formula:
        statements: list[Statement] = []
        while self.tok.kind != "end":
            if self.at(";"):
                self.take()
                continue
            statements.append(self.statement())
            if self.tok.kind != "end":
                self.take(";")
        if len(statements) > MAX_STATEMENTS:
            raise FormulaSyntaxError(f"The formula has {len(statements)} statements; the "
                                     f"maximum is {MAX_STATEMENTS}")
        return Formula(text, tuple(statements), tuple(self.not_emulated))

    def statement(self) -> Statement:
        tok = self.tok
        nxt = self.toks[self.i + 1]
        if tok.kind == "name" and nxt.kind == "op" and nxt.text == "=":
            self.i += 2
            target = tok.text
            if target in NOT_EMULATED_METRICS or target in METRICS or target in NODE_COUNTS:
                raise FormulaSyntaxError(f"{target} is read-only", tok.line, tok.col)
            return Statement(target, self.expr(), tok.line, tok.col)
        return Statement(None, self.expr(), tok.line, tok.col)

    def expr(self) -> Node:
        test = self.binary(0)
        if self.at("?"):
            q = self.take()
            then = self.expr()
            self.take(":")
            return Cond(q.line, q.col, test, then, self.expr())
        return test

    LEVELS: tuple[tuple[str, ...], ...] = (("||",), ("&&",), ("==", "!="),
                                           ("<", "<=", ">", ">="), ("+", "-"), ("*", "/"))

    def binary(self, level: int) -> Node:
        if level == len(self.LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.at(*self.LEVELS[level]):
            op = self.take()
            left = Binary(op.line, op.col, op.text, left, self.binary(level + 1))
        return left

    def unary(self) -> Node:
        if self.at("-", "!", "+"):
            op = self.take()
            operand = self.unary()
            return operand if op.text == "+" else Unary(op.line, op.col, op.text, operand)
        return self.postfix(self.primary())

    def args(self) -> tuple[Node, ...]:
        self.take("(")
        args: list[Node] = []
        if not self.at(")"):
            args.append(self.expr())
            while self.at(","):
                self.take()
                args.append(self.expr())
        self.take(")")
        return tuple(args)

    def postfix(self, node: Node) -> Node:
        while self.at("."):
            dot = self.take()
            name = self.take()
            if name.kind != "name":
                raise FormulaSyntaxError(f"Expected a method name after '.' but found "
                                         f"{name.text!r}", name.line, name.col)
            args = self.args() if self.at("(") else None
            if args is None or name.text in NOT_EMULATED_METHODS:
                self.note(f"timestamp member .{name.text}" if args is None
                          else f"{name.text}()")
            elif name.text not in METHODS:
                raise FormulaSyntaxError(f"Unknown method {name.text}()", name.line, name.col)
            node = Method(dot.line, dot.col, node, name.text, args)
        return node

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind == "num":
            return Num(tok.line, tok.col, float(tok.text))
        if tok.kind == "str":
            self.note("string literals")
            return Str(tok.line, tok.col, tok.text[1:-1])
        if tok.kind == "op" and tok.text == "(":
            inner = self.expr()
            self.take(")")
            return inner
        if tok.kind == "name":
            if self.at("("):
                if tok.text in NOT_EMULATED_FUNCTIONS:
                    self.note(f"{tok.text}()")
                elif tok.text not in FUNCTIONS:
                    raise FormulaSyntaxError(f"Unknown function {tok.text}()", tok.line, tok.col)
                return Call(tok.line, tok.col, tok.text, self.args())
            if tok.text in NOT_EMULATED_METRICS:
                self.note(tok.text)
            elif tok.text in METRICS and tok.text not in NODE_COUNTS and not self.at("."):
                self.note(f"{tok.text} without GetSample()")
            return Name(tok.line, tok.col, tok.text)
        found = "the end of the formula" if tok.kind == "end" else repr(tok.text)
        raise FormulaSyntaxError(f"Expected a value but found {found}", tok.line, tok.col)


def parse(text: str) -> Formula:
    """The formula, or `FormulaSyntaxError`. `Formula.not_emulated` lists what the
    emulator cannot evaluate (the caller refuses it in strict mode)."""
    if len(text) > MAX_LENGTH:
        raise FormulaSyntaxError(f"The formula is {len(text)} characters long; the maximum is "
                                 f"{MAX_LENGTH}")
    return _Parser(text).formula(text)
