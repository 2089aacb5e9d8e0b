"""The emulated scheduling latency: when a task that entered `active` may first be placed.

A hand-driven world on a fake clock (`backend.now`): a task added, retried or requeued
is skipped until `eligible_at`, the tasks behind it are not, and the tick's timeout is
the time left until the earliest one. Also: argument validation and the CLI flag.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from emulator_fakes import World

from azure_batch_executor.cli.emulator import parse_latency
from azure_batch_executor.cli.serving import CommandError
from azure_batch_executor.emulator import BatchEmulator
from azure_batch_executor.emulator.scheduler import IDLE_TICK

T0 = 1_000_000.0


def _clocked(make_world: Callable[..., World], **settings: Any) -> tuple[World, list[float]]:
    """A world whose backend reads the time from `clock[0]`, with one 1-slot node."""
    world = make_world(**settings)
    clock = [T0]
    world.backend.now = lambda: clock[0]
    world.pool()
    world.job()
    return world, clock


def _placed(world: World) -> list[str]:
    return [spec.env["AZ_BATCH_TASK_ID"] for spec in world.runner.specs]


def test_off_by_default_places_at_once(make_world: Callable[..., World]) -> None:
    world, _ = _clocked(make_world)
    world.task("t1")
    assert world.get("t1").eligible_at == 0.0  # at once, whatever the clock says
    world.tick(1)
    assert _placed(world) == ["t1"]


def test_task_waits_for_its_latency_and_the_tick_wakes_on_time(
        make_world: Callable[..., World]) -> None:
    world, clock = _clocked(make_world, scheduling_latency=(0.5, 0.5))
    world.task("t1")
    assert world.get("t1").eligible_at == T0 + 0.5
    assert world.scheduler.tick() == pytest.approx(0.5)  # wakes exactly when it is due
    assert world.scheduler.next_eligible == T0 + 0.5
    assert world.get("t1").state == "active" and not world.runner.specs
    clock[0] = T0 + 0.3
    assert world.scheduler.tick() == pytest.approx(0.2)
    assert not world.runner.specs
    clock[0] = T0 + 0.5
    world.scheduler.tick()
    assert _placed(world) == ["t1"] and world.get("t1").state == "running"
    assert world.scheduler.next_eligible is None


def test_long_latency_still_caps_the_wait_at_the_idle_tick(
        make_world: Callable[..., World]) -> None:
    world, _ = _clocked(make_world, scheduling_latency=(30.0, 30.0))
    world.task("t1")
    assert world.scheduler.tick() == IDLE_TICK
    assert world.scheduler.next_eligible == T0 + 30.0


def test_waiting_task_does_not_block_eligible_ones_behind_it(
        make_world: Callable[..., World]) -> None:
    world, clock = _clocked(make_world, scheduling_latency=(5.0, 5.0))
    world.task("early")  # eligible at T0 + 5
    world.settings.scheduling_latency = (0.0, 0.0)
    world.task("late")  # eligible at once
    world.tick(1)
    assert _placed(world) == ["late"]
    world.runner.finish(world.runner.running()[0])
    clock[0] = T0 + 5.0
    world.tick(1)
    assert _placed(world) == ["late", "early"]


def test_creation_order_among_eligible_tasks(make_world: Callable[..., World]) -> None:
    world, clock = _clocked(make_world, scheduling_latency=(1.0, 1.0))
    world.runner.auto = lambda spec: 0
    for name in ("a", "b", "c"):
        world.task(name)
    clock[0] = T0 + 1.0
    world.tick(4)
    assert _placed(world) == ["a", "b", "c"]


def test_retry_draws_a_new_latency(make_world: Callable[..., World]) -> None:
    world, clock = _clocked(make_world, scheduling_latency=(2.0, 2.0))
    world.task("t1", constraints={"maxTaskRetryCount": 1})
    clock[0] = T0 + 2.0
    world.tick(1)
    clock[0] = T0 + 3.0
    world.runner.finish(world.runner.running()[0], exit_code=1)
    task = world.get("t1")
    assert task.state == "active" and task.retry_count == 1
    assert task.eligible_at == T0 + 5.0
    clock[0] = T0 + 4.9
    world.tick(1)
    assert len(world.runner.specs) == 1
    clock[0] = T0 + 5.0
    world.tick(1)
    assert len(world.runner.specs) == 2 and world.get("t1").state == "running"


def test_requeue_draws_a_new_latency(make_world: Callable[..., World]) -> None:
    world, clock = _clocked(make_world, scheduling_latency=(1.0, 1.0))
    world.task("t1")
    clock[0] = T0 + 1.0
    world.tick(1)
    clock[0] = T0 + 10.0
    running = world.get("t1")
    with world.backend.op():
        world.backend.requeue_task(running, clock[0])
    world.tick(1)  # the requeued attempt ends; the task waits again
    task = world.get("t1")
    assert task.state == "active" and task.requeue_count == 1
    assert task.eligible_at == T0 + 11.0 and len(world.runner.specs) == 1
    clock[0] = T0 + 11.0
    world.tick(1)
    assert len(world.runner.specs) == 2


def test_latency_change_applies_to_later_entries_only(
        make_world: Callable[..., World]) -> None:
    world, _ = _clocked(make_world, scheduling_latency=(4.0, 4.0))
    world.task("before")
    world.settings.scheduling_latency = (1.0, 1.0)
    world.task("after")
    assert world.get("before").eligible_at == T0 + 4.0
    assert world.get("after").eligible_at == T0 + 1.0


def test_terminated_waiting_task_completes_and_never_runs(
        make_world: Callable[..., World]) -> None:
    world, clock = _clocked(make_world, scheduling_latency=(1.0, 1.0))
    world.task("t1")
    world.tick(1)
    world.do("terminate_task_api", "j1", "t1")
    task = world.get("t1")
    assert task.state == "completed" and task.failure is not None
    assert task.failure["code"] == "TaskEnded" and task.start_time is None
    clock[0] = T0 + 5.0
    world.tick(2)
    assert not world.runner.specs


def test_max_parallel_tasks_still_bounds_running_tasks(
        make_world: Callable[..., World]) -> None:
    world = make_world(scheduling_latency=(1.0, 1.0))
    clock = [T0]
    world.backend.now = lambda: clock[0]
    world.pool(slots=4)
    world.job(maxParallelTasks=2)
    for i in range(4):
        world.task(f"t{i}")
    clock[0] = T0 + 1.0
    world.tick(2)
    assert len(world.runner.running()) == 2
    world.runner.finish(world.runner.running()[0])
    world.tick(1)
    assert len(world.runner.running()) == 2 and len(world.runner.specs) == 3


def _offsets(world: World, count: int) -> list[float]:
    for i in range(count):
        world.task(f"t{i}")
    return [world.get(f"t{i}").eligible_at - T0 for i in range(count)]


def test_seeded_draws_are_reproducible_and_in_range(make_world: Callable[..., World]) -> None:
    first = _offsets(_clocked(make_world, scheduling_latency=(1.0, 3.0),
                              scheduling_seed=7)[0], 20)
    again = _offsets(_clocked(make_world, scheduling_latency=(1.0, 3.0),
                              scheduling_seed=7)[0], 20)
    other = _offsets(_clocked(make_world, scheduling_latency=(1.0, 3.0),
                              scheduling_seed=8)[0], 20)
    assert first == again and first != other
    assert all(1.0 <= d <= 3.0 for d in first) and len(set(first)) > 1


@pytest.mark.parametrize("bad", [(3, 2), (-1, 2), (0, float("inf")), ("a", 1), (1,), 5, None])
def test_bad_latency_is_a_value_error_naming_the_argument(bad: Any) -> None:
    with pytest.raises(ValueError, match="scheduling_latency"):
        BatchEmulator(scheduling_latency=bad)


def test_bad_seed_is_a_value_error_naming_the_argument() -> None:
    with pytest.raises(ValueError, match="scheduling_seed"):
        BatchEmulator(scheduling_seed="seven")  # type: ignore[arg-type]


def test_good_arguments_are_accepted() -> None:
    BatchEmulator(scheduling_latency=(2, 5), scheduling_seed=1)
    BatchEmulator(**{"scheduling_latency": (0.5, 0.5)})  # as LocalStack's emulator_options


@pytest.mark.parametrize("text, expected", [("2-5", (2.0, 5.0)), ("3", (3.0, 3.0)),
                                            ("0", (0.0, 0.0)), ("0.5-1.5", (0.5, 1.5))])
def test_cli_flag_values(text: str, expected: tuple[float, float]) -> None:
    assert parse_latency(text) == expected


@pytest.mark.parametrize("text", ["5-2", "-1", "abc", "1-2-3", "", "inf", "2-"])
def test_cli_flag_bad_values_name_the_flag(text: str) -> None:
    with pytest.raises(CommandError, match="--scheduling-latency") as error:
        parse_latency(text)
    assert "\n" not in error.value.one_line()
