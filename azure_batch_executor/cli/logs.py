"""The `azure-batch-executor logs JOB [TASK]` command: what a job's tasks printed.

Role, with a TASK (``task-000123`` or ``123``): the task's stdout (``--stderr``: its
stderr). A completed task's comes from its blob, ``<job>/iter_<i>_stdout.txt`` in the
job's own container (in the shared one for a job made before containers per job:
`jobblobs.locate`; uploaded at its completion; still there after the job is deleted, for
`blob_retention`); a running
task's from the file on its node through the Batch task-file API. ``--follow`` reads the
node file by byte ranges every `FOLLOW_INTERVAL` s, waiting for the task to start, until
the task completes.

Without a TASK: one row per task (state, exit code, node, times, and the sizes of its
stdout and stderr blobs), so the task worth reading stands out; with ``--stderr``, the
stderr of every task that wrote any, each under a ``==> task-000123 <==`` line, as
`tail` prints many files.
"""

from __future__ import annotations

import argparse
import codecs
import re
import sys
import time
from typing import Any

from ..cloud.codes import NotFound
from ..wire.layout import JobLayout
from . import accounts, inventory, jobblobs
from .accounts import Account
from .serving import CommandError

FOLLOW_INTERVAL = 1.0  # seconds between two reads of a followed task's file
EXIT_INTERRUPTED = 130  # Ctrl-C while following, as a shell reports SIGINT
_TASK = re.compile(r"^(?:task-)?(\d{1,9})$")
_LOG_BLOB = re.compile(r"^iter_(\d+)_(stdout|stderr)\.txt$")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `logs` on the CLI's subparsers; `run` is its handler."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "logs", help="what a task printed (stdout, --stderr), or a job's tasks",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=accounts.describe(
            "With TASK: print what the task wrote to stdout (--stderr: stderr), from its "
            "blob once it completed, from its node while it runs; --follow keeps reading "
            "until the task completes. Without TASK: list the job's tasks with their state, "
            "exit code and the sizes of their stdout and stderr; --stderr prints the stderr "
            "of every task that wrote any.",
            "logs JOB                         (the tasks)",
            "logs JOB --stderr                (every task's stderr)",
            "logs JOB task-000007 --stderr",
            "logs JOB 7 --follow"))
    parser.add_argument("job", metavar="JOB", help="the job id (see `azure-batch-executor "
                                                   "jobs`)")
    parser.add_argument("task", metavar="TASK", nargs="?",
                        help="the task: its id (task-000007) or its index (7)")
    parser.add_argument("--stderr", action="store_true", help="stderr instead of stdout")
    parser.add_argument("--follow", "-f", action="store_true",
                        help="keep printing what the task writes until it completes")
    accounts.add_options(parser)
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    if args.follow and args.task is None:
        raise CommandError("--follow needs a TASK: pass one, e.g. `logs JOB task-000007 "
                           "--follow` (`logs JOB` lists the tasks)")
    if args.follow and args.output == "json":
        raise CommandError("--follow prints the text as it comes: leave out --output json")
    layout = JobLayout(args.job)
    index = None
    if args.task is not None:
        m = _TASK.match(args.task)
        if m is None:
            raise CommandError(f"TASK {args.task!r} is not a task of the executor: pass its "
                               "id (task-000007) or its index (7)")
        index = int(m.group(1))
    stream = "stderr" if args.stderr else "stdout"
    with accounts.session(args) as shared:
        # the account reading the container of the job's blobs (its own, by default)
        found = jobblobs.locate(shared, layout.job_id)
        account = (found or jobblobs.own_container(shared, layout.job_id)).account
        if index is None:
            if args.stderr:
                _every_stderr(args, account, layout)
            else:
                _tasks(args, account, layout)
            return 0
        task = Task(account, layout, index, stream)
        if args.follow:
            try:
                task.follow(args)
            except KeyboardInterrupt:
                return EXIT_INTERRUPTED
            return 0
        task.show(args)
    return 0


