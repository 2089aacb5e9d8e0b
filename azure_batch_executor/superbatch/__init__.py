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
- `build_resource_file` -> `storage.BlobStore.upload_file` (streamed) + `read_url`
  (read-only SAS); `build_output_file` -> `BlobStore.output_container_url`
  (create/write SAS).
- `add_task` -> `taskdef.TaskFactory`, the executor's task-definition builder, with
  the task's own command line and its outputs uploaded on success only.
- `run` -> `batch.BatchService` (`pool_exists`, `ensure_pool` with the registry
  credentials, `create_job`, `add_collection` in `taskdef.group_collections`),
  then `_superbatch_collect.Collector` (waits, downloads outputs, describes
  failures), then `terminate_job` / `delete_job`, `BlobStore.delete_prefix`,
  `delete_pool` as the DELETE_*_WHEN_DONE arguments ask.
- blob names -> `layout.JobLayout(JOB_ID)`: the seed's file names under the job's
  prefix ``<JOB_ID>/``, so a rerun never reads a previous run's outputs.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, ClassVar

from ..cloud.codes import AlreadyExists, NotFound, is_gone, is_transient
from ..cloud.ports import AddResult, Connect
from ..cloud.retry import RequestStats, RetryPolicy
from ..cloud.taskdef import TaskFactory, group_collections
from ..config import ENV_NAMES, Settings, first_line, mask_secrets
from ..engine import accounts
from ..engine.accounts import with_local_stack
from ..errors import (
    ConfigurationError,
    TaskFailedError,
    TaskRejectedError,
    TasksFailedError,
)
from ..wire.layout import JobLayout
from .collect import Collector, OutputFile

__all__ = ["OutputFile", "ResourceFile", "TasksFailedError", "client"]

log = logging.getLogger(__name__)

_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_REGISTRY_VARS = ("REGISTRY_SERVER", "REGISTRY_USERNAME", "REGISTRY_PASSWORD")
_ADD_ROUNDS = 5  # add-collection rounds for tasks Batch answered with a server error

# Settings field -> the seed's argument name: config.py's errors name them so for client().
_ARGUMENT_NAMES = {
    **ENV_NAMES,  # the account arguments are named like their environment variables
    "pool_id": "POOL_ID",
    "vm_size": "POOL_VM_SIZE",
    "dedicated_nodes": "POOL_NODE_COUNT",
    "spot_nodes": "POOL_LOW_PRIORITY_NODE_COUNT",
    "container_name": "BLOB_CONTAINER_NAME",
    "container_image": "DOCKER_IMAGE",
}


