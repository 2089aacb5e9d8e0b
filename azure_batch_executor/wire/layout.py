"""Layout: the only place job ids, task ids and blob names are built.

Role: like submitit's ``JobPaths``. One `JobLayout` per executor: the job id,
the blob prefix ``<job_id>/``, deterministic task ids from the executor's
counter, and every blob and resource-file name of the wire format.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from .. import constants as C

# The task's stdout.txt and stderr.txt, as output-file patterns: Batch writes them beside the
# task's working directory.
STDOUT_FILE = "../stdout.txt"
STDERR_FILE = "../stderr.txt"


_EXPIRY_STAMP = "%Y%m%dT%H%M%SZ"


def new_job_id(prefix: str) -> str:
    """A fresh job id: ``<prefix>-<UTC yyyymmdd-HHMMSS>-<8 hex>`` (at most 54 characters)."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{prefix}-{stamp}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class JobLayout:
    """Names for one job. Task `i` has task id `task_id(i)` and blobs under `<job_id>/`."""

    job_id: str

    @property
    def prefix(self) -> str:
        return f"{self.job_id}/"

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
        """The empty blob saying that this job's blobs may be deleted after `deadline`:
        ``_expires/<UTC yyyymmddTHHMMSSZ>/<job_id>`` (a listing of ``_expires/`` finds
        every expired prefix without reading a blob)."""
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
