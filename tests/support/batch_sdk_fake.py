"""A stand-in for the SDK's `BatchClient`, for unit tests of the executor's logic.

`FakeBatchClient` implements the subset of `azure.batch.BatchClient` that
`cloud.batch.BatchService` calls (tests/unit/test_fakes_match_ports.py checks the
signatures against the real class), returns real SDK model objects, and runs each task's
command line as a subprocess in a temporary directory (resource files from a
`MemoryBlobStore`, output files back into it), so the real worker runs. Knobs let tests
inject add errors, server errors, a vanished job, and hold tasks before they start.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from azure.batch import models
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from support.memory_store import MemoryBlobStore

BATCH_KEY = base64.b64encode(b"batch-secret-key-for-tests").decode()
STORAGE_KEY = base64.b64encode(b"storage-secret-key-for-tests").decode()
FAKE_SETTINGS = {
    "batch_account_url": "https://fake.westeurope.batch.azure.com",
    "batch_account_name": "fake",
    "batch_account_key": BATCH_KEY,
    "storage_connection_string": (
        f"DefaultEndpointsProtocol=https;AccountName=fake;AccountKey={STORAGE_KEY};"
        "EndpointSuffix=core.windows.net"
    ),
    "python_command": sys.executable,
    "poll_interval": 0.05,
    "environment": "none",  # the fake nodes run the client's interpreter, as an image would
}


def http_error(cls: type[HttpResponseError], status: int, code: str) -> HttpResponseError:
    exc = cls(message=f"{code}: injected")
    exc.status_code = status
    exc.error = SimpleNamespace(code=code, message=f"{code} (injected)")  # type: ignore
    return exc


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Pages:
    def __init__(self, pages: list[list[Any]]) -> None:
        self._pages = pages

    def by_page(self):
        return iter(self._pages)


class _Reply:
    def __init__(self, content: bytes) -> None:
        self.content = content

    def raise_for_status(self) -> None:
        pass


class FakeBatchClient:
    """The subset of azure.batch.BatchClient the executor uses, running tasks locally."""

    def __init__(self, store: MemoryBlobStore, slots: int = 4, pool_exists: bool = False) -> None:
        self.store = store
        self.slots = slots
        self.pools: dict[str, dict] = {}
        if pool_exists:
            self.pools["azure-batch-executor"] = {"id": "azure-batch-executor", "state": "active",
                                                  "targetDedicatedNodes": 3,
                                                  "taskSlotsPerNode": 2}
        self.jobs: dict[str, dict] = {}
        self.tasks: dict[str, dict[str, dict]] = {}
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.runner = ThreadPoolExecutor(slots, thread_name_prefix="fake-node")
        self.hold = threading.Event()
        self.hold.set()  # clear() to keep tasks from starting
        self.add_errors: list[BaseException] = []  # raised by the next add calls
        self.server_error_once: set[str] = set()  # task ids answered with servererror once
        self.exists_on_add: set[str] = set()  # task ids answered with TaskExists (and run)
        self.job_gone = False
        self.node_states: dict[str, int] | None = None  # the pools' nodes by state
        self.terminated: list[str] = []  # task ids terminate_task was called for
        self.in_process = False  # True: run the call in this process (fast; no subprocess)
        self.tmp = tempfile.TemporaryDirectory(prefix="fake-batch-")

    # --- pools and jobs --------------------------------------------------------------------
    def get_pool(self, pool_id: str, select: Any = None) -> models.BatchPool:
        self.calls["get_pool"] += 1
        if pool_id not in self.pools:
            raise http_error(ResourceNotFoundError, 404, "PoolNotFound")
        return models.BatchPool(self.pools[pool_id])

    def create_pool(self, pool: dict) -> None:
        self.calls["create_pool"] += 1
        if pool["id"] in self.pools:
            raise http_error(ResourceExistsError, 409, "PoolExists")
        self.pools[pool["id"]] = dict(pool, state="active")

    def begin_delete_pool(self, pool_id: str, polling_interval: int = 5) -> None:
        self.calls["delete_pool"] += 1
        self.pools.pop(pool_id, None)

    def list_pool_node_counts(self, filter: str = "", max_results: Any = None) -> list[Any]:
        """The fake's pools each have `slots` idle dedicated nodes, unless a test sets
        `node_states` ({state: count}, REST camelCase names)."""
        self.calls["list_pool_node_counts"] += 1
        m = re.fullmatch(r"poolId eq '([^']+)'", filter or "")
        rows = []
        for pool_id in self.pools:
            if m and m.group(1) != pool_id:
                continue
            states = dict(self.node_states) if self.node_states is not None else {
                "idle": self.slots}
            states["total"] = sum(states.values())
            rows.append(models.BatchPoolNodeCounts({"poolId": pool_id, "dedicated": states,
                                                    "lowPriority": {"total": 0}}))
        return rows

    def list_nodes(self, pool_id: str, filter: str = "", select: Any = None,
                   max_results: Any = None) -> list[Any]:
        self.calls["list_nodes"] += 1
        return []

    def list_pools(self, filter: str = "", select: Any = None) -> list[Any]:
        self.calls["list_pools"] += 1
        return [models.BatchPool(p) for p in self.pools.values()]

    def create_job(self, job: dict) -> None:
        self.calls["create_job"] += 1
        self.jobs[job["id"]] = dict(job, state="active", creationTime=_now())
        self.tasks[job["id"]] = {}

    def get_job(self, job_id: str, select: Any = None) -> models.BatchJob:
        self.calls["get_job"] += 1
        if self.job_gone or job_id not in self.jobs:
            raise http_error(ResourceNotFoundError, 404, "JobNotFound")
        job = self.jobs[job_id]
        return models.BatchJob({"id": job_id, "state": job["state"],
                                "creationTime": job.get("creationTime"),
                                "poolInfo": job.get("poolInfo")})

    def list_jobs(self, filter: str = "", select: Any = None,
                  max_results: Any = None) -> list[models.BatchJob]:
        self.calls["list_jobs"] += 1
        return [models.BatchJob({"id": j["id"], "state": j["state"],
                                 "creationTime": j.get("creationTime"),
                                 "poolInfo": j.get("poolInfo")}) for j in self.jobs.values()]

    def begin_delete_job(self, job_id: str, polling_interval: int = 5) -> None:
        self.calls["delete_job"] += 1
        if job_id not in self.jobs:
            raise http_error(ResourceNotFoundError, 404, "JobNotFound")
        del self.jobs[job_id]

    def begin_terminate_job(self, job_id: str, options: dict, polling_interval: int = 5) -> None:
        assert isinstance(options, dict)
        self.calls["terminate_job"] += 1
        if job_id in self.jobs:
            self.jobs[job_id]["state"] = "completed"

    # --- tasks -----------------------------------------------------------------------------
    def create_task_collection(self, job_id: str, collection: dict, stream: bool = False,
                               cls: Any = None) -> Any:
        reply = self._add(job_id, collection)
        if cls is not None:  # what the SDK hands `cls` with stream=True: the body's bytes
            return cls(None, iter([json.dumps(reply).encode()]), {})
        return models.BatchCreateTaskCollectionResult(reply)

    def send_request(self, request: Any) -> Any:
        """The add-task-collection POST the executor sends through the client's pipeline."""
        m = re.fullmatch(r"/jobs/([^/]+)/addtaskcollection\?api-version=2025-06-01",
                         request.url)
        assert m and request.method == "POST", request.url
        reply = self._add(m.group(1), json.loads(request.content))
        return _Reply(json.dumps(reply).encode())

    def _add(self, job_id: str, collection: dict) -> dict:
        self.calls["add"] += 1
        tasks = collection["value"]
        assert 1 <= len(tasks) <= 100, len(tasks)
        if self.add_errors:
            raise self.add_errors.pop(0)
        if self.job_gone:
            raise http_error(ResourceNotFoundError, 404, "JobNotFound")
        values = []
        for body in tasks:
            tid = body["id"]
            if tid in self.server_error_once:
                self.server_error_once.discard(tid)
                values.append({"status": "ServerError", "taskId": tid,
                               "error": {"code": "ServerBusy", "message": {"value": "busy"}}})
                continue
            with self.lock:
                exists = tid in self.tasks[job_id]
                if not exists:
                    self.tasks[job_id][tid] = {"body": body, "state": "active"}
                    self.runner.submit(self._run, job_id, tid)
            if exists or tid in self.exists_on_add:
                values.append({"status": "ClientError", "taskId": tid,
                               "error": {"code": "TaskExists", "message": {"value": "exists"}}})
            else:
                values.append({"status": "Success", "taskId": tid})
        return {"value": values}

    def terminate_task(self, job_id: str, task_id: str, **kw: Any) -> None:
        self.calls["terminate_task"] += 1
        with self.lock:
            task = self.tasks[job_id].get(task_id)
            if task is None:
                raise http_error(ResourceNotFoundError, 404, "TaskNotFound")
            if task["state"] == "completed":
                raise http_error(ResourceExistsError, 409, "TaskCompleted")
            self.terminated.append(task_id)

    def get_job_task_counts(self, job_id: str) -> Any:
        self.calls["task_counts"] += 1
        if self.job_gone:
            raise http_error(ResourceNotFoundError, 404, "JobNotFound")
        with self.lock:
            states = Counter(t["state"] for t in self.tasks[job_id].values())
        counts = {"active": states["active"], "running": states["running"],
                  "completed": states["completed"], "succeeded": 0, "failed": 0}
        return models.BatchTaskCountsResult({"taskCounts": counts, "taskSlotCounts": counts})

    def list_tasks(self, job_id: str, filter: str = "", select: Any = None,
                   max_results: int = 1000) -> _Pages:
        self.calls["list"] += 1
        since = None
        m = re.search(r"stateTransitionTime gt DateTime'([^']+)'", filter or "")
        if m:
            since = dt.datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))
        states = {"completed", "running"} if "state eq 'running'" in (filter or "") else {
            "completed"}
        if not filter:  # every task, in any state, with its displayName (a reattach)
            return self._every_task(job_id, max_results)
        out = []
        with self.lock:
            for tid, t in self.tasks[job_id].items():
                if t["state"] not in states:
                    continue
                if since and dt.datetime.fromisoformat(t["time"].replace("Z", "+00:00")) <= since:
                    continue
                out.append(models.BatchTask({"id": tid, "state": t["state"],
                                             "stateTransitionTime": t["time"],
                                             "executionInfo": t.get("info")}))
        pages = [out[i:i + max_results] for i in range(0, len(out), max_results)] or [[]]
        return _Pages(pages)

    def _every_task(self, job_id: str, max_results: int) -> _Pages:
        with self.lock:
            out = [models.BatchTask({"id": tid, "state": t["state"],
                                     "displayName": t["body"].get("displayName"),
                                     "stateTransitionTime": t.get("time"),
                                     "executionInfo": t.get("info")})
                   for tid, t in self.tasks[job_id].items()]
        return _Pages([out[i:i + max_results] for i in range(0, len(out), max_results)] or [[]])

    def list_job_preparation_and_release_task_status(self, job_id: str) -> list[Any]:
        self.calls["list_job_preparation_and_release_task_status"] += 1
        return []  # the executor's unit tests prepare no environment

    def download_node_file(self, pool_id: str, node_id: str, file_path: str
                           ) -> Iterator[bytes]:
        self.calls["download_node_file"] += 1
        raise http_error(ResourceNotFoundError, 404, "FileNotFound")

    def close(self) -> None:
        pass

    def shutdown(self) -> None:
        self.runner.shutdown(wait=True)
        self.tmp.cleanup()

    # --- the "node" --------------------------------------------------------------------------
    def _run(self, job_id: str, tid: str) -> None:
        self.hold.wait()
        with self.lock:
            task = self.tasks[job_id][tid]
            task.update(state="running", time=_now())
        body = task["body"]
        if self.in_process:
            self._run_in_process(job_id, tid, task, body)
            return
        taskdir = Path(self.tmp.name) / job_id / tid
        wd = taskdir / "wd"
        wd.mkdir(parents=True)
        for rf in body["resourceFiles"]:
            name = self.store.blob_of(rf["httpUrl"])
            (wd / rf["filePath"]).write_bytes(self.store.blobs[name])
        env = dict(os.environ)
        for e in [*self.jobs[job_id].get("commonEnvironmentSettings", []),
                  *body.get("environmentSettings", [])]:  # the job's, then the task's
            env[e["name"]] = e["value"]
        env["PYTHONPATH"] = ""
        with open(taskdir / "stdout.txt", "wb") as out, open(taskdir / "stderr.txt", "wb") as err:
            proc = subprocess.run(shlex.split(body["commandLine"]), cwd=wd, env=env,
                                  stdout=out, stderr=err)
        for of in body["outputFiles"]:
            path = (wd / of["filePattern"]).resolve()
            if path.exists():
                dest = of["destination"]["container"]
                self.store.for_url(dest["containerUrl"]).upload(dest["path"], path.read_bytes())
        info: dict[str, Any] = {"exitCode": proc.returncode, "retryCount": 0, "requeueCount": 0,
                                "result": "success" if proc.returncode == 0 else "failure"}
        if proc.returncode:
            info["failureInfo"] = {"category": "UserError", "code": "FailureExitCode",
                                   "message": "The task process exited with a non-zero exit code"}
        with self.lock:
            task.update(state="completed", info=info, time=_now())

    def _run_in_process(self, job_id: str, tid: str, task: dict, body: dict) -> None:
        """Decode the inline spec and call the function here (tests of polling and bounds)."""
        import base64
        import pickle

        import cloudpickle

        from azure_batch_executor.wire import worker as worker

        env = {e["name"]: e["value"] for e in body.get("environmentSettings", [])}
        spec = pickle.loads(base64.b64decode(env["ABX_INPUTS_B64"]))
        fn, calls = cloudpickle.loads(spec["call"])
        if spec["shared"]:
            blob = next(rf["httpUrl"] for rf in body["resourceFiles"]
                        if rf["filePath"] == spec["shared"])
            fn = cloudpickle.loads(self.store.blobs[self.store.blob_of(blob)])
        rows = []
        for args, kwargs in calls:
            try:
                rows.append(worker._result(fn(*args, **kwargs)))
            except BaseException as exc:  # noqa: BLE001 - as the worker: every outcome is a row
                rows.append(worker._error(exc))
        outcome = {"format": 1, "node": {}, "fatal": None, "results": rows}
        out = next(of for of in body["outputFiles"] if of["filePattern"] == "outputs.pickle")
        dest = out["destination"]["container"]
        self.store.for_url(dest["containerUrl"]).upload(dest["path"], pickle.dumps(outcome))
        info = {"exitCode": 0, "result": "Success", "retryCount": 0, "requeueCount": 0}
        with self.lock:
            task.update(state="completed", info=info, time=_now())
