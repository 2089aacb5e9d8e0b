"""Autoscale formulas: the language (`syntax`) and its evaluation (`evaluation`).

Role: the public names the models use: `parse` a formula (`FormulaSyntaxError`; what the
emulator does not emulate is in `Formula.not_emulated`), `evaluate` it against a `Context`
into an `Outcome` (with an `EvaluationError` when the run failed). Source of the language:
https://learn.microsoft.com/azure/batch/batch-automatic-scaling.

Imports: the standard library and the sub-modules.
"""

from .evaluation import Context, Outcome, evaluate
from .syntax import (
    DEALLOCATION_OPTIONS,
    MAX_LENGTH,
    SAMPLE_PERIOD,
    EvaluationError,
    Formula,
    FormulaError,
    FormulaSyntaxError,
    InsufficientSampleData,
    Interval,
    NotEmulatedError,
    format_value,
    parse,
)

__all__ = [
    "DEALLOCATION_OPTIONS", "MAX_LENGTH", "SAMPLE_PERIOD", "Context", "EvaluationError",
    "Formula", "FormulaError", "FormulaSyntaxError", "InsufficientSampleData", "Interval",
    "NotEmulatedError", "Outcome", "evaluate", "format_value", "parse",
]
