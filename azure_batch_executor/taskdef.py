"""Task definitions: the JSON of one Batch task, and the collections they are added in.

Role: the only place a task definition is built (``id``, ``commandLine``,
``resourceFiles``, ``outputFiles``, ``constraints``, ``containerSettings``,
``environmentSettings``), for both users of Batch tasks: the executor (its worker,
small inputs inline) and the SuperBatch client (a command line per task, outputs
uploaded only on success, a private registry). `group_collections` cuts definitions
into add-task-collection requests (<= 100 tasks, under the body limit). Nothing
here sends a request.

Imports: the standard library and the leaves `constants`, `config`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from . import constants as C
from .config import Settings, iso_duration

T = TypeVar("T")

# Upload conditions of an output file.
ON_COMPLETION = {"uploadCondition": "taskcompletion"}  # whatever the exit code (logs, outcome)
ON_SUCCESS = {"uploadCondition": "tasksuccess"}  # exit code 0 only


class TaskFactory:
    """Builds the task definitions of one job; the parts all its tasks share are built once.

    `common_resources` are (url, filePath) pairs every task downloads (the executor's
    worker and config); `output_container_url` is the container URL with its create/write
    SAS. Every task runs ``<python_command> abx_worker.py`` unless `body` is given its own
    command line, with the settings' retry count and task timeout, in the settings'
    ``container_image`` (pulled with `registry`'s credentials when given).
    """

    def __init__(self, settings: Settings, common_resources: Sequence[tuple[str, str]],
                 output_container_url: str, *, registry: Mapping[str, str] | None = None
                 ) -> None:
        self._command = f"{settings.command} {C.WORKER_SCRIPT_FILE}"
        self._common = [{"httpUrl": url, "filePath": path} for url, path in common_resources]
        self._container_url = output_container_url
        constraints: dict[str, Any] = {"maxTaskRetryCount": settings.max_task_retries}
        if settings.task_timeout is not None:
            constraints["maxWallClockTime"] = iso_duration(settings.task_timeout)
        self._constraints = constraints
        self._container: dict[str, Any] | None = None
        if settings.container_image:
            self._container = {"imageName": settings.container_image}
            if registry is not None:
                self._container["registry"] = dict(registry)
        self._fixed_size = 600 + len(self._command) + len(json.dumps(self._common)) + len(
            json.dumps(constraints)) + len(json.dumps(self._container or ""))

    def body(
        self,
        task_id: str,
        resource_files: Sequence[tuple[str, str]],
        output_files: Sequence[tuple[str, str]],
        inline_inputs: str | None = None,
        *,
        command_line: str | None = None,
        success_files: Sequence[tuple[str, str]] = (),
    ) -> tuple[dict[str, Any], int]:
        """One task definition and an upper bound of its JSON size in bytes.

        `resource_files`: (url, filePath) pairs, after the common ones. `success_files`:
        (filePattern, blob) pairs uploaded only when the task succeeds; then `output_files`,
        uploaded when it completes, whatever its exit code. `inline_inputs`: a base64 task
        spec for the worker (an environment setting). `command_line`: instead of the worker.
        """
        size = self._fixed_size + len(task_id)
        resources = list(self._common)
        for url, path in resource_files:
            resources.append({"httpUrl": url, "filePath": path})
            size += 40 + len(url) + len(path)
        outputs = []
        for files, upload in ((success_files, ON_SUCCESS), (output_files, ON_COMPLETION)):
            for pattern, blob in files:
                outputs.append({
                    "filePattern": pattern,
                    "destination": {"container": {"containerUrl": self._container_url,
                                                  "path": blob}},
                    "uploadOptions": upload,
                })
                size += 160 + len(pattern) + len(blob) + len(self._container_url)
        if command_line is not None:
            size += len(command_line)
        body: dict[str, Any] = {"id": task_id, "commandLine": command_line or self._command,
                                "resourceFiles": resources, "outputFiles": outputs,
                                "constraints": self._constraints}
        if inline_inputs is not None:
            body["environmentSettings"] = [{"name": C.INLINE_INPUTS_ENV,
                                            "value": inline_inputs}]
            size += 60 + len(inline_inputs)
        if self._container is not None:
            body["containerSettings"] = self._container
        return body, size


def group_collections(tasks: Iterable[tuple[T, int]]) -> Iterator[list[T]]:
    """Cut (task, JSON size) pairs into add-task-collection requests of <= 100 tasks and
    under `MAX_COLLECTION_BODY` bytes; each group is yielded as soon as it is full, so the
    caller can send it while the next one is built."""
    group: list[T] = []
    size = 0
    for task, n in tasks:
        if group and (len(group) >= C.MAX_TASKS_PER_COLLECTION
                      or size + n > C.MAX_COLLECTION_BODY):
            yield group
            group, size = [], 0
        group.append(task)
        size += n
    if group:
        yield group