class Task:
    """One task's output stream (`stream`: stdout or stderr), from its blob or its node."""

    def __init__(self, account: Account, layout: JobLayout, index: int, stream: str) -> None:
        self.account = account
        self.layout = layout
        self.task_id = layout.task_id(index)
        self.stream = stream
        self.blob = (layout.stderr_blob(index) if stream == "stderr"
                     else layout.stdout_blob(index))
        self.file = f"{stream}.txt"  # beside the task's working directory, on its node
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def state(self) -> str | None:
        """The task's state, or None when the job or the task is not in Batch (any more)."""
        client = self.account.client
        try:
            task = self.account.call("batch.get_task", client.get_task, self.layout.job_id,
                                     self.task_id, select=["id", "state"])
        except NotFound:
            return None
        return accounts.state(task.state)

    def show(self, args: argparse.Namespace) -> None:
        """Print the stream as it is now."""
        state = self.state()
        source, data = "blob", None
        if state in (None, "completed"):
            data = self.read_blob()
        if data is None and state in ("running", "completed"):
            source, data = "node", self.read_node(0)
        if data is None:
            raise CommandError(self._absent(state))
        text = data.decode("utf-8", errors="replace")
        if args.output == "json":
            accounts.emit(args, {"job_id": self.layout.job_id, "task_id": self.task_id,
                                 "stream": self.stream, "state": state, "source": source,
                                 "text": text})
            return
        sys.stdout.write(text)
        sys.stdout.flush()
        if state == "running":
            accounts.note(args, f"{self.task_id} is still running: pass --follow to keep "
                                "reading")

    def follow(self, args: argparse.Namespace) -> None:
        """Print the stream as the task writes it, until the task completes."""
        offset, waiting = 0, ""
        while True:
            state = self.state()
            if state is None:
                if offset == 0:
                    data = self.read_blob()
                    if data is None:
                        raise CommandError(self._absent(state))
                    self._write(data)
                return
            if state in ("running", "completed"):
                data = self.read_node(offset)
                if data:
                    offset += len(data)
                    self._write(data)
                if state == "completed":
                    if data is None and offset == 0:  # gone from its node: the blob
                        self._write(self.read_blob() or b"")
                    return
            elif state != waiting:
                waiting = state
                accounts.note(args, f"{self.task_id} is {state}: waiting for it to start "
                                    "(Ctrl-C to stop)")
            time.sleep(FOLLOW_INTERVAL)

    def _write(self, data: bytes) -> None:
        sys.stdout.write(self._decoder.decode(data))
        sys.stdout.flush()

    def read_blob(self) -> bytes | None:
        """The stream's blob, or None while there is none."""
        container = self.account.container

        def get() -> bytes:
            return bytes(container.download_blob(self.blob).readall())

        try:
            return self.account.call("blob.get", get)
        except NotFound:
            return None

    def read_node(self, offset: int) -> bytes | None:
        """The stream's node file from `offset` on (b'' when nothing more), or None when
        the task has no such file (not started, or its node is gone)."""
        client, job_id = self.account.client, self.layout.job_id
        try:
            props = self.account.call("batch.file_properties", client.get_task_file_properties,
                                      job_id, self.task_id, self.file)
            size = int(props.content_length or 0)
            if size <= offset:
                return b""
            return self.account.call("batch.file", lambda: b"".join(client.download_task_file(
                job_id, self.task_id, self.file, ocp_range=f"bytes={offset}-{size - 1}")))
        except NotFound:
            return None

    def _absent(self, state: str | None) -> str:
        job = self.layout.job_id
        if state is None:
            return (f"no {self.stream} of {self.task_id} in job {job}: neither the task in "
                    f"Batch nor the blob {self.blob} in the container "
                    f"{self.account.settings.container_name}; list the tasks with "
                    f"`{accounts.PROG} logs {job}`")
        if state in ("active", "preparing"):
            return (f"{self.task_id} of job {job} has not started yet ({state}): pass "
                    "--follow to wait for its output")
        return (f"{self.task_id} of job {job} is {state} but its {self.stream} is neither on "
                f"its node nor in the blob {self.blob} (its node was removed?)")


