"""The autoscale formula language (`emulator.autoscale`): parsing, the emulated subset, evaluation.

The formulas are the ones Microsoft's page "Create an automatic formula for scaling compute
nodes in a Batch pool" recommends (https://learn.microsoft.com/azure/batch/batch-automatic-scaling,
"Sample autoscale formulas" and "Example autoscale formulas"), plus the one of the
PowerShell `Test-AzBatchAutoScale` page and the azure-batch SDK's recorded
`evaluate_pool_auto_scale` result. Those using what the emulator does not emulate (CPU
metrics, `time()`) must be reported as such, by name.
"""

from __future__ import annotations

import pytest

from azure_batch_executor.emulator.autoscale import (
    Context,
    EvaluationError,
    FormulaSyntaxError,
    InsufficientSampleData,
    NotEmulatedError,
    evaluate,
    format_value,
    parse,
)
from azure_batch_executor.emulator.autoscale.syntax import MAX_LENGTH

# --- the docs' formulas ----------------------------------------------------------------------

PENDING_TASKS = """startingNumberOfVMs = 1;
maxNumberofVMs = 25;
pendingTaskSamplePercent = $PendingTasks.GetSamplePercent(180 * TimeInterval_Second);
pendingTaskSamples = pendingTaskSamplePercent < 70 ? startingNumberOfVMs : avg($PendingTasks.GetSample(180 * TimeInterval_Second));
$TargetDedicatedNodes=min(maxNumberofVMs, pendingTaskSamples);
$NodeDeallocationOption = taskcompletion;"""  # noqa: E501

PREEMPTED_NODES = """maxNumberofVMs = 25;
$TargetDedicatedNodes = min(maxNumberofVMs, $PreemptedNodeCount.GetSample(180 * TimeInterval_Second));
$TargetLowPriorityNodes = min(maxNumberofVMs , maxNumberofVMs - $TargetDedicatedNodes);
$NodeDeallocationOption = taskcompletion;"""  # noqa: E501

TASK_BASED = """// Get pending tasks for the past 15 minutes.
$samples = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 15);
// If we have fewer than 70 percent data points, we use the last sample point,
// otherwise we use the maximum of last sample point and the history average.
$tasks = $samples < 70 ? max(0,$PendingTasks.GetSample(1)) : max( $PendingTasks.GetSample(1), avg($PendingTasks.GetSample(TimeInterval_Minute * 15)));
// If number of pending tasks is not 0, set targetVM to pending tasks, otherwise
// half of current dedicated.
$targetVMs = $tasks > 0? $tasks:max(0, $TargetDedicatedNodes/2);
// The pool size is capped at 20.
$TargetDedicatedNodes = max(0, min($targetVMs, 20));
// Set node deallocation mode - let running tasks finish before removing a node
$NodeDeallocationOption = taskcompletion;"""  # noqa: E501

PARALLEL_TASKS = """// Determine whether 70 percent of the samples have been recorded in the past
// 15 minutes; if not, use last sample
$samples = $ActiveTasks.GetSamplePercent(TimeInterval_Minute * 15);
$tasks = $samples < 70 ? max(0,$ActiveTasks.GetSample(1)) : max( $ActiveTasks.GetSample(1),avg($ActiveTasks.GetSample(TimeInterval_Minute * 15)));
// Set the number of nodes to add to one-fourth the number of active tasks
$cores = $TargetDedicatedNodes * 4;
$extraVMs = (($tasks - $cores) + 3) / 4;
$targetVMs = ($TargetDedicatedNodes + $extraVMs);
// Attempt to grow the number of compute nodes to match the number of active
// tasks, with a maximum of 3
$TargetDedicatedNodes = max(0,min($targetVMs,3));
// Keep the nodes active until the tasks finish
$NodeDeallocationOption = taskcompletion;"""  # noqa: E501

