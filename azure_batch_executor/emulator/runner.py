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

Threads:

    start() ──► attempt thread: fresh dirs ─► resource files ─► Popen ─► wait()
                                  ─► output files ─► on_done(outcome)   (no runner lock held)
    deadline thread (deadlines.py, one per runner): SIGKILLs the process group at maxWallClockTime
    terminate() / kill() / stop(): caller's thread; signal the process group and set
                                   the attempt's cancel Event (checked between transfers)

Choices where the service leaves room (docs/dev/emulator-rest.md, "Behaviour"):
- stdout.txt and stderr.txt are created empty at attempt start, before downloads;
  like real Batch nothing is written to them on a pre-processing failure (the
  failure goes to the outcome and to the `logging` log).
- A terminate request wins over every other ending if it arrives before the
  outcome is decided (also while uploading, which it aborts); its exit_code is
  the process's own code (137 when our SIGKILL ended it), None if none ran.
- The wall clock covers downloads and the process, not uploads. Expiring during
  downloads ends the attempt as "walltime" with exit_code None and no uploads.
  A walltime ending stays "walltime" even if an upload then fails (logged only).
- Upload failures: every entry is still attempted; the first failure is reported.
- kill() signals the whole process group, like terminate() and the wall clock
  ("only" above means: the attempt itself is not cancelled, uploads still run).
- Once stop() has begun no further on_done callbacks start; stop() ends the
  running attempts as "requeued" without reporting them.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

from .blobio import Aborted
from .deadlines import Deadlines
from .transfers import TransferFailure, download_resource_files, upload_output_files

log = logging.getLogger(__name__)

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
    # resource files and output files: the JSON as received (camelCase)
    resource_files: list[dict[str, Any]] = field(default_factory=list)
    output_files: list[dict[str, Any]] = field(default_factory=list)
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


WALLTIME_FAILURE = FailureInfo(
    "usererror", "TaskEnded", "The task was ended because its maximum wall clock time was exceeded"
)
TERMINATED_FAILURE = FailureInfo("usererror", "TaskEnded", "The task was ended by user request")


class _Attempt:
    """One running attempt. `lock` guards `proc`, `exited`, `cancel_reason`, `walltime`.

    `cancelled` (terminate, stop, wall clock) stops downloads and prevents the launch;
    `terminated` (terminate, stop) also stops uploads.
    """

    def __init__(self, spec: RunSpec, on_done: Callable[[RunOutcome], None]) -> None:
        self.spec = spec
        self.on_done = on_done
        self.start_time = time.time()
        self.lock = threading.Lock()
        self.cancelled = threading.Event()
        self.terminated = threading.Event()
        self.proc: subprocess.Popen[bytes] | None = None
        self.exited = False
        self.cancel_reason: Literal["terminated", "requeued"] | None = None
        self.walltime = False

    def killpg_locked(self) -> bool:
        """SIGKILL the process group if the process has not been reaped; hold `lock`."""
        if self.proc is None or self.exited:
            return False
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def cancel(self, reason: Literal["terminated", "requeued"]) -> None:
        with self.lock:
            if self.cancel_reason is None:
                self.cancel_reason = reason
            self.cancelled.set()
            self.terminated.set()
            self.killpg_locked()

    def kill(self) -> bool:
        with self.lock:
            return self.killpg_locked()

    def expire(self) -> None:
        with self.lock:
            if self.exited or self.cancel_reason is not None:
                return
            self.walltime = True
            self.cancelled.set()
            self.killpg_locked()


