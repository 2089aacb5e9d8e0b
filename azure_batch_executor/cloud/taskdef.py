"""Task definitions: the JSON text of one Batch task, and the collections they are added in.

Role: the only place a task definition is built (``id``, ``commandLine``,
``resourceFiles``, ``outputFiles``, ``constraints``, ``containerSettings``,
``environmentSettings``), for both users of Batch tasks: the executor (its worker,
small inputs inline) and the SuperBatch client (a command line per task, outputs
uploaded only on success, a private registry). `group_collections` cuts definitions
into add-task-collection requests (<= 100 tasks, under the body limit). Nothing
here sends a request. The text is built from fragments encoded once per job (see
`docs/dev/architecture.md`, "Adding tasks as text"): a task costs string joins, not a JSON encoder.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from .. import constants as C
from ..config import Settings, iso_duration

T = TypeVar("T")

# Upload conditions of an output file.
ON_COMPLETION = "taskcompletion"  # whatever the exit code (logs, outcome)
ON_SUCCESS = "tasksuccess"  # exit code 0 only

_q = json.encoder.encode_basestring_ascii  # a JSON string literal, ASCII only (C speed)

# What an executor's task says in its displayName: what its future resolves to, for a client
# that reattaches to the job without the one that submitted it (`engine.attach`).
CALL_DISPLAY = "abx:call"  # one submit() call: the call's result
CHUNK_DISPLAY = "abx:chunk"  # a chunk of a map(): the list of its calls' results


class TaskFactory:
    """Builds the task definitions of one job as JSON text; the parts all its tasks share
    are encoded once, so a task costs a few string joins (no dicts, no JSON encoder).

    `common_resources` are (url, filePath) pairs every task downloads (the executor's worker
    and config); `output_container_url` is the container URL with its create/write SAS (no
    SAS with the settings' ``pool_identity``: every resource and output file then names that
    identity). Every task runs ``<python_command> abx_worker.py`` unless `body` is given its
    own command line, with the settings' retry count, task timeout and task retention time,
    in the settings' ``container_image`` (pulled with `registry`'s credentials when given).
    """

    def __init__(self, settings: Settings, common_resources: Sequence[tuple[str, str]],
                 output_container_url: str, *, registry: Mapping[str, Any] | None = None
                 ) -> None:
        self._command = ',"commandLine":' + _q(f"{settings.command} {C.WORKER_SCRIPT_FILE}")
        self._identity = _identity(settings.pool_identity)
        self._common = [_resource(url, path, self._identity) for url, path in common_resources]
        constraints: dict[str, Any] = {"maxTaskRetryCount": settings.max_task_retries}
        if settings.task_timeout is not None:
            constraints["maxWallClockTime"] = iso_duration(settings.task_timeout)
        # the task's directory on its node is deleted this long after it completes (Batch
        # keeps it 7 days by default): the outputs and logs are blobs by then
        constraints["retentionTime"] = iso_duration(settings.task_retention)
        tail = ',"constraints":' + json.dumps(constraints, separators=(",", ":"))
        if settings.container_image:
            container: dict[str, Any] = {"imageName": settings.container_image}
            if registry is not None:
                container["registry"] = dict(registry)
            tail += ',"containerSettings":' + json.dumps(container, separators=(",", ":"))
        self._tail = tail + "}"
        destination = ('"destination":{"container":{"containerUrl":'
                       + _q(output_container_url) + self._identity + ',"path":')
        self._output = {  # filePattern, then the blob name, then the upload condition
            condition: ('{"filePattern":', "," + destination,
                        '}},"uploadOptions":{"uploadCondition":"' + condition + '"}}')
            for condition in (ON_COMPLETION, ON_SUCCESS)}

    def body(
        self,
        task_id: str,
        resource_files: Sequence[tuple[str, str]],
        output_files: Sequence[tuple[str, str]],
        inline_inputs: str | None = None,
        *,
        command_line: str | None = None,
        success_files: Sequence[tuple[str, str]] = (),
        display: str | None = None,
    ) -> str:
        """One task definition as JSON text (ASCII: its length is its size in bytes).

        `resource_files`: (url, filePath) pairs, after the common ones. `success_files`:
        (filePattern, blob) pairs uploaded only when the task succeeds; then `output_files`,
        uploaded when it completes, whatever its exit code. `inline_inputs`: a base64 task
        spec for the worker (an environment setting). `command_line`: instead of the worker.
        `display`: its ``displayName`` (`CALL_DISPLAY`, `CHUNK_DISPLAY`), right after its id.
        """
        resources = self._common + [_resource(url, path, self._identity)
                                    for url, path in resource_files]
        outputs = []
        for files, condition in ((success_files, ON_SUCCESS), (output_files, ON_COMPLETION)):
            head, middle, end = self._output[condition]
            outputs += [head + _q(pattern) + middle + _q(blob) + end for pattern, blob in files]
        parts = ['{"id":', _q(task_id),
                 "" if display is None else ',"displayName":' + _q(display),
                 self._command if command_line is None else ',"commandLine":' + _q(command_line),
                 ',"resourceFiles":[', ",".join(resources),
                 '],"outputFiles":[', ",".join(outputs), "]"]
        if inline_inputs is not None:
            parts += [',"environmentSettings":[{"name":', _q(C.INLINE_INPUTS_ENV),
                      ',"value":', _q(inline_inputs), "}]"]
        parts.append(self._tail)
        return "".join(parts)


def resource_file(url: str, path: str, pool_identity: str | None = None) -> dict[str, Any]:
    """A resource file as a dict (a job preparation task's), naming `pool_identity`
    (a managed identity's resource id) when given."""
    entry: dict[str, Any] = json.loads(_resource(url, path, _identity(pool_identity)))
    return entry


def _identity(resource_id: str | None) -> str:
    """The ``identityReference`` member of a resource or output file (after a comma), or ''."""
    if not resource_id:
        return ""
    return ',"identityReference":{"resourceId":' + _q(resource_id) + "}"


def _resource(url: str, path: str, identity: str = "") -> str:
    return '{"httpUrl":' + _q(url) + ',"filePath":' + _q(path) + identity + "}"


def group_collections(tasks: Iterable[tuple[T, int]]) -> Iterator[list[T]]:
    """Cut (task, JSON size in bytes) pairs into add-task-collection requests of <= 100 tasks and
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