CPU_FORMULA = """$totalDedicatedNodes =
    (min($CPUPercent.GetSample(TimeInterval_Minute * 10)) > 0.7) ?
    ($CurrentDedicatedNodes * 1.1) : $CurrentDedicatedNodes;
$totalDedicatedNodes =
    (avg($CPUPercent.GetSample(TimeInterval_Minute * 60)) < 0.2) ?
    ($CurrentDedicatedNodes * 0.9) : $totalDedicatedNodes;
$TargetDedicatedNodes = min(400, $totalDedicatedNodes)"""

TIME_BASED = """$curTime = time();
$workHours = $curTime.hour >= 8 && $curTime.hour < 18;
$isWeekday = $curTime.weekday >= 1 && $curTime.weekday <= 5;
$isWorkingWeekdayHour = $workHours && $isWeekday;
$TargetDedicatedNodes = $isWorkingWeekdayHour ? 20:10;
$NodeDeallocationOption = taskcompletion;"""

INITIAL_SIZE = """
    $TargetDedicatedNodes = 4;
    lifespan         = time() - time("Mon, 06 Oct 2025 14:00:00 GMT");
    span             = TimeInterval_Minute * 60;
    startup          = TimeInterval_Minute * 10;
    ratio            = 50;

    $TargetDedicatedNodes = (lifespan > startup ? (max($RunningTasks.GetSample(span, ratio), $ActiveTasks.GetSample(span, ratio)) == 0 ? 0 : $TargetDedicatedNodes) : 4);
    """  # noqa: E501

POWERSHELL = ("totalNodes=($CPUPercent.GetSamplePercent(TimeInterval_Minute*0,"
              "TimeInterval_Minute*10)<0.7?5:(min($CPUPercent.GetSample(TimeInterval_Minute*0, "
              "TimeInterval_Minute*10))>0.8?($CurrentDedicated*1.1):$CurrentDedicated));"
              "$TargetDedicated=min(100,totalNodes);")


def history(values: list[float], *, metric: str = "$PendingTasks", period: float = 30.0,
            now: float = 3600.0, **others: list[float]) -> list[tuple[float, dict[str, float]]]:
    """Samples every `period` seconds ending at `now`, oldest first."""
    start = now - period * (len(values) - 1)
    samples = []
    for i, v in enumerate(values):
        snap = {metric: v}
        for name, series in others.items():
            snap[name] = series[i]
        samples.append((start + i * period, snap))
    return samples


def ctx(samples: list[tuple[float, dict[str, float]]] = (), **kwargs: object) -> Context:  # type: ignore[assignment]
    kwargs.setdefault("now", 3600.0)
    return Context(history=samples, **kwargs)  # type: ignore[arg-type]


def test_pending_tasks_sample_starts_with_one_node_then_follows_the_average() -> None:
    formula = parse(PENDING_TASKS)
    assert formula.not_emulated == ()
    fresh = evaluate(formula, ctx(history([4.0])))  # 1 sample of 6 expected: 16%
    assert fresh.error is None and fresh.target_dedicated == 1
    assert fresh.deallocation == "taskcompletion"
    busy = evaluate(formula, ctx(history([4.0, 6.0, 6.0, 8.0, 8.0, 10.0, 10.0])))
    assert busy.target_dedicated == 8  # avg of the last 180 s: 6 samples, 48 / 6
    assert busy.results.startswith("$TargetDedicatedNodes=8;$TargetLowPriorityNodes=0;"
                                   "$NodeDeallocationOption=taskcompletion;")
    assert "pendingTaskSamplePercent=100" in busy.results
    huge = evaluate(formula, ctx(history([100.0] * 7)))
    assert huge.target_dedicated == 25  # maxNumberofVMs


def test_preempted_nodes_sample_replaces_spot_with_dedicated() -> None:
    formula = parse(PREEMPTED_NODES)
    out = evaluate(formula, ctx(history([3.0] * 7, metric="$PreemptedNodeCount")))
    assert (out.target_dedicated, out.target_low_priority) == (3, 22)
    none = evaluate(formula, ctx(history([0.0] * 7, metric="$PreemptedNodeCount")))
    assert (none.target_dedicated, none.target_low_priority) == (0, 25)