@dataclass(frozen=True)
class ResourceFile:
    """A file the task finds in its working directory: blob `blob_name`, saved as `file_path`."""

    http_url: str
    file_path: str
    blob_name: str

    def __repr__(self) -> str:  # its URL's SAS signature masked: reprs end up in logs
        return (f"ResourceFile(http_url={mask_secrets(self.http_url)!r}, "
                f"file_path={self.file_path!r}, blob_name={self.blob_name!r})")


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
    ``DELETE_CONTAINER_WHEN_DONE`` deletes the run's blobs (everything under
    ``<JOB_ID>/``) once all its tasks succeeded; the container, which other runs may
    share, is kept.
    """

    #: How a client reaches its account (`ports.Connect`); a subclass may replace it.
    connect: ClassVar[Connect] = staticmethod(accounts.connect)

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
            settings = with_local_stack(settings)
            self._registry = None
        self.settings = settings
        self.job_id = str(JOB_ID)
        self.batch_directory = Path(BATCH_DIRECTORY)
        self.command_line = COMMAND_LINE
        self.delete_job_when_done = DELETE_JOB_WHEN_DONE
        self.delete_container_when_done = DELETE_CONTAINER_WHEN_DONE
        self.wait_limit = float(STORAGE_ACCESS_DURATION_HRS) * 3600.0
        self._bodies: list[str] = []  # the added tasks' definitions (JSON text)
        self._no_nodes = POOL_NODE_COUNT == 0 and POOL_LOW_PRIORITY_NODE_COUNT == 0
        self._layout = JobLayout(self.job_id)
        self._resource_blobs: dict[str, Path] = {}
        self._ran = False
        self._stats = RequestStats()
        self._retry = RetryPolicy()  # the executor's policy: throttling is waited out
        self._store, self._batch = type(self).connect(settings, self._stats, self._retry)
        self._store.ensure_container()
        self._store.sign()
        self._factory = TaskFactory(settings, [], self._store.output_container_url(),
                                    registry=self._registry)
        self._collector = Collector(self._batch, self._store, settings, self._layout,
                                    outputs=[], batch_directory=self.batch_directory,
                                    wait_limit=self.wait_limit)

    def __repr__(self) -> str:
        return (f"superbatch.client(job_id={self.job_id!r}, pool_id={self.settings.pool_id!r}, "
                f"tasks={len(self._bodies)}, local={self.settings.local})")

    @property
    def tasks(self) -> list[dict[str, Any]]:
        """The task definitions added so far, as the JSON the job will receive."""
        return [json.loads(body) for body in self._bodies]

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
        self._store.upload_file(path, blob)
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
        index = len(self._bodies)
        body = self._factory.body(
            self._layout.task_id(index), [(r.http_url, r.file_path) for r in resource_files],
            self._layout.log_files(index), command_line=command,
            success_files=[(o.file_pattern, o.blob_name) for o in output_files])
        self._bodies.append(body)
        self._collector.outputs.append(list(output_files))
        return self._layout.task_id(index)

    def run(self) -> None:
        """Create the pool if absent, the job, add the tasks (collections of <= 100), wait with
        a progress line on stderr, download the outputs into BATCH_DIRECTORY.

        Raises `TasksFailedError` listing the failed tasks with their stderr tails (the
        other tasks' outputs are downloaded first). The job is terminated at the end
        (deleted with DELETE_JOB_WHEN_DONE), the pool deleted with DELETE_POOL_WHEN_DONE;
        with DELETE_CONTAINER_WHEN_DONE the run's blobs (``<JOB_ID>/``) are deleted once
        every task succeeded (kept otherwise, for the logs).
        """
        if self._ran:
            raise RuntimeError("run() was already called: build a new client (and JOB_ID)")
        if not self._bodies:
            raise ValueError("run(): no tasks; add them with add_task() first")
        self._ran = True
        job_created = False
        failures: list[TaskFailedError] | None = None
        try:
            self._ensure_pool()
            try:
                self._batch.create_job(self.job_id)
            except AlreadyExists:
                raise ConfigurationError(
                    f"the job {self.job_id} already exists in the Batch account: pass a new "
                    "JOB_ID (the walkthrough appends a timestamp: NAME + _TIMESTAMP)"
                ) from None
            job_created = True
            self._add_tasks()
            failures = self._collector.wait_and_download()
        finally:
            self._finish(job_created, succeeded=failures == [])
        if failures:
            raise self._collector.failed_error(failures)

    # ------------------------------------------------------------------ pool, job, tasks
    def _ensure_pool(self) -> None:
        pool_id = self.settings.pool_id
        if self._batch.pool_exists():
            log.info("pool %s exists: used as it is (POOL_VM_SIZE, the node counts and "
                     "DOCKER_IMAGE apply only when the pool is created)", pool_id)
            return
        if self._no_nodes and not self.settings.local:
            raise ConfigurationError(
                f"the pool {pool_id} does not exist and POOL_NODE_COUNT=0, "
                "POOL_LOW_PRIORITY_NODE_COUNT=0: it would have no node; set one of them (they "
                "are used only when the pool is created)"
            )
        self._batch.ensure_pool(registries=[self._registry] if self._registry else [])

    def _add_tasks(self) -> None:
        """Send every task, in collections of <= 100 tasks and < 1 MiB of JSON."""
        todo = [(self._layout.task_id(i), body) for i, body in enumerate(self._bodies)]
        rejected = []
        for round_ in range(_ADD_ROUNDS):
            if round_:  # the same task ids again, after the policy's backoff
                self._retry.sleep(self._retry.delay(round_))
            retry = []
            for group in group_collections(((t, body), len(body) + 1) for t, body in todo):
                for r in self._add_collection(group):
                    if r.retry:
                        retry.append(r.task_id)
                    elif not r.accepted:
                        rejected.append(f"{r.task_id}: {r.code}: {r.message}")
            again = set(retry)
            todo = [(t, body) for t, body in todo if t in again]
            if not todo:
                break
        if rejected or todo:
            rejected += [f"{t}: server errors in {_ADD_ROUNDS} attempts" for t, _ in todo]
            raise TaskRejectedError(mask_secrets(
                f"Batch refused {len(rejected)} task(s) of job {self.job_id}:\n  "
                + "\n  ".join(rejected)
                + "\nFix the task (COMMAND_LINE, resource and output files), then rerun with a "
                  "new JOB_ID.", self.settings))

    def _add_collection(self, group: list[tuple[str, str]]) -> list[AddResult]:
        """One collection add; a transient failure that outlasted the retry policy's budget
        leaves its tasks for the next round (their ids are fixed: `TaskExists` then means
        added), as the executor's dispatch does."""
        try:
            return self._batch.add_collection(self.job_id, [body for _, body in group])
        except Exception as exc:
            if is_gone(exc) or not is_transient(exc):
                raise
            log.warning("adding %d task(s) of job %s failed for now (%s); trying again",
                        len(group), self.job_id, first_line(exc))
            return [AddResult(task_id, False, True) for task_id, _ in group]

    def _finish(self, job_created: bool, succeeded: bool) -> None:
        """Terminate (or delete) the job, delete the run's blobs and the pool if asked,
        close the clients. Cleanup never hides the run's real outcome."""
        try:
            if job_created:
                end = (self._batch.delete_job if self.delete_job_when_done
                       else self._batch.terminate_job)
                self._quietly(f"end the job {self.job_id}", end, self.job_id)
            if self.delete_container_when_done and succeeded:
                self._quietly(f"delete the blobs of job {self.job_id}",
                              self._store.delete_prefix, self._layout.prefix)
            elif self.delete_container_when_done:
                log.warning("DELETE_CONTAINER_WHEN_DONE: tasks failed, so the blobs of job %s "
                            "are kept for their logs (%s/%s)", self.job_id,
                            self._store.container_url, self._layout.prefix)
            if self.settings.delete_pool_when_done:
                try:
                    self._batch.delete_pool()
                    log.info("deleting pool %s (DELETE_POOL_WHEN_DONE)", self.settings.pool_id)
                except NotFound:
                    pass
        finally:
            self._batch.close()
            self._store.close()

    @staticmethod
    def _quietly(what: str, fn: Callable[[str], object], arg: str) -> None:
        try:
            fn(arg)
        except Exception as exc:  # noqa: BLE001 - cleanup must not hide the real outcome
            log.warning("could not %s: %s", what,
                        first_line(exc))

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
    return Settings.resolve(env=_seed_environment(), argument_names=_ARGUMENT_NAMES, **kwargs)


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
