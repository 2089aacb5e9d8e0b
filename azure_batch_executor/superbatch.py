"""SuperBatch compatibility: the seed's ``super_batch.client(...)`` on the executor's layers.

    from azure_batch_executor import superbatch as super_batch

    batch_client = super_batch.client(POOL_ID=..., JOB_ID=..., POOL_VM_SIZE=..., ...)
    resource = batch_client.build_resource_file("iter_0_inputs.pickle", "inputs.pickle")
    output = batch_client.build_output_file("outputs.pickle", "iter_0_outputs.pickle")
    batch_client.add_task([resource], [output])
    batch_client.run()  # pool if absent, job, tasks, wait, outputs into BATCH_DIRECTORY

Role: an adapter that keeps the seed's walkthrough (examples/superbatch/) running
unchanged but for its import line. Each piece of the seed maps onto a layer the
executor uses too, so there is one implementation of every Blob and Batch call:

- ``client(...)`` arguments -> `config.Settings.resolve` (the seed's environment
  variables, with the seed's quote stripping; half a configuration is a
  `ConfigurationError` worded with the seed's argument names); none of the
  account variables at all -> `local.shared_local_stack()`.
- `build_resource_file` -> `storage.BlobStore.upload` + `read_url` (read-only SAS);
  `build_output_file` -> `BlobStore.output_container_url` (create/write SAS).
- `run` -> `batch.BatchService` (`ensure_pool`, `create_job`, `add_collection` in
  collections of <= 100, `CompletionFeed`, `check_alive`, `terminate_job`,
  `delete_pool`), then `BlobStore.download` / `tail` for outputs and stderr tails.
- blob names -> `layout.JobLayout(JOB_ID)`: the seed's file names under the job's
  prefix ``<JOB_ID>/``, so a rerun never reads a previous run's outputs.

Imports: the standard library and the executor's layers below it (`constants`,
`errors`, `config`, `layout`, `_retry`, `storage`, `batch`, `local`); never
`executor`, `joblib_backend` or `cli`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, TextIO

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)

from . import constants as C
from ._retry import RequestStats, RetryPolicy
from .batch import BatchService, CompletedTask, CompletionFeed, JobGone
from .config import ENV_NAMES, Settings, mask_secrets
from .errors import (
    AzureBatchExecutorError,
    BrokenBatchExecutor,
    ConfigurationError,
    TaskFailedError,
    TaskRejectedError,
    describe_exit_code,
)
from .layout import JobLayout
from .storage import BlobStore

__all__ = ["OutputFile", "ResourceFile", "TasksFailedError", "client"]

log = logging.getLogger(__name__)

_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_REGISTRY_VARS = ("REGISTRY_SERVER", "REGISTRY_USERNAME", "REGISTRY_PASSWORD")
_MIN_WAIT = 0.05  # seconds between polls while tasks complete; doubles up to poll_interval
_ADD_ROUNDS = 5  # add-collection rounds for tasks Batch answered with a server error

# Settings field -> the seed's argument name, to word config.py's messages for client().
_ARGUMENT_NAMES = {
    **ENV_NAMES,  # the account arguments are named like their environment variables
    "pool_id": "POOL_ID",
    "vm_size": "POOL_VM_SIZE",
    "dedicated_nodes": "POOL_NODE_COUNT",
    "spot_nodes": "POOL_LOW_PRIORITY_NODE_COUNT",
    "container_name": "BLOB_CONTAINER_NAME",
    "container_image": "DOCKER_IMAGE",
}
_FIELD_RE = re.compile(r"\b(" + "|".join(_ARGUMENT_NAMES) + r")=")


@dataclass(frozen=True)
class ResourceFile:
    """A file the task finds in its working directory: blob `blob_name`, saved as `file_path`."""

    http_url: str
    file_path: str
    blob_name: str


@dataclass(frozen=True)
class OutputFile:
    """A file the task leaves behind: `file_pattern` (in its working directory) is uploaded to
    blob `blob_name` when the task succeeds, and `run()` downloads it to
    ``BATCH_DIRECTORY/local_name``."""

    file_pattern: str
    blob_name: str
    local_name: str


class TasksFailedError(AzureBatchExecutorError):
    """Some tasks of a `client.run()` failed; the others' outputs were downloaded.

    Attributes: ``job_id`` and ``failures``, one `TaskFailedError` per failed task
    (``task_id``, ``exit_code``, ``failure_code``, ``stderr_tail``, ``stderr_blob``, ...).
    """

    def __init__(self, message: str, *, job_id: str, failures: list[TaskFailedError]) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.failures = failures


class client:
    """The seed's SuperBatch client: build resource/output files, add tasks, `run()`.

    Arguments are the seed's, keyword-only, each account argument falling back to its
    environment variable (``BATCH_ACCOUNT_NAME``, ``BATCH_ACCOUNT_KEY``,
    ``BATCH_ACCOUNT_URL``, ``STORAGE_ACCOUNT_KEY``, ``STORAGE_ACCOUNT_CONNECTION_STRING``,
    ``REGISTRY_SERVER``, ``REGISTRY_USERNAME``, ``REGISTRY_PASSWORD``; plus
    ``STORAGE_ACCOUNT_URL`` for Entra ID). With none of the account variables set it
    runs on the local stack, where ``DOCKER_IMAGE`` is ignored (no container engine:
    ``COMMAND_LINE`` runs on the host).

    The pool settings (``POOL_VM_SIZE``, the node counts, ``DOCKER_IMAGE``) are used only
    when the pool ``POOL_ID`` does not exist yet; an existing pool is used as it is.
    ``STORAGE_ACCESS_DURATION_HRS`` bounds how long `run()` waits (the seed's meaning);
    the SAS tokens themselves are valid for 7 days, beyond the job's 6-day limit.
    """

    def __init__(
        self,
        *,
        POOL_ID: str,
        JOB_ID: str,
        POOL_VM_SIZE: str,
        POOL_NODE_COUNT: int = 0,
        POOL_LOW_PRIORITY_NODE_COUNT: int = 0,
        DELETE_POOL_WHEN_DONE: bool = False,
        BLOB_CONTAINER_NAME: str,
        BATCH_DIRECTORY: str | os.PathLike[str],
        DOCKER_IMAGE: str | None,
        COMMAND_LINE: str | None = None,
        DELETE_JOB_WHEN_DONE: bool = False,
        DELETE_CONTAINER_WHEN_DONE: bool = False,
        BATCH_ACCOUNT_NAME: str | None = None,
        BATCH_ACCOUNT_KEY: str | None = None,
        BATCH_ACCOUNT_URL: str | None = None,
        STORAGE_ACCOUNT_KEY: str | None = None,
        STORAGE_ACCOUNT_CONNECTION_STRING: str | None = None,
        STORAGE_ACCOUNT_URL: str | None = None,
        STORAGE_ACCESS_DURATION_HRS: float = 24,
        REGISTRY_SERVER: str | None = None,
        REGISTRY_USERNAME: str | None = None,
        REGISTRY_PASSWORD: str | None = None,
    ) -> None:
        if not _ID_RE.match(str(JOB_ID)):
            raise ConfigurationError(f"JOB_ID={JOB_ID!r}: use 1-64 of [A-Za-z0-9_-]")
        if not isinstance(STORAGE_ACCESS_DURATION_HRS, (int, float)) or not (
            STORAGE_ACCESS_DURATION_HRS > 0
        ):
            raise ConfigurationError(
                f"STORAGE_ACCESS_DURATION_HRS={STORAGE_ACCESS_DURATION_HRS!r}: must be hours > 0"
            )
        settings = _resolve_settings(
            POOL_ID=POOL_ID, POOL_VM_SIZE=POOL_VM_SIZE, POOL_NODE_COUNT=POOL_NODE_COUNT,
            POOL_LOW_PRIORITY_NODE_COUNT=POOL_LOW_PRIORITY_NODE_COUNT,
            DELETE_POOL_WHEN_DONE=DELETE_POOL_WHEN_DONE, BLOB_CONTAINER_NAME=BLOB_CONTAINER_NAME,
            DOCKER_IMAGE=DOCKER_IMAGE, BATCH_ACCOUNT_NAME=BATCH_ACCOUNT_NAME,
            BATCH_ACCOUNT_KEY=BATCH_ACCOUNT_KEY, BATCH_ACCOUNT_URL=BATCH_ACCOUNT_URL,
            STORAGE_ACCOUNT_KEY=STORAGE_ACCOUNT_KEY,
            STORAGE_ACCOUNT_CONNECTION_STRING=STORAGE_ACCOUNT_CONNECTION_STRING,
            STORAGE_ACCOUNT_URL=STORAGE_ACCOUNT_URL,
        )
        self._registry = _resolve_registry(REGISTRY_SERVER, REGISTRY_USERNAME, REGISTRY_PASSWORD)
        if settings.local:
            if DOCKER_IMAGE:
                log.info("DOCKER_IMAGE=%r is ignored on the local stack (it has no container "
                         "engine): COMMAND_LINE runs on the host, with this Python "
                         "environment first on PATH", DOCKER_IMAGE)
            settings = _with_local_stack(settings)
            self._registry = None
        if DELETE_CONTAINER_WHEN_DONE:
            log.warning("DELETE_CONTAINER_WHEN_DONE is not supported yet: the container %s is "
                        "kept (delete it with `az storage container delete`)",
                        settings.container_name)
        self.settings = settings
        self.job_id = str(JOB_ID)
        self.batch_directory = Path(BATCH_DIRECTORY)
        self.command_line = COMMAND_LINE
        self.delete_job_when_done = DELETE_JOB_WHEN_DONE
        self.wait_limit = float(STORAGE_ACCESS_DURATION_HRS) * 3600.0
        self.tasks: list[dict[str, Any]] = []
        self._no_nodes = POOL_NODE_COUNT == 0 and POOL_LOW_PRIORITY_NODE_COUNT == 0
        self._outputs: list[list[OutputFile]] = []
        self._layout = JobLayout(self.job_id)
        self._resource_blobs: dict[str, Path] = {}
        self._ran = False
        self._wakeup = threading.Event()  # never set: an interruptible wait between polls
        self._stats = RequestStats()
        self._retry = RetryPolicy()
        self._store, self._batch = _connect(settings, self._stats, self._retry)
        self._store.ensure_container()
        self._store.sign()

    def __repr__(self) -> str:
        return (f"superbatch.client(job_id={self.job_id!r}, pool_id={self.settings.pool_id!r}, "
                f"tasks={len(self.tasks)}, local={self.settings.local})")

    # ------------------------------------------------------------------ the seed's methods
    def build_resource_file(self, local_name: str | os.PathLike[str], node_name: str
                            ) -> ResourceFile:
        """Upload ``BATCH_DIRECTORY/local_name`` now; the task finds it as `node_name` in its
        working directory. An absolute `local_name` is used as it is."""
        path = self.batch_directory / local_name
        if not path.is_file():
            raise FileNotFoundError(
                f"build_resource_file: no file at {path} (local_name={os.fspath(local_name)!r} "
                f"is read relative to BATCH_DIRECTORY={str(self.batch_directory)!r}); write "
                f"the file first, e.g. joblib.dump(obj, os.path.join(BATCH_DIRECTORY, "
                f"{os.fspath(local_name)!r}))"
            )
        blob = self._resource_blob(path)
        self._store.upload(blob, path.read_bytes())
        return ResourceFile(self._store.read_url(blob), node_name, blob)

    def build_output_file(self, node_name: str, local_name: str | os.PathLike[str]
                          ) -> OutputFile:
        """The task's `node_name` (a file or pattern in its working directory), uploaded when
        it succeeds and downloaded by `run()` to ``BATCH_DIRECTORY/local_name``."""
        parts = PurePath(local_name).parts
        if not parts or PurePath(local_name).is_absolute() or ".." in parts:
            raise ValueError(
                f"build_output_file: local_name={os.fspath(local_name)!r} must be a relative "
                "path inside BATCH_DIRECTORY (run() downloads the output there)"
            )
        return OutputFile(node_name, self._layout.prefix + "/".join(parts), "/".join(parts))

    def add_task(self, resource_files: Sequence[ResourceFile], output_files: Sequence[OutputFile],
                 command_line: str | None = None) -> str:
        """Add one task (sent by `run()`): its resource and output files, and COMMAND_LINE
        unless `command_line` is given. Returns the task id."""
        if self._ran:
            raise RuntimeError("run() was already called: build a new client (and JOB_ID)")
        command = command_line or self.command_line
        if not command:
            raise ConfigurationError(
                "the task has no command line: pass COMMAND_LINE= to client() (e.g. "
                "COMMAND_LINE='python3 worker.py') or command_line= to add_task()"
            )
        for r in resource_files:
            if not isinstance(r, ResourceFile):
                raise TypeError(f"add_task: {r!r} is not a resource file; build it with "
                                "build_resource_file(local_name, node_name)")
        for o in output_files:
            if not isinstance(o, OutputFile):
                raise TypeError(f"add_task: {o!r} is not an output file; build it with "
                                "build_output_file(node_name, local_name)")
        index = len(self.tasks)
        self.tasks.append(self._task_body(index, command, resource_files, output_files))
        self._outputs.append(list(output_files))
        return self._layout.task_id(index)

    def run(self) -> None:
        """Create the pool if absent, the job, add the tasks (collections of <= 100), wait with
        a progress line on stderr, download the outputs into BATCH_DIRECTORY.

        Raises `TasksFailedError` listing the failed tasks with their stderr tails (the
        other tasks' outputs are downloaded first). The job is terminated at the end
        (deleted with DELETE_JOB_WHEN_DONE), the pool deleted with DELETE_POOL_WHEN_DONE.
        """
        if self._ran:
            raise RuntimeError("run() was already called: build a new client (and JOB_ID)")
        if not self.tasks:
            raise ValueError("run(): no tasks; add them with add_task() first")
        self._ran = True
        job_created = False
        try:
            self._ensure_pool()
            try:
                self._batch.create_job(self.job_id)
            except ResourceExistsError:
                raise ConfigurationError(
                    f"the job {self.job_id} already exists in the Batch account: pass a new "
                    "JOB_ID (the walkthrough appends a timestamp: NAME + _TIMESTAMP)"
                ) from None
            job_created = True
            self._add_tasks()
            failures = self._wait_and_download()
        finally:
            self._finish(job_created)
        if failures:
            raise self._failed_error(failures)

    # ------------------------------------------------------------------ pool, job, tasks
    def _ensure_pool(self) -> None:
        pool_id = self.settings.pool_id
        try:
            exists = _pool_exists(self._batch, self._retry, self._stats, pool_id)
        except HttpResponseError as exc:
            if isinstance(exc, ClientAuthenticationError) or exc.status_code in (401, 403):
                self._batch.ensure_pool()  # raises the Batch layer's error naming the variables
            raise
        if exists:
            log.info("pool %s exists: used as it is (POOL_VM_SIZE, the node counts and "
                     "DOCKER_IMAGE apply only when the pool is created)", pool_id)
            return
        if self._no_nodes and not self.settings.local:
            raise ConfigurationError(
                f"the pool {pool_id} does not exist and POOL_NODE_COUNT=0, "
                "POOL_LOW_PRIORITY_NODE_COUNT=0: it would have no node; set one of them (they "
                "are used only when the pool is created)"
            )
        if self._registry is not None and self.settings.container_image:
            _create_pool_with_registry(self._batch, self._retry, self._stats, self._registry)
        else:
            self._batch.ensure_pool()

    def _task_body(self, index: int, command: str, resource_files: Sequence[ResourceFile],
                   output_files: Sequence[OutputFile]) -> dict[str, Any]:
        container_url = self._store.output_container_url()

        def output(pattern: str, blob: str, condition: str) -> dict[str, Any]:
            return {"filePattern": pattern,
                    "destination": {"container": {"containerUrl": container_url, "path": blob}},
                    "uploadOptions": {"uploadCondition": condition}}

        outputs = [output(o.file_pattern, o.blob_name, "tasksuccess") for o in output_files]
        outputs.append(output("../stdout.txt", self._layout.stdout_blob(index), "taskcompletion"))
        outputs.append(output("../stderr.txt", self._layout.stderr_blob(index), "taskcompletion"))
        body: dict[str, Any] = {
            "id": self._layout.task_id(index),
            "commandLine": command,
            "resourceFiles": [{"httpUrl": r.http_url, "filePath": r.file_path}
                              for r in resource_files],
            "outputFiles": outputs,
        }
        if self.settings.container_image:
            container: dict[str, Any] = {"imageName": self.settings.container_image}
            if self._registry is not None:
                container["registry"] = self._registry
            body["containerSettings"] = container
        return body

    def _add_tasks(self) -> None:
        """Send every task, in collections of <= 100 tasks and < 1 MiB of JSON."""
        todo = list(self.tasks)
        rejected = []
        for _ in range(_ADD_ROUNDS):
            retry = []
            for group in _collections(todo):
                for r in self._batch.add_collection(self.job_id, group):
                    if r.retry:
                        retry.append(r.task_id)
                    elif not r.accepted:
                        rejected.append(f"{r.task_id}: {r.code}: {r.message}")
            todo = [t for t in todo if t["id"] in set(retry)]
            if not todo:
                break
        if rejected or todo:
            rejected += [f"{t['id']}: server errors in {_ADD_ROUNDS} attempts" for t in todo]
            raise TaskRejectedError(mask_secrets(
                f"Batch refused {len(rejected)} task(s) of job {self.job_id}:\n  "
                + "\n  ".join(rejected)
                + "\nFix the task (COMMAND_LINE, resource and output files), then rerun with a "
                  "new JOB_ID.", self.settings))

    # ------------------------------------------------------------------ wait and download
    def _wait_and_download(self) -> list[TaskFailedError]:
        total = len(self.tasks)
        feed = CompletionFeed(self._batch, self.job_id)
        done: dict[str, CompletedTask] = {}
        downloads: dict[str, Future[list[OutputFile]]] = {}
        progress = _Progress(sys.stderr, self.job_id, total)
        start = time.monotonic()
        next_health = start + C.HEALTH_CHECK_INTERVAL
        wait = _MIN_WAIT
        with ThreadPoolExecutor(C.IO_THREADS, thread_name_prefix="superbatch-io") as io:
            while True:
                new = [t for t in feed.poll() if t.task_id not in done]
                for t in new:
                    done[t.task_id] = t
                    if t.result == "success":
                        downloads[t.task_id] = io.submit(self._download, t.task_id)
                failed = sum(1 for t in done.values() if t.result != "success")
                progress.show(len(done), failed)
                if len(done) >= total:
                    break
                now = time.monotonic()
                if now - start > self.wait_limit:
                    raise TimeoutError(
                        f"{total - len(done)} of {total} tasks of job {self.job_id} did not "
                        f"complete within STORAGE_ACCESS_DURATION_HRS="
                        f"{self.wait_limit / 3600:g} h; the job was terminated. Check the "
                        f"pool {self.settings.pool_id} has nodes, or raise the limit"
                    )
                if now >= next_health:
                    next_health = now + C.HEALTH_CHECK_INTERVAL
                    try:
                        self._batch.check_alive(self.job_id)
                    except JobGone as exc:
                        raise BrokenBatchExecutor(f"{exc}: the tasks cannot complete") from exc
                wait = _MIN_WAIT if new else min(self.settings.poll_interval, wait * 2)
                self._wakeup.wait(wait)
            progress.finish()
            missing = {task_id: fut.result() for task_id, fut in downloads.items()}
        failures = []
        for task_id in sorted(done):
            task = done[task_id]
            if task.result != "success" or missing.get(task_id):
                failures.append(self._describe(task, missing.get(task_id, [])))
        return failures

    def _download(self, task_id: str) -> list[OutputFile]:
        """Download a succeeded task's outputs into BATCH_DIRECTORY; return the missing ones."""
        missing = []
        for out in self._outputs[self._layout.task_index(task_id)]:
            data = self._store.download(out.blob_name)
            if data is None:
                missing.append(out)
                continue
            path = self.batch_directory / out.local_name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return missing

    def _describe(self, task: CompletedTask, missing: list[OutputFile]) -> TaskFailedError:
        index = self._layout.task_index(task.task_id)
        stderr_blob = self._layout.stderr_blob(index)
        tail = self._store.tail(stderr_blob)
        parts = [f"{task.task_id}: exit code {describe_exit_code(task.exit_code)}"]
        if task.failure_code:
            parts.append(f"Batch failure {task.failure_code}: {task.failure_message or ''}"
                         .rstrip(": "))
        if missing:
            names = ", ".join(repr(o.file_pattern) for o in missing)
            parts.append(f"it succeeded but wrote no {names} in its working directory, so "
                         "nothing was uploaded")
        message = "; ".join(parts) + f" (stderr: blob {stderr_blob})"
        if tail.strip():
            message += "\n    stderr tail:\n" + "\n".join(
                "    | " + line for line in tail.rstrip().splitlines())
        return TaskFailedError(
            mask_secrets(message, self.settings), task_id=task.task_id, job_id=self.job_id,
            exit_code=task.exit_code, failure_code=task.failure_code,
            failure_message=task.failure_message, stderr_tail=tail,
            stdout_blob=self._layout.stdout_blob(index), stderr_blob=stderr_blob,
        )

    def _failed_error(self, failures: list[TaskFailedError]) -> TasksFailedError:
        total = len(self.tasks)
        ok = total - len(failures)
        head = f"{len(failures)} of {total} tasks of job {self.job_id} failed"
        if ok:
            head += f"; the outputs of the other {ok} are in {self.batch_directory}"
        head += (". Fix the worker (run COMMAND_LINE locally on a failed task's files to "
                 "reproduce), then rerun with a new JOB_ID. The logs are in "
                 f"{self._store.container_url}.\nFailed tasks:")
        body = "\n".join("  " + str(f) for f in failures)
        return TasksFailedError(f"{head}\n{body}", job_id=self.job_id, failures=failures)

    def _finish(self, job_created: bool) -> None:
        """Terminate (or delete) the job, delete the pool if asked, close the clients."""
        try:
            if job_created:
                try:
                    if self.delete_job_when_done:
                        _delete_job(self._batch, self._retry, self._stats, self.job_id)
                    else:
                        self._batch.terminate_job(self.job_id)
                except Exception as exc:  # cleanup must not hide the real outcome
                    log.warning("could not end the job %s: %s", self.job_id,
                                mask_secrets(str(exc).splitlines()[0] if str(exc) else ""))
            if self.settings.delete_pool_when_done:
                try:
                    self._batch.delete_pool()
                    log.info("deleting pool %s (DELETE_POOL_WHEN_DONE)", self.settings.pool_id)
                except ResourceNotFoundError:
                    pass
        finally:
            self._batch.close()
            self._store.close()

    def _resource_blob(self, path: Path) -> str:
        """The blob for a local file: ``<JOB_ID>/<file name>``, numbered when two different
        files share a name."""
        resolved = path.resolve()
        blob = self._layout.prefix + path.name
        n = 0
        while self._resource_blobs.get(blob, resolved) != resolved:
            n += 1
            blob = f"{self._layout.prefix}resource_{n}/{path.name}"
        self._resource_blobs[blob] = resolved
        return blob


# ---------------------------------------------------------------------- settings
def _resolve_settings(**args: Any) -> Settings:
    """`Settings` from client()'s arguments, else the seed's environment variables (stripped
    of the quotes ``az ... --query`` leaves), else the defaults. Errors use the seed's names."""
    both_zero = args["POOL_NODE_COUNT"] == 0 and args["POOL_LOW_PRIORITY_NODE_COUNT"] == 0
    kwargs: dict[str, Any] = {
        "pool_id": args["POOL_ID"],
        "vm_size": args["POOL_VM_SIZE"],
        # (0, 0) is the seed's default, fine for an existing pool: checked in run()
        "dedicated_nodes": None if both_zero else args["POOL_NODE_COUNT"],
        "spot_nodes": None if both_zero else args["POOL_LOW_PRIORITY_NODE_COUNT"],
        "delete_pool_when_done": bool(args["DELETE_POOL_WHEN_DONE"]),
        "container_name": args["BLOB_CONTAINER_NAME"],
        "container_image": args["DOCKER_IMAGE"] or None,
    }
    for field, name in ENV_NAMES.items():
        kwargs[field] = args.get(name)
    try:
        return Settings.resolve(env=_seed_environment(), **kwargs)
    except ConfigurationError as exc:
        raise ConfigurationError(_FIELD_RE.sub(lambda m: _ARGUMENT_NAMES[m[1]] + "=",
                                               str(exc))) from None


def _resolve_registry(server: str | None, username: str | None, password: str | None
                     ) -> dict[str, str] | None:
    """The container registry credentials (arguments, else environment), or None."""
    env = _seed_environment(_REGISTRY_VARS)
    values = dict(zip(_REGISTRY_VARS, (server or env.get(_REGISTRY_VARS[0]),
                                       username or env.get(_REGISTRY_VARS[1]),
                                       password or env.get(_REGISTRY_VARS[2])), strict=True))
    if not values["REGISTRY_USERNAME"] and not values["REGISTRY_PASSWORD"]:
        return None
    for name, value in values.items():
        if not value:
            raise ConfigurationError(
                f"a private registry needs REGISTRY_SERVER, REGISTRY_USERNAME and "
                f"REGISTRY_PASSWORD: set {name} or pass {name}= (az acr credential show -n "
                "REGISTRY); unset the others for a public image"
            )
    return {"registryServer": str(values["REGISTRY_SERVER"]),
            "username": str(values["REGISTRY_USERNAME"]),
            "password": str(values["REGISTRY_PASSWORD"])}


def _seed_environment(names: Sequence[str] = tuple(ENV_NAMES.values())) -> dict[str, str]:
    """The seed's variables from os.environ, surrounding quotes stripped as the seed did."""
    out = {}
    for name in names:
        value = os.environ.get(name, "").strip().strip('"')
        if value:
            out[name] = value
    return out


def _with_local_stack(settings: Settings) -> Settings:
    from .local import shared_local_stack

    stack = shared_local_stack()
    return settings.with_local_stack(
        batch_account_url=stack.batch_account_url,
        batch_account_name=stack.batch_account_name,
        batch_account_key=stack.batch_account_key,
        storage_connection_string=stack.storage_connection_string,
        nodes=stack.nodes,
        slots_per_node=stack.slots_per_node,
    )


def _connect(settings: Settings, stats: RequestStats, retry: RetryPolicy
             ) -> tuple[BlobStore, BatchService]:
    """The Blob and Batch sides (no request yet). Unit tests replace this function."""
    return BlobStore(settings, stats, retry), BatchService(settings, stats, retry)


def _collections(tasks: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Groups of <= MAX_TASKS_PER_COLLECTION tasks whose JSON stays under the body limit."""
    groups: list[list[dict[str, Any]]] = []
    group: list[dict[str, Any]] = []
    size = 0
    for task in tasks:
        n = len(json.dumps(task)) + 2
        if group and (len(group) >= C.MAX_TASKS_PER_COLLECTION or size + n > C.MAX_COLLECTION_BODY):
            groups.append(group)
            group, size = [], 0
        group.append(task)
        size += n
    if group:
        groups.append(group)
    return groups


class _Progress:
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


# ---------------------------------------------------------------------- stopgaps
# STOPGAP helpers: requests the shared Batch layer (batch.BatchService) has no method for
# yet. They go through the same SDK client, RetryPolicy and request counters. Asked for:
# BatchService.pool_exists(), ensure_pool(registries=...), delete_job(job_id). Remove these
# when those land.
def _pool_exists(batch: BatchService, retry: RetryPolicy, stats: RequestStats,
                 pool_id: str) -> bool:
    try:
        retry.call(stats, "batch.get_pool", batch.client.get_pool, pool_id, select=["id"])
    except ResourceNotFoundError:
        return False
    return True


def _create_pool_with_registry(batch: BatchService, retry: RetryPolicy, stats: RequestStats,
                               registry: dict[str, str]) -> None:
    body = batch.pool_body()
    body["virtualMachineConfiguration"]["containerConfiguration"]["containerRegistries"] = [
        registry]
    try:
        retry.call(stats, "batch.create_pool", batch.client.create_pool, body)
        log.info("created pool %s (private registry %s)", body["id"], registry["registryServer"])
    except ResourceExistsError:
        log.info("pool %s exists: used as it is", body["id"])


def _delete_job(batch: BatchService, retry: RetryPolicy, stats: RequestStats,
                job_id: str) -> None:
    retry.call(stats, "batch.delete_job", batch.client.begin_delete_job, job_id,
               polling_interval=1)