def test_task_based_example_with_comments() -> None:
    formula = parse(TASK_BASED)
    assert formula.not_emulated == ()
    steady = evaluate(formula, ctx(history([5.0] * 31), target_dedicated=2))
    assert steady.target_dedicated == 5 and steady.error is None
    few_samples = evaluate(formula, ctx(history([7.0, 3.0]), target_dedicated=2))
    assert few_samples.target_dedicated == 3  # under 70%: the last sample
    idle = evaluate(formula, ctx(history([0.0] * 31), target_dedicated=6))
    assert idle.target_dedicated == 3  # half the current target
    capped = evaluate(formula, ctx(history([50.0] * 31)))
    assert capped.target_dedicated == 20


def test_parallel_tasks_example_uses_integer_truncation() -> None:
    formula = parse(PARALLEL_TASKS)
    # 1 node of 4 slots, 9 active tasks: (9 - 4 + 3) / 4 = 2 more nodes -> 3 (the cap)
    out = evaluate(formula, ctx(history([9.0] * 31, metric="$ActiveTasks"), target_dedicated=1))
    assert out.target_dedicated == 3
    # 6 active tasks: (6 - 4 + 3) / 4 = 1.25 -> 2.25 nodes, truncated to 2
    out = evaluate(formula, ctx(history([6.0] * 31, metric="$ActiveTasks"), target_dedicated=1))
    assert out.target_dedicated == 2
    assert "$extraVMs=1.25" in out.results and "$targetVMs=2.25" in out.results


@pytest.mark.parametrize(("text", "features"), [
    (CPU_FORMULA, ("$CPUPercent",)),
    (TIME_BASED, ("time()", "timestamp member .hour", "timestamp member .weekday")),
    (INITIAL_SIZE, ("time()", "string literals")),
    (POWERSHELL, ("$CPUPercent",)),
    ("$TargetDedicatedNodes = $PendingTasks;", ("$PendingTasks without GetSample()",)),
    ("$x = $SucceededTasks.GetSample(1); $TargetDedicatedNodes = 1;", ("$SucceededTasks",)),
    ("$x = $PendingTasks.HistoryBeginTime();", ("HistoryBeginTime()",)),
], ids=["cpu", "time-based", "initial-size", "powershell", "bare-metric", "succeeded",
        "history-begin"])
def test_docs_formulas_outside_the_subset_are_named(text: str, features: tuple[str, ...]
                                                    ) -> None:
    formula = parse(text)  # valid syntax: only the emulator lacks them
    assert formula.not_emulated == features
    out = evaluate(formula, ctx(history([1.0] * 7), target_dedicated=2))
    assert isinstance(out.error, NotEmulatedError)  # loose mode: the run fails, pool kept
    assert out.target_dedicated == 2 and out.error.code == "NotImplemented"


def test_sdk_recorded_evaluation_results() -> None:
    # azure-batch's test_batch_scale_pools records exactly this string
    out = evaluate(parse("$TargetDedicatedNodes=3"), ctx())
    assert out.results == "$TargetDedicatedNodes=3;$TargetLowPriorityNodes=0;" \
                          "$NodeDeallocationOption=requeue"
    same = evaluate(parse("$TargetDedicatedNodes = $CurrentDedicatedNodes;"),
                    ctx(current={"$CurrentDedicatedNodes": 4.0}))
    assert same.target_dedicated == 4


def test_user_variables_are_listed_after_the_service_ones_sorted() -> None:
    out = evaluate(parse("zeta = 1; $alpha = 2.5; Beta = 3; $TargetLowPriorityNodes = 1"),
                   ctx())
    assert out.results == ("$TargetDedicatedNodes=0;$TargetLowPriorityNodes=1;"
                           "$NodeDeallocationOption=requeue;$alpha=2.5;Beta=3;zeta=1")


