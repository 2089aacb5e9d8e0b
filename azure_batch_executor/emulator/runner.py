"""Runs task command lines for the Batch emulator: the "compute node" side.

Role: given a `RunSpec` (one attempt of one task on one node slot), prepare a
fresh task directory, download resource files from their blob URLs exactly as
given, run the command line *without a shell* in `wd` with the environment the
models built, stream stdout/stderr to files, enforce the wall-clock limit,
upload output files per their upload condition, and report one `RunOutcome`
through the `on_done` callback.

Imports: the standard library only (and sibling `emulator` modules that are
themselves stdlib-only). The emulator never imports the client package.

INTERFACE CONTRACT (used by the models/scheduler; do not change signatures):

    runner = TaskRunner()
    runner.start(spec, on_done)      # returns at once; on_done(outcome) is called exactly once
    runner.terminate(run_id, reason) # reason "terminated" | "requeued"; kills the process
                                     # group, skips uploads, on_done gets that reason
    runner.kill(run_id) -> bool      # SIGKILL the task's process only (admin kill_task):
                                     # the attempt then ends like any non-zero exit
                                     # (exit_code 137, uploads per condition)
    runner.stop()                    # kill every process, join threads; no callbacks after
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

OutcomeReason = Literal[
    "exited",         # the process ran and exited (any code); uploads were attempted per condition
    "preprocessing",  # no process ran: resource file download failed, program not found, ...
    "upload",         # the process ran, but an output file upload failed
    "walltime",       # killed by maxWallClockTime (exit_code 137, uploads as for a non-zero exit)
    "terminated",     # killed by terminate(run_id, "terminated"); no uploads
    "requeued",       # killed by terminate(run_id, "requeued"); no uploads
]


@dataclass(frozen=True)
class FailureInfo:
    """Batch `failureInfo`: category is "usererror" or "servererror"."""

    category: str
    code: str
    message: str


@dataclass(frozen=True)
class RunSpec:
    """One attempt of one task, as the models hand it to the runner."""

    run_id: str
    command_line: str
    task_dir: Path                      # .../workitems/<jobId>/job-1/<taskId>; wd is task_dir/"wd"
    env: dict[str, str]                 # the complete process environment (PATH included)
    resource_files: list[dict] = field(default_factory=list)  # JSON as received (camelCase)
    output_files: list[dict] = field(default_factory=list)    # JSON as received (camelCase)
    max_wall_clock_seconds: float | None = None


@dataclass(frozen=True)
class RunOutcome:
    """What one attempt ended with; the models turn it into task state."""

    run_id: str
    reason: OutcomeReason
    exit_code: int | None               # None when no process ran; 128+N for death by signal N
    failure: FailureInfo | None         # set for preprocessing/upload/walltime/terminated
    start_time: float                   # time.time() when the attempt started
    end_time: float                     # time.time() when it ended (after uploads)


class TaskRunner:
    """Runs attempts as subprocesses; thread-safe."""

    def start(self, spec: RunSpec, on_done: Callable[[RunOutcome], None]) -> None:
        raise NotImplementedError

    def terminate(self, run_id: str, reason: Literal["terminated", "requeued"]) -> None:
        raise NotImplementedError

    def kill(self, run_id: str) -> bool:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError
