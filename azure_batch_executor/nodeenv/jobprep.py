"""The job preparation task that makes a node's environment, and the worker's command in it.

Role: for an `EnvironmentLock`, `upload_environment` puts its files in the shared
container once (``_environments/<env id>/``: ``requirements.txt`` and the local projects'
wheels, content-addressed: a blob that is there already is not sent again, and every job
with that environment reads them, each through a read-only SAS for that blob alone) and
the preparation script beside the job's worker, in the job's own container;
`preparation_task` is the job's ``jobPreparationTask`` (``python3 abx_prepare.py``, wait
for success, rerun after a node reboot), and
`worker_command` the task command line that runs the worker with the environment's
interpreter. Batch runs a job preparation task once per node, before the job's first
task there (learn.microsoft.com: "Run job preparation and job release tasks on Batch
compute nodes").
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from .. import constants as C
from ..cloud.ports import BlobPort, PreparationFailure
from ..cloud.taskdef import resource_file
from ..errors import EnvironmentPreparationError
from ..wire.layout import JobLayout
from . import prepare
from .lock import EnvironmentLock

ENV_ROOT = "$AZ_BATCH_NODE_SHARED_DIR/abx/envs"


def _files(lock: EnvironmentLock) -> list[tuple[str, bytes]]:
    return [("requirements.txt", lock.requirements.encode()), *lock.wheels]


def upload_environment(lock: EnvironmentLock, shared: BlobPort, store: BlobPort,
                       layout: JobLayout) -> None:
    """The environment's files (those not in the `shared` container yet, which is created
    if missing) and the job's preparation script (in the job's container, `store`): one
    listing and at most one upload per file."""
    prefix = JobLayout.environment_blob(lock.env_id)
    present = set(shared.blob_names(prefix))
    for name, data in _files(lock):
        blob = JobLayout.environment_blob(lock.env_id, name)
        if blob not in present:
            shared.upload_creating_container(blob, data)
    store.upload(layout.prepare_blob(), Path(prepare.__file__).read_bytes())


def preparation_task(lock: EnvironmentLock, shared: BlobPort, store: BlobPort,
                     layout: JobLayout, *, local: bool, pool_identity: str | None = None
                     ) -> dict[str, Any]:
    """The job's ``jobPreparationTask``: the script from the job's container (`store`), the
    environment's files from the `shared` one. On the local stack (`local`) uv uses the
    host's interpreters and a cache that outlives the stack (no interpreter download). Its
    resource files name `pool_identity` (the settings') when given, and carry no SAS then."""
    resources = [resource_file(store.read_url(layout.prepare_blob()), C.PREPARE_SCRIPT_FILE,
                               pool_identity)]
    resources += [resource_file(shared.read_url(JobLayout.environment_blob(lock.env_id, name)),
                                name, pool_identity) for name, _ in _files(lock)]
    environment = {"ABX_ENV_ID": lock.env_id, "ABX_PYTHON_VERSION": lock.python_version,
                   "ABX_UV_VERSION": C.UV_VERSION,
                   "ABX_PYTHON_DOWNLOADS": "never" if local else "automatic"}
    if lock.index_url:
        environment["ABX_INDEX_URL"] = lock.index_url
    if lock.extra_index_urls:
        environment["ABX_EXTRA_INDEX_URLS"] = " ".join(lock.extra_index_urls)
    if local:
        environment["ABX_CACHE_DIR"] = str(Path.home() / ".cache" / "azure-batch-executor")
    return {
        "id": "abx-prepare",
        "commandLine": f"python3 {C.PREPARE_SCRIPT_FILE}",
        "resourceFiles": resources,
        "environmentSettings": [{"name": k, "value": v} for k, v in environment.items()],
        "waitForSuccess": True,
        "rerunOnNodeRebootAfterSuccess": True,
        "constraints": {"maxTaskRetryCount": 1},
    }


def worker_command(env_id: str) -> str:
    """The command (the worker script's name is appended) that runs the environment's
    interpreter: Batch does not run command lines under a shell, so the shared
    directory's variable is expanded by one (learn.microsoft.com: "Batch task command
    lines ... environment variable expansion")."""
    script = 'exec "' + ENV_ROOT + "/" + env_id + '/bin/python" "$@"'
    return "/bin/sh -c " + shlex.quote(script) + " abx"


_FIXES = {
    "bootstrap uv": "the nodes must reach the package index (outbound HTTPS); set index_url "
                    "to a mirror they reach",
    "create the interpreter": "set python_version= to a version uv can provide, or use a "
                              "container_image with the Python you need",
    "install the packages": "a requirement does not resolve or does not build on Linux: "
                            "pin or remove it (environment= takes a requirements list or "
                            "file), or set index_url / extra_index_urls for a private index",
}


def preparation_error(env_id: str, failure: PreparationFailure) -> EnvironmentPreparationError:
    """The error every future of the job fails with when a node could not prepare it."""
    tail = failure.stderr_tail.strip()
    found = re.search(r"abx-prepare: FAILED at ([a-z ]+): ", tail)
    step = found.group(1) if found else "run the preparation task"
    cause = (f"exit code {failure.exit_code}" if failure.exit_code is not None
             else f"{failure.failure_code}: {failure.failure_message}")
    message = (f"node {failure.node_id} could not prepare environment {env_id} for the "
               f"job: the preparation task failed at '{step}' ({cause}). Fix: "
               f"{_FIXES.get(step, 'see its stderr below')}.")
    if tail:
        message += "\nstderr tail:\n" + "\n".join(tail.splitlines()[-20:])
    return EnvironmentPreparationError(
        message, env_id=env_id, node_id=failure.node_id, step=step,
        exit_code=failure.exit_code, stderr_tail=tail)
