"""Layout: the only place job ids, task ids and blob names are built.

Role: like submitit's ``JobPaths``. One `JobLayout` per executor: the job id, the job's
own blob container (`JobLayout.container`, named from the job id), the blob prefix
``<job_id>/`` inside it, deterministic task ids from the executor's counter, and every
blob and resource-file name of the wire format. The shared container (the
`container_name` setting) holds what outlives a job: the node environments
(``_environments/``) and the expiry markers (``_expires/``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from .. import constants as C

# The task's stdout.txt and stderr.txt, as output-file patterns: Batch writes them beside the
# task's working directory.
STDOUT_FILE = "../stdout.txt"
STDERR_FILE = "../stderr.txt"


_EXPIRY_STAMP = "%Y%m%dT%H%M%SZ"

# A blob container's name: 3 to 63 characters, lowercase letters, digits and hyphens, starting
# and ending with a letter or digit, no two hyphens in a row (learn.microsoft.com/rest/api/
# storageservices/naming-and-referencing-containers--blobs--and-metadata, "Container names").
_CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(?:-[a-z0-9]+)*$")
_DIGEST_CHARS = 8  # of the sha256 of a job id its sanitized container name ends with
# The metadata entry naming the job whose container it is (what `cleanup` recognises).
CONTAINER_JOB_KEY = "abx_job_id"


def new_job_id(prefix: str) -> str:
    """A fresh job id: ``<prefix>-<UTC yyyymmdd-HHMMSS>-<8 hex>`` (at most 54 characters)."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{prefix}-{stamp}-{secrets.token_hex(4)}"


def job_container(job_id: str) -> str:
    """The blob container of job `job_id` (`JobLayout.container`): deterministic, a valid
    container name for any job id."""
    if is_container_name(job_id):
        return job_id
    base = re.sub(r"[^a-z0-9]+", "-", job_id.lower())[:63 - _DIGEST_CHARS - 1].strip("-")
    digest = hashlib.sha256(job_id.encode("utf-8")).hexdigest()[:_DIGEST_CHARS]
    return f"{base}-{digest}" if base else f"job-{digest}"


def is_container_name(name: str) -> bool:
    """Whether `name` is a valid blob container name."""
    return bool(_CONTAINER_NAME.match(name))


@dataclass(frozen=True)
class JobLayout:
    """Names for one job. Task `i` has task id `task_id(i)` and blobs under `<job_id>/` in
    the job's container (`container`)."""

    job_id: str

    @property
    def prefix(self) -> str:
        return f"{self.job_id}/"

    @property
    def container(self) -> str:
        """The job's own blob container: the job id itself when it is a valid container
        name (the default ``job_id_prefix`` makes one); otherwise the id lowercased, each
        run of other characters made one hyphen, cut to 54 characters, and the first 8 hex
        digits of the id's sha256 appended, so that two job ids never share a container."""
        return job_container(self.job_id)

    def container_metadata(self) -> dict[str, str]:
        """The metadata of the job's container: the job id (a sanitized name loses it)."""
        return {CONTAINER_JOB_KEY: self.job_id}

    def task_id(self, index: int) -> str:
        return f"task-{index:06d}"

    def task_index(self, task_id: str) -> int:
        return int(task_id.rsplit("-", 1)[1])

    # --- blobs, one prefix per job ----------------------------------------------------------
    def config_blob(self) -> str:
        return self.prefix + C.GLOBAL_CONFIG_FILE

    def worker_blob(self) -> str:
        return self.prefix + C.WORKER_SCRIPT_FILE

    def prepare_blob(self) -> str:
        return self.prefix + C.PREPARE_SCRIPT_FILE

    @staticmethod
    def environment_blob(env_id: str, name: str = "") -> str:
        """A file of environment `env_id` (shared by every job with that environment), or,
        with no name, the prefix of them all."""
        return f"{C.ENVIRONMENTS_PREFIX}{env_id}/{name}"

    def inputs_blob(self, index: int) -> str:
        return self.prefix + C.LOCAL_INPUTS_PATTERN.format(index)

    def outputs_blob(self, index: int) -> str:
        return self.prefix + C.LOCAL_OUTPUTS_PATTERN.format(index)

    def stdout_blob(self, index: int) -> str:
        return self.prefix + C.STDOUT_PATTERN.format(index)

    def stderr_blob(self, index: int) -> str:
        return self.prefix + C.STDERR_PATTERN.format(index)

    def shared_blob(self, payload_id: int | str) -> str:
        """A map() function (an int id) or a large argument (the sha256 of its pickle)."""
        return self.prefix + self.shared_file(payload_id)

    def expiry_marker(self, deadline: dt.datetime) -> str:
        """The empty blob (in the shared container) saying that this job's blobs (its
        container) may be deleted after `deadline`: ``_expires/<UTC yyyymmddTHHMMSSZ>/<job_id>``
        (a listing of ``_expires/`` finds every expired job without reading a blob)."""
        stamp = deadline.astimezone(dt.timezone.utc).strftime(_EXPIRY_STAMP)
        return f"{C.EXPIRY_PREFIX}{stamp}/{self.job_id}"

    @staticmethod
    def read_expiry_marker(name: str) -> tuple[dt.datetime, str] | None:
        """(deadline, job id) of an expiry marker's name; None for any other name."""
        stamp, _, job_id = name[len(C.EXPIRY_PREFIX):].partition("/")
        if not name.startswith(C.EXPIRY_PREFIX) or not job_id or "/" in job_id:
            return None
        try:
            deadline = dt.datetime.strptime(stamp, _EXPIRY_STAMP)
        except ValueError:
            return None
        return deadline.replace(tzinfo=dt.timezone.utc), job_id

    def log_files(self, index: int) -> list[tuple[str, str]]:
        """(output-file pattern, blob) of task `index`'s stdout.txt and stderr.txt."""
        return [(STDOUT_FILE, self.stdout_blob(index)), (STDERR_FILE, self.stderr_blob(index))]

    # --- names inside the task's working directory ------------------------------------------
    @staticmethod
    def shared_file(payload_id: int | str) -> str:
        return C.SHARED_PAYLOAD_PATTERN.format(payload_id)