class TaskRunner:
    """Runs attempts as subprocesses, one thread per attempt; thread-safe.

    Keyword arguments (all optional):
    - `http_timeout`: socket timeout in seconds for each blob request.
    - `auto_storage_container_url`: maps an `autoStorageContainerName` to a
      container URL with a read+list SAS; without it such resource files fail
      pre-processing with `ResourceContainerNotFound`.
    - `join_timeout`: how long `stop()` waits for attempt threads in total.
    """

    def __init__(
        self,
        *,
        http_timeout: float = 60.0,
        auto_storage_container_url: Callable[[str], str] | None = None,
        join_timeout: float = 10.0,
    ) -> None:
        self._http_timeout = http_timeout
        self._auto_storage = auto_storage_container_url
        self._join_timeout = join_timeout
        self._lock = threading.Lock()
        self._attempts: dict[str, _Attempt] = {}
        self._threads: set[threading.Thread] = set()
        self._stopping = False
        self._deadlines = Deadlines()

    # -- public surface ------------------------------------------------------------------

    def start(self, spec: RunSpec, on_done: Callable[[RunOutcome], None]) -> None:
        attempt = _Attempt(spec, on_done)
        thread = threading.Thread(
            target=self._run, args=(attempt,), name=f"emulator-task-{spec.run_id}", daemon=True
        )
        with self._lock:
            if self._stopping:
                raise RuntimeError("cannot start new attempts after TaskRunner.stop()")
            if spec.run_id in self._attempts:
                raise ValueError(f"run_id {spec.run_id!r} is already running")
            self._attempts[spec.run_id] = attempt
            self._threads.add(thread)
            try:
                thread.start()
            except BaseException:
                del self._attempts[spec.run_id]
                self._threads.discard(thread)
                raise

    def terminate(self, run_id: str, reason: Literal["terminated", "requeued"]) -> None:
        if reason not in ("terminated", "requeued"):
            raise ValueError(f"reason must be 'terminated' or 'requeued', not {reason!r}")
        with self._lock:
            attempt = self._attempts.get(run_id)
        if attempt is not None:
            attempt.cancel(reason)

    def kill(self, run_id: str) -> bool:
        with self._lock:
            attempt = self._attempts.get(run_id)
        return attempt.kill() if attempt is not None else False

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            attempts = list(self._attempts.values())
            threads = list(self._threads)
        for attempt in attempts:
            attempt.cancel("requeued")
        deadline = time.monotonic() + self._join_timeout
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._deadlines.close()

    # -- one attempt ---------------------------------------------------------------------

    def _run(self, attempt: _Attempt) -> None:
        spec = attempt.spec
        try:
            outcome = self._execute(attempt)
        except BaseException as exc:  # never hang the scheduler on a runner bug
            log.exception("attempt %s failed inside the runner", spec.run_id)
            with attempt.lock:
                attempt.cancelled.set()
                attempt.terminated.set()
                attempt.killpg_locked()
                proc = attempt.proc
            if proc is not None:
                try:
                    proc.wait(timeout=5)  # reap it; it was just SIGKILLed
                except Exception:
                    log.exception("cannot reap the process of attempt %s", spec.run_id)
            outcome = self._outcome(
                attempt,
                "preprocessing",
                None,
                FailureInfo("servererror", "InternalError", f"emulator runner error: {exc!r}"),
            )
        try:
            with self._lock:
                self._attempts.pop(spec.run_id, None)
                deliver = not self._stopping
            if deliver:
                try:
                    attempt.on_done(outcome)
                except Exception:
                    log.exception("on_done raised for attempt %s", spec.run_id)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    @staticmethod
    def _outcome(
        attempt: _Attempt,
        reason: OutcomeReason,
        exit_code: int | None,
        failure: FailureInfo | None,
    ) -> RunOutcome:
        return RunOutcome(
            attempt.spec.run_id, reason, exit_code, failure, attempt.start_time, time.time()
        )

    def _cancelled_outcome(self, attempt: _Attempt, exit_code: int | None) -> RunOutcome | None:
        """The outcome for a terminate or wall-clock ending, if one happened."""
        with attempt.lock:
            reason, walltime = attempt.cancel_reason, attempt.walltime
        if reason == "terminated":
            return self._outcome(attempt, "terminated", exit_code, TERMINATED_FAILURE)
        if reason == "requeued":
            return self._outcome(attempt, "requeued", exit_code, None)
        if walltime:
            return self._outcome(attempt, "walltime", exit_code, WALLTIME_FAILURE)
        return None

    def _execute(self, attempt: _Attempt) -> RunOutcome:
        spec = attempt.spec
        wd = spec.task_dir / "wd"
        entry = None
        if spec.max_wall_clock_seconds is not None:
            entry = self._deadlines.add(
                time.monotonic() + spec.max_wall_clock_seconds, attempt.expire
            )
        try:
            if spec.task_dir.exists() or spec.task_dir.is_symlink():
                shutil.rmtree(spec.task_dir)
            wd.mkdir(parents=True)
            with (
                open(spec.task_dir / "stdout.txt", "wb") as stdout,
                open(spec.task_dir / "stderr.txt", "wb") as stderr,
            ):
                exit_code = self._preprocess_and_run(attempt, wd, stdout, stderr)
        except (TransferFailure, Aborted) as exc:
            ended = self._cancelled_outcome(attempt, None)
            if ended is not None:
                return ended
            if isinstance(exc, Aborted):  # only a cancel aborts a transfer
                raise
            failure = FailureInfo(exc.category, exc.code, exc.message)
            return self._outcome(attempt, "preprocessing", None, failure)
        finally:
            if entry is not None:
                self._deadlines.cancel(entry)
        ended = self._cancelled_outcome(attempt, exit_code)
        if ended is not None and ended.reason != "walltime":
            return ended  # terminated / requeued: no uploads
        upload_failure = None
        if spec.output_files:
            upload_failure = upload_output_files(
                spec.output_files,
                wd,
                spec.env,
                succeeded=exit_code == 0 and ended is None,
                timeout=self._http_timeout,
                should_stop=attempt.terminated.is_set,
            )
        ended = self._cancelled_outcome(attempt, exit_code)
        if ended is not None:
            return ended
        if upload_failure is not None:
            failure = FailureInfo(
                upload_failure.category, upload_failure.code, upload_failure.message
            )
            return self._outcome(attempt, "upload", exit_code, failure)
        return self._outcome(attempt, "exited", exit_code, None)

    def _preprocess_and_run(
        self, attempt: _Attempt, wd: Path, stdout: BinaryIO, stderr: BinaryIO
    ) -> int:
        """Download resource files, launch, wait; returns the Batch exit code."""
        spec = attempt.spec
        download_resource_files(
            spec.resource_files,
            wd,
            timeout=self._http_timeout,
            should_stop=attempt.cancelled.is_set,
            auto_storage=self._auto_storage,
        )
        argv, executable = _resolve_command(spec.command_line, wd, spec.env)
        with attempt.lock:
            if attempt.cancelled.is_set():
                raise Aborted(spec.run_id)
            try:
                attempt.proc = subprocess.Popen(
                    argv,
                    executable=executable,
                    cwd=wd,
                    env=spec.env,
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    start_new_session=True,
                    close_fds=True,
                )
            except FileNotFoundError:
                raise _not_found(argv[0], spec.env) from None
            except OSError as exc:
                raise TransferFailure(
                    "usererror",
                    "CommandLaunchFailed",
                    f"Cannot launch {argv[0]!r} ({executable}): {exc.strerror or exc}",
                ) from None
            proc = attempt.proc
        returncode = proc.wait()
        with attempt.lock:
            attempt.exited = True
        return returncode if returncode >= 0 else 128 - returncode


