"""Collect: wait for the tasks of a SuperBatch run, download their outputs, describe failures.

Role: the second half of `superbatch.client.run()`, once the tasks were added. A
`Collector` watches the job with the executor's own watch loop (`engine.watch.Watcher`:
one request per idle poll, the same backoff while nothing completes, health checks, and
throttling waited out, never a failure), shows one `Progress` line on stderr,
downloads each succeeded task's `OutputFile`s into BATCH_DIRECTORY as it completes (in
a bounded thread pool), and describes each failed task as the executor does
(`TaskFailedError.describe`).
"""

from __future__ import annotations

import sys
import textwrap
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .. import constants as C
from ..cloud.codes import JobGone
from ..cloud.ports import BatchPort, BlobPort, CompletedTask
from ..config import Settings, mask_secrets
from ..engine.watch import Watcher
from ..errors import BrokenBatchExecutor, TaskFailedError, TasksFailedError
from ..wire.layout import JobLayout

MIN_WAIT = 0.05  # seconds between polls while tasks complete; doubles up to poll_interval


@dataclass(frozen=True)
class OutputFile:
    """A file the task leaves behind: `file_pattern` (in its working directory) is uploaded to
    blob `blob_name` when the task succeeds, and `run()` downloads it to
    ``BATCH_DIRECTORY/local_name``."""

    file_pattern: str
    blob_name: str
    local_name: str


@dataclass(eq=False)
class Collector:
    """Waits for the tasks of one run; `outputs[i]` are task i's output files."""

    batch: BatchPort
    store: BlobPort
    settings: Settings
    layout: JobLayout
    outputs: list[list[OutputFile]]
    batch_directory: Path
    wait_limit: float  # seconds
    wakeup: threading.Event = field(default_factory=threading.Event)  # never set: a pause

    def wait_and_download(self) -> list[TaskFailedError]:
        """Wait for every task with a progress line on stderr, downloading the outputs of
        each succeeded task as it completes; return the failed ones, described."""
        total = len(self.outputs)
        watcher = Watcher.for_settings(self.batch, self.layout.job_id, self.settings,
                                       first_interval=MIN_WAIT)
        done: dict[str, CompletedTask] = {}
        downloads: dict[str, Future[list[OutputFile]]] = {}
        progress = Progress(sys.stderr, self.layout.job_id, total)
        start = time.monotonic()
        with ThreadPoolExecutor(C.IO_THREADS, thread_name_prefix="superbatch-io") as io:
            while True:
                new = [t for t in watcher.poll() if t.task_id not in done]
                for t in new:
                    done[t.task_id] = t
                    if t.result == "success":
                        downloads[t.task_id] = io.submit(self.download, t.task_id)
                failed = sum(1 for t in done.values() if t.result != "success")
                progress.show(len(done), failed)
                if len(done) >= total:
                    break
                now = time.monotonic()
                if now - start > self.wait_limit:
                    raise TimeoutError(
                        f"{total - len(done)} of {total} tasks of job {self.layout.job_id} did not "
                        f"complete within STORAGE_ACCESS_DURATION_HRS="
                        f"{self.wait_limit / 3600:g} h; the job was terminated. Check the "
                        f"pool {self.settings.pool_id} has nodes, or raise the limit"
                    )
                try:
                    watcher.check_health()
                except JobGone as exc:
                    raise BrokenBatchExecutor(f"{exc}: the tasks cannot complete") from exc
                self.wakeup.wait(watcher.due_in())
            progress.finish()
            missing = {task_id: fut.result() for task_id, fut in downloads.items()}
        failures = []
        for task_id in sorted(done):
            task = done[task_id]
            if task.result != "success" or missing.get(task_id):
                failures.append(self.describe(task, missing.get(task_id, [])))
        return failures

    def download(self, task_id: str) -> list[OutputFile]:
        """Download a succeeded task's outputs into BATCH_DIRECTORY; return the missing ones."""
        missing = []
        for out in self.outputs[self.layout.task_index(task_id)]:
            data = self.store.download(out.blob_name)
            if data is None:
                missing.append(out)
                continue
            path = self.batch_directory / out.local_name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return missing

    def describe(self, task: CompletedTask, missing: list[OutputFile]) -> TaskFailedError:
        """The executor's description of a failed task (`TaskFailedError.describe`)."""
        index = self.layout.task_index(task.task_id)
        stderr_blob = self.layout.stderr_blob(index)
        error = TaskFailedError.describe(
            task_id=task.task_id, job_id=self.layout.job_id, exit_code=task.exit_code,
            result=task.result, failure_code=task.failure_code,
            failure_message=task.failure_message, stderr_tail=self.store.tail(stderr_blob),
            stdout_blob=self.layout.stdout_blob(index), stderr_blob=stderr_blob,
            container_url=self.store.container_url,
            missing=[o.file_pattern for o in missing])
        error.args = (mask_secrets(error.args[0], self.settings),)
        return error

    def failed_error(self, failures: list[TaskFailedError]) -> TasksFailedError:
        """The error of a run whose `failures` are not empty."""
        total = len(self.outputs)
        ok = total - len(failures)
        head = f"{len(failures)} of {total} tasks of job {self.layout.job_id} failed"
        if ok:
            head += f"; the outputs of the other {ok} are in {self.batch_directory}"
        head += (". Fix the worker (run COMMAND_LINE locally on a failed task's files to "
                 "reproduce), then rerun with a new JOB_ID. The logs are in "
                 f"{self.store.container_url}.\nFailed tasks:")
        body = "\n".join(textwrap.indent(str(f), "  | ") for f in failures)
        return TasksFailedError(f"{head}\n{body}", job_id=self.layout.job_id, failures=failures)


class Progress:
    """One progress line on `stream`: rewritten in place on a terminal, else a line per
    change."""

    def __init__(self, stream: TextIO, job_id: str, total: int) -> None:
        self._stream = stream
        self._job_id = job_id
        self._total = total
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._start = time.monotonic()
        self._last = ""
        self._width = 0

    def show(self, done: int, failed: int) -> None:
        text = (f"superbatch: job {self._job_id}: {done}/{self._total} tasks done, "
                f"{failed} failed")
        if self._tty:
            line = f"{text}, {time.monotonic() - self._start:.0f} s"
            self._stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
            self._stream.flush()
        elif text != self._last:
            self._stream.write(text + "\n")
            self._stream.flush()
        self._last = text

    def finish(self) -> None:
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()
