"""Handlers for jobs and job task counts: parse, call one backend method, serialize.

Imports: the standard library and sibling emulator modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from .. import schema
from ..models.base import conditions
from .base import JOB_FIELDS, PREP_STATUS_FIELDS, BaseResponses, Request, Response


class JobResponses(BaseResponses):
    def _job_url(self, req: Request, job_id: str) -> str:
        return f"{req.base_url}/jobs/{job_id}"

    def create_job(self, req: Request) -> Response:
        spec = self.body(req, schema.JOB_CREATE)
        with self.backend.op():
            job = self.backend.create_job(spec)
            headers = self.entity_headers(job.etag, job.last_modified,
                                          self._job_url(req, job.id), created=True)
        return Response(201, headers)

    def get_job(self, req: Request, jobId: str) -> Response:
        self.expand(req)
        select = self.select(req, JOB_FIELDS)
        with self.backend.op(wake=False):
            job = self.backend.job(jobId)
            conditions(job, req.headers, read=True)
            return self.entity(req, "jobs", job.to_json(req.base_url), job.etag,
                               job.last_modified, select)

    def list_jobs(self, req: Request) -> Response:
        self.expand(req)
        select = self.select(req, JOB_FIELDS)
        backend = self.backend

        def entries(start: int) -> Iterable[tuple[int, Callable[[], dict[str, Any]]]]:
            for job in list(backend.jobs.values()):
                if job.seq >= start:
                    yield job.seq, partial(job.to_json, req.base_url)

        return self.listing(req, "jobs", "jobs", entries, select)

    def _write(self, req: Request, job_id: str, spec: dict[str, schema.F], *,
               replace: bool = False) -> Response:
        changes = self.body(req, spec)
        with self.backend.op():
            conditions(self.backend.job(job_id), req.headers, read=False)
            job = self.backend.update_job(job_id, changes, replace=replace)
            headers = self.entity_headers(job.etag, job.last_modified, self._job_url(req, job.id))
        return Response(200, headers)

    def update_job(self, req: Request, jobId: str) -> Response:
        return self._write(req, jobId, schema.JOB_UPDATE)

    def replace_job(self, req: Request, jobId: str) -> Response:
        return self._write(req, jobId, schema.JOB_REPLACE, replace=True)

    def disable_job(self, req: Request, jobId: str) -> Response:
        body = self.body(req, schema.JOB_DISABLE)
        with self.backend.op():
            conditions(self.backend.job(jobId), req.headers, read=False)
            job = self.backend.disable_job(jobId, body["disableTasks"])
            headers = self.action_headers(req, job.etag, job.last_modified)
        return self.accepted(headers)

    def enable_job(self, req: Request, jobId: str) -> Response:
        self.no_body(req)
        with self.backend.op():
            conditions(self.backend.job(jobId), req.headers, read=False)
            job = self.backend.enable_job(jobId)
            headers = self.action_headers(req, job.etag, job.last_modified)
        return self.accepted(headers)

    def terminate_job(self, req: Request, jobId: str) -> Response:
        body = self.body(req, schema.JOB_TERMINATE, optional=True)
        self.flag(req, "force")
        with self.backend.op():
            conditions(self.backend.job(jobId), req.headers, read=False)
            job = self.backend.terminate_job(jobId, body.get("terminateReason"))
            headers = self.action_headers(req, job.etag, job.last_modified)
        return self.accepted(headers)

    def delete_job(self, req: Request, jobId: str) -> Response:
        self.no_body(req)
        self.flag(req, "force")
        with self.backend.op():
            conditions(self.backend.job(jobId), req.headers, read=False)
            self.backend.delete_job(jobId)
        return self.accepted()

    def get_job_task_counts(self, req: Request, jobId: str) -> Response:
        with self.backend.op(wake=False):
            counts = self.backend.task_counts(jobId)
        # the service's type name is "taskcountsresult" (recorded: azure-sdk-for-js
        # sdk/batch/batch-rest/recordings/node/task_operations_test/
        # recording_should_count_tasks_sucessfully.json)
        body = {"odata.metadata": f"{req.base_url}/$metadata#taskcountsresult/@Element",
                **counts}
        return self.json_response(body)

    def list_job_preparation_and_release_task_status(self, req: Request, jobId: str
                                                     ) -> Response:
        select = self.select(req, PREP_STATUS_FIELDS)
        with self.backend.op(wake=False):
            self.backend.prep_job(jobId)
        backend = self.backend

        def entries(start: int) -> Iterable[tuple[int, Callable[[], dict[str, Any]]]]:
            job = backend.prep_job(jobId)
            for rec in list(job.preps.values()):
                if rec.seq >= start and rec.prep is not None:
                    yield rec.seq, partial(rec.to_json, req.base_url, self.casing)

        return self.listing(req, "jobpreparationandreleasetaskstatuslist", "jobprepstatus",
                            entries, select)