def _not_found(program: str, env: dict[str, str]) -> TransferFailure:
    where = (
        "relative to the task working directory"
        if "/" in program
        else f"on the task's PATH ({env.get('PATH', os.defpath)})"
    )
    return TransferFailure(
        "usererror",
        "CommandProgramNotFound",
        f"The program {program!r} of the command line was not found {where}; "
        "commands are not run through a shell (use /bin/sh -c '...' for shell syntax)",
    )


def _resolve_command(command_line: str, wd: Path, env: dict[str, str]) -> tuple[list[str], str]:
    """POSIX-split the command line and find its program (PATH lookup unless it has a '/').

    No shell, as on the service: "The command line does not run under a shell, and
    therefore cannot take advantage of shell features such as environment variable
    expansion" (REST `commandLine` of tasks, start, preparation and release tasks;
    learn.microsoft.com/azure/batch/batch-compute-node-environment-variables
    #command-line-expansion-of-environment-variables): `$VAR` needs `/bin/sh -c`."""
    try:
        argv = shlex.split(command_line, posix=True)
    except ValueError as exc:
        raise TransferFailure(
            "usererror", "CommandLaunchFailed", f"Cannot parse the command line: {exc}"
        ) from None
    if not argv:
        raise TransferFailure("usererror", "CommandProgramNotFound", "The command line is empty")
    program = argv[0]
    if "/" in program:
        executable = str(wd / program)  # an absolute program stays absolute
        if not os.path.isfile(executable):
            raise _not_found(program, env)
        return argv, executable
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise _not_found(program, env)
    return argv, found