def _tasks(args: argparse.Namespace, account: Account, layout: JobLayout) -> None:
    """One row per task: from Batch while the job exists, and from the blobs."""
    job = inventory.job(account, layout.job_id)
    listed = inventory.tasks(account, layout.job_id) if job is not None else []
    sizes = _log_sizes(account, layout)
    if job is None and not sizes:
        raise CommandError(_no_job(account, layout))
    rows: dict[int, dict[str, Any]] = {}
    for t in listed:
        m = _TASK.match(str(t.id))
        if m is None:
            continue
        info, node = t.execution_info, t.node_info
        rows[int(m.group(1))] = {
            "task_id": t.id, "state": accounts.state(t.state),
            "exit_code": info.exit_code if info else None,
            "result": (accounts.state(info.result) or None) if info else None,
            "node_id": node.node_id if node else None,
            "start": accounts.iso(info.start_time if info else None),
            "end": accounts.iso(info.end_time if info else None)}
    for index in sizes:
        rows.setdefault(index, {"task_id": layout.task_id(index), "state": None,
                                "exit_code": None, "result": None, "node_id": None,
                                "start": None, "end": None})
    out = []
    for index in sorted(rows):
        row = rows[index]
        row["stdout_bytes"] = sizes.get(index, {}).get("stdout")
        row["stderr_bytes"] = sizes.get(index, {}).get("stderr")
        out.append(row)
    accounts.emit(args, out, ["TASK", "STATE", "EXIT", "NODE", "START", "END", "STDOUT",
                              "STDERR"],
                  [[r["task_id"], r["state"], r["exit_code"], r["node_id"], r["start"],
                    r["end"], r["stdout_bytes"], r["stderr_bytes"]] for r in out])


def _every_stderr(args: argparse.Namespace, account: Account, layout: JobLayout) -> None:
    """The stderr blob of every task that wrote any, in task order."""
    sizes = _log_sizes(account, layout)
    if not sizes and inventory.job(account, layout.job_id) is None:
        raise CommandError(_no_job(account, layout))
    texts = []
    for index in sorted(sizes):
        if sizes[index].get("stderr"):
            data = Task(account, layout, index, "stderr").read_blob() or b""
            texts.append({"task_id": layout.task_id(index),
                          "text": data.decode("utf-8", errors="replace")})
    if args.output == "json":
        accounts.emit(args, texts)
        return
    for n, item in enumerate(texts):
        sys.stdout.write(("\n" if n else "") + f"==> {item['task_id']} <==\n" + item["text"])
        if item["text"] and not item["text"].endswith("\n"):
            sys.stdout.write("\n")
    sys.stdout.flush()
    if not texts:
        accounts.note(args, f"no task of job {layout.job_id} wrote to stderr (of those "
                            "completed: a running task's is on its node, see `logs JOB TASK`)")


def _log_sizes(account: Account, layout: JobLayout) -> dict[int, dict[str, int]]:
    """Task index -> {"stdout": bytes, "stderr": bytes}, from one listing of the job's blobs."""
    sizes: dict[int, dict[str, int]] = {}
    for name, size in inventory.blob_sizes(account, layout.prefix).items():
        m = _LOG_BLOB.match(name)
        if m is not None:
            sizes.setdefault(int(m.group(1)), {})[m.group(2)] = size
    return sizes


def _no_job(account: Account, layout: JobLayout) -> str:
    return (f"no job {layout.job_id} in the Batch account {account.settings.batch_account} "
            f"and no task output under {layout.prefix} in its container "
            f"{layout.container} (nor in the shared container, for an older job): list the "
            f"jobs with `{accounts.PROG} jobs` (a job of another shared container: pass "
            "--container-name)")