# --- syntax ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "where", "what"), [
    ("$a = 1 +", "Line 1, Col 9", "Expected a value"),
    ("$a = foo(1);", "Line 1, Col 6", "Unknown function foo()"),
    ("$a = 1;\n$b = (2", "Line 2, Col 8", "Expected ')'"),
    ("$a = 1 $b = 2", "Line 1, Col 8", "Expected ';'"),
    ("$a = $PendingTasks.GetSampel(1)", "Line 1, Col 20", "Unknown method GetSampel()"),
    ("$PendingTasks = 3", "Line 1, Col 1", "read-only"),
    ("$a = 1 # comment", "Line 1, Col 8", "Unexpected character '#'"),
], ids=["dangling", "function", "paren", "separator", "method", "read-only", "hash-comment"])
def test_syntax_errors_name_line_and_column(text: str, where: str, what: str) -> None:
    with pytest.raises(FormulaSyntaxError) as info:
        parse(text)
    assert str(info.value).startswith(where) and what in str(info.value)
    assert info.value.code == "AutoScalingFormulaSyntaxError"


def test_limits_of_the_service() -> None:
    with pytest.raises(FormulaSyntaxError, match="maximum is 100"):
        parse(";".join(f"$v{i} = {i}" for i in range(101)))
    with pytest.raises(FormulaSyntaxError, match="8192"):
        parse("$a = 1;" + " " * MAX_LENGTH)


def test_comments_blank_statements_and_no_final_semicolon() -> None:
    out = evaluate(parse("/* block\n comment */ ;; $TargetDedicatedNodes = 2 // end"), ctx())
    assert out.target_dedicated == 2


# --- evaluation ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("expr", "value"), [
    ("1 + 2 * 3", 7.0), ("(1 + 2) * 3", 9.0), ("10 - 4 - 3", 3.0), ("8 / 2 / 2", 2.0),
    ("-2 * -3", 6.0), ("!0", 1.0), ("!5", 0.0), ("1 < 2 && 2 <= 2", 1.0),
    ("1 > 2 || 3 != 3", 0.0), ("2 == 2", 1.0), ("1 ? 2 : 3", 2.0), ("0 ? 2 : 0 ? 3 : 4", 4.0),
    ("min(3, 1, 2)", 1.0), ("max(1, 5)", 5.0), ("avg(1, 2, 3, 6)", 3.0), ("sum(1, 2)", 3.0),
    ("len(1, 2, 3)", 3.0), ("range(1, 5, 3)", 4.0), ("norm(3, 4)", 5.0), ("std(2, 4)", 1.4142),
    ("val($PendingTasks.GetSample(3), 0)", 1.0),
    ("percentile($PendingTasks.GetSample(3), 50)", 2.0),
    ("lg(8)", 3.0), ("log(100)", 2.0), ("ln(1)", 0.0), ("1.5e1", 15.0), (".5 + 0.5", 1.0),
    ("TimeInterval_Minute * 2 > 100 * TimeInterval_Second", 1.0),
    ("TimeInterval_Hour == 60 * TimeInterval_Minute", 1.0),
    ("$PendingTasks.Count()", 3.0),
])
def test_operators_and_functions(expr: str, value: float) -> None:
    out = evaluate(parse(f"$x = {expr};"), ctx(history([1.0, 2.0, 3.0])))
    assert out.error is None, out.error
    got = float(out.results.rsplit("$x=", 1)[1])
    assert got == pytest.approx(value, abs=1e-4)


def test_vectors_combine_elementwise() -> None:
    out = evaluate(parse("$v = $PendingTasks.GetSample(3) * 2 + 1; $TargetDedicatedNodes = "
                         "max($v)"), ctx(history([1.0, 2.0, 3.0])))
    assert "$v=[3,5,7]" in out.results and out.target_dedicated == 7


@pytest.mark.parametrize(("text", "message"), [
    ("$TargetDedicatedNodes = $undefined;", "used before it is assigned"),
    ("$x = 1 / 0;", "Division by zero"),
    ("$x = $PendingTasks.GetSample(2) + $PendingTasks.GetSample(3);", "lengths 2 and 3"),
    ("$TargetDedicatedNodes = $PendingTasks.GetSample(2);", "must be assigned a number"),
    ("$NodeDeallocationOption = 3;", "must be one of requeue"),
    ("$x = max($PendingTasks.GetSample(TimeInterval_Second, TimeInterval_Second * 2));",
     "empty list"),
    ("$x = TimeInterval_Minute + 1;", "does not apply"),
    ("$x = $PendingTasks.GetSample(0);", "whole number"),
])
def test_runtime_errors_keep_the_targets(text: str, message: str) -> None:
    out = evaluate(parse(text), ctx(history([1.0, 2.0, 3.0]), target_dedicated=5))
    assert isinstance(out.error, EvaluationError) and message in str(out.error)
    assert out.target_dedicated == 5


