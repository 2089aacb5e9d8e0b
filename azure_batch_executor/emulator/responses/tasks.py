"""Handlers for tasks and task collections: parse, call one backend method, serialize.

Imports: the standard library and sibling emulator modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from .. import exceptions as exc
from .. import schema, wire
from ..models import Task
from ..models.base import conditions
from . import shapes
from .base import TASK_FIELDS, TASK_NESTED, BaseResponses, Request, Response

MAX_TASKS_PER_COLLECTION = 100


class TaskResponses(BaseResponses):
    def _task_url(self, req: Request, task: Task) -> str:
        return f"{req.base_url}/jobs/{task.job_id}/tasks/{task.id}"

    def create_task(self, req: Request, jobId: str) -> Response:
        spec = self.body(req, schema.TASK_CREATE)
        with self.backend.op():
            task = self.backend.add_task(jobId, spec)
            headers = self.entity_headers(task.etag, task.last_modified,
                                          self._task_url(req, task), created=True)
        return Response(201, headers)

    def create_task_collection(self, req: Request, jobId: str) -> Response:
        body = self.body(req, schema.TASK_COLLECTION)
        raw_tasks = body["value"]
        if len(raw_tasks) > MAX_TASKS_PER_COLLECTION:
            raise exc.InvalidPropertyValue(
                f"The value provided for property 'value' is invalid: a task collection holds at "
                f"most {MAX_TASKS_PER_COLLECTION} tasks (got {len(raw_tasks)}).",
                {"PropertyName": "value", "Reason": "Too many tasks"})
        items: list[dict[str, Any] | exc.BatchError] = []
        validate, loose = schema.validate_owned, self.settings.loose  # raw_tasks: just parsed
        task_schema = schema.TASK_CREATE
        for raw in raw_tasks:
            try:
                items.append(validate(raw, task_schema, loose=loose))
            except exc.BatchError as err:
                err.values.setdefault("TaskId", str(raw.get("id", "")) if isinstance(raw, dict)
                                      else "")
                items.append(err)
        with self.backend.op():
            results = self.backend.add_task_collection(jobId, items)
            success = self.casing("success")
            value = [self._add_result(req, task_id, outcome, success)
                     for task_id, outcome in results]
        return self.json_response({"odata.metadata": f"{req.base_url}/$metadata#taskaddresult",
                                   "value": value})

    def _add_result(self, req: Request, task_id: str, outcome: Task | exc.BatchError,
                    success: str) -> dict[str, Any]:
        if isinstance(outcome, Task):
            return {"status": success, "taskId": outcome.id,
                    "eTag": outcome.etag, "lastModified": wire.iso(outcome.last_modified),
                    "location": self._task_url(req, outcome)}
        status = "servererror" if outcome.status >= 500 else "clienterror"
        error = exc.error_body(outcome, req.request_id, req.base_url)
        return {"status": self.casing(status), "taskId": task_id, "error": error}

    def list_tasks(self, req: Request, jobId: str) -> Response:
        self.expand(req)
        select = self.select(req, TASK_FIELDS, TASK_NESTED)
        with self.backend.op(wake=False):
            self.backend.job(jobId)
        backend = self.backend

        def entries(start: int) -> Iterable[tuple[int, Callable[[], dict[str, Any]]]]:
            job = backend.job(jobId)
            for seq, task in job.tasks_from(start):
                yield seq, partial(_task_json, task, req.base_url, self.casing,
                                   req.api_version)

        return self.listing(req, "tasks", "tasks", entries, select)

    def get_task(self, req: Request, jobId: str, taskId: str) -> Response:
        self.expand(req)
        select = self.select(req, TASK_FIELDS, TASK_NESTED)
        with self.backend.op(wake=False):
            _, task = self.backend.task(jobId, taskId)
            conditions(task, req.headers, read=True)
            doc = shapes.task(task.to_json(req.base_url, self.casing), req.api_version)
            return self.entity(req, "tasks", doc, task.etag,
                               task.last_modified, select)

    def replace_task(self, req: Request, jobId: str, taskId: str) -> Response:
        body = self.body(req, schema.TASK_REPLACE)
        with self.backend.op():
            conditions(self.backend.task(jobId, taskId)[1], req.headers, read=False)
            task = self.backend.replace_task(jobId, taskId, body.get("constraints") or {})
            headers = self.entity_headers(task.etag, task.last_modified, self._task_url(req, task))
        return Response(200, headers)

    def delete_task(self, req: Request, jobId: str, taskId: str) -> Response:
        self.no_body(req)
        with self.backend.op():
            conditions(self.backend.task(jobId, taskId)[1], req.headers, read=False)
            self.backend.delete_task(jobId, taskId)
        return Response(200)

    def terminate_task(self, req: Request, jobId: str, taskId: str) -> Response:
        self.no_body(req)
        with self.backend.op():
            conditions(self.backend.task(jobId, taskId)[1], req.headers, read=False)
            task = self.backend.terminate_task_api(jobId, taskId)
            headers = self.action_headers(req, task.etag, task.last_modified)
        return Response(204, headers)

    def reactivate_task(self, req: Request, jobId: str, taskId: str) -> Response:
        self.no_body(req)
        with self.backend.op():
            conditions(self.backend.task(jobId, taskId)[1], req.headers, read=False)
            task = self.backend.reactivate_task(jobId, taskId)
            headers = self.action_headers(req, task.etag, task.last_modified)
        return Response(204, headers)

    def list_subtasks(self, req: Request, jobId: str, taskId: str) -> Response:
        self.select(req, ("id", "nodeInfo", "startTime", "endTime", "exitCode", "containerInfo",
                          "failureInfo", "state", "stateTransitionTime", "previousState",
                          "previousStateTransitionTime", "result"))
        with self.backend.op(wake=False):
            self.backend.task(jobId, taskId)
        return self.json_response({"odata.metadata": f"{req.base_url}/$metadata#subtaskinfo",
                                   "value": []})


def _task_json(task: Task, base_url: str, casing: Any, version: str) -> dict[str, Any]:
    return shapes.task(task.to_json(base_url, casing), version)