def test_insufficient_samples_fail_like_the_service() -> None:
    text = ("$x = 1;\n"
            "$TargetDedicatedNodes = avg($PendingTasks.GetSample(TimeInterval_Minute * 10, 70));")
    out = evaluate(parse(text), ctx(history([5.0] * 3), target_dedicated=1))  # 3 of 20: 15%
    assert isinstance(out.error, InsufficientSampleData)
    assert str(out.error) == ("Line 2, Col 42: Insufficient data from data set: $PendingTasks "
                              "wanted 70%, received 15%")
    assert out.target_dedicated == 1 and out.results.endswith("$x=1")  # partial results
    enough = evaluate(parse(text), ctx(history([5.0] * 21)))
    assert enough.target_dedicated == 5
    no_sample = evaluate(parse("$x = $PendingTasks.GetSample(1);"), ctx())
    assert isinstance(no_sample.error, InsufficientSampleData)  # not even one sample


def test_look_back_windows_and_percentages() -> None:
    samples = history([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])  # every 30 s, newest last
    text = ("$recent = $PendingTasks.GetSample(TimeInterval_Minute * 1);"
            "$older = $PendingTasks.GetSample(TimeInterval_Minute * 1, TimeInterval_Minute * 2);"
            "$pct = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 0, "
            "TimeInterval_Minute * 7);")
    out = evaluate(parse(text), ctx(samples))
    assert "$recent=[6,7]" in out.results and "$older=[4,5]" in out.results
    assert "$pct=50" in out.results  # 7 of the 14 samples 7 minutes should hold


def test_time_scale_compresses_intervals() -> None:
    # the emulator runs 300 service seconds in 0.3: samples every 0.03 s
    samples = [(10.0 + i * 0.03, {"$PendingTasks": float(i)}) for i in range(7)]
    out = evaluate(parse("$TargetDedicatedNodes = avg($PendingTasks.GetSample("
                         "TimeInterval_Second * 180, 90));"),
                   ctx(samples, now=10.19, period=0.03, scale=0.001))
    assert out.error is None and out.target_dedicated == 3  # avg(1..6)


def test_aliases_and_precedence_of_the_full_names() -> None:
    out = evaluate(parse("$TargetDedicatedNodes = 4; $TargetDedicated = 9;"), ctx())
    assert out.target_dedicated == 4
    out = evaluate(parse("$TargetDedicated = 9; $TargetLowPriority = 2; $x = $TargetDedicated"),
                   ctx())
    assert (out.target_dedicated, out.target_low_priority) == (9, 2)
    assert "$TargetDedicated=9" in out.results and "$x=9" in out.results


def test_targets_are_whole_and_never_negative() -> None:
    assert evaluate(parse("$TargetDedicatedNodes = 2.9"), ctx()).target_dedicated == 2
    assert evaluate(parse("$TargetDedicatedNodes = -3"), ctx()).target_dedicated == 0


def test_stop_keeps_what_was_assigned() -> None:
    out = evaluate(parse("$TargetDedicatedNodes = 3; stop(); $TargetDedicatedNodes = 9"), ctx())
    assert out.target_dedicated == 3 and out.error is None


def test_rand_is_between_zero_and_one() -> None:
    out = evaluate(parse("$TargetDedicatedNodes = rand() * 10"), ctx(rng=lambda: 0.45))
    assert out.target_dedicated == 4


@pytest.mark.parametrize(("value", "text"), [
    (3.0, "3"), (2.5, "2.5"), ([1.0, 2.5], "[1,2.5]"), ("requeue", "requeue"),
])
def test_format_value(value: object, text: str) -> None:
    assert format_value(value) == text
