"""Wire-level behaviour: auth, malformed requests, strictness, faults, admin routes, lifecycle."""

from __future__ import annotations

import base64
import os
from email.utils import parsedate_to_datetime

import azure.batch.models as m
import pytest
from azure.batch import BatchClient
from azure.core.exceptions import HttpResponseError
from emu_sdk_kit import PATH_PREFIX, admin, client_for, make_job, make_pool, raw, wait_until

from azure_batch_executor.emulator import BatchEmulator
from azure_batch_executor.emulator.models import BatchBackend

V = "api-version=2025-06-01"



def test_bad_signature_is_403_with_string_to_sign(emulator: BatchEmulator) -> None:
    wrong = base64.b64encode(os.urandom(32)).decode()
    status, headers, body = raw(emulator, "GET", f"/jobs?{V}", key=wrong)
    assert status == 403 and body["code"] == "AuthenticationFailed"
    detail = {v["key"]: v["value"] for v in body["values"]}["AuthenticationErrorDetail"]
    assert f"/{emulator.account_name}/jobs\napi-version:2025-06-01" in detail
    assert headers["request-id"] in body["message"]["value"]
    sdk = client_for(emulator, key=wrong)
    with pytest.raises(HttpResponseError) as info:
        sdk.get_job("j1")
    assert info.value.status_code == 403 and info.value.error.code == "AuthenticationFailed"


def test_every_response_has_request_id_date_and_rfc1123_times(client: BatchClient,
                                                              emulator: BatchEmulator) -> None:
    make_job(client, "j1", "p")
    status, headers, _ = raw(emulator, "POST", f"/jobs?{V}",
                             {"id": "j2", "poolInfo": {"poolId": "p"}})
    assert status == 201 and headers["Location"].endswith("/jobs/j2")
    assert headers["ETag"].startswith("0x8D")
    parsedate_to_datetime(headers["Last-Modified"])
    status, headers, body = raw(emulator, "GET", f"/jobs/j1?{V}")
    assert status == 200 and headers["request-id"] and parsedate_to_datetime(headers["Date"])
    assert headers["Content-Type"] == "application/json; odata=minimalmetadata"
    assert body["eTag"] == headers["ETag"] and "previousState" not in body


@pytest.mark.parametrize("method, path, body, data, status, code", [
    ("GET", "/jobs", None, None, 400, "MissingRequiredQueryParameter"),
    ("GET", f"/jobs?{V}&colour=red", None, None, 400, "InvalidQueryParameterValue"),
    ("GET", f"/jobs?{V}&maxresults=5000", None, None, 400, "OutOfRangeQueryParameterValue"),
    ("GET", f"/jobs?{V}&$filter=state%20eq%20'nope'", None, None, 400,
     "InvalidQueryParameterValue"),
    ("GET", f"/jobs?{V}&$expand=stats", None, None, 400, "InvalidQueryParameterValue"),
    ("POST", f"/jobs?{V}", None, b"{not json", 400, "InvalidRequestBody"),
    ("POST", f"/jobs?{V}", None, b"[1]", 400, "InvalidRequestBody"),
    ("POST", f"/jobs?{V}", {"id": "j"}, None, 400, "MissingRequiredProperty"),
    ("POST", f"/jobs?{V}", {"id": 7, "poolInfo": {}}, None, 400, "InvalidPropertyValue"),
    ("POST", f"/jobs?{V}", {"id": "a b", "poolInfo": {}}, None, 400, "InvalidPropertyValue"),
    ("POST", f"/jobs?{V}", {"id": "j", "poolInfo": {}, "jobManagerTask": {}}, None, 400,
     "InvalidPropertyValue"),
    ("GET", f"/nowhere?{V}", None, None, 400, "InvalidUri"),
    ("PUT", f"/pools?{V}", None, None, 405, "UnsupportedHttpVerb"),
    ("GET", f"/applications?{V}", None, None, 400, "NotImplemented"),
    ("GET", f"/jobs/j9?{V}", None, None, 404, "JobNotFound"),
])
def test_malformed_requests(emulator: BatchEmulator, method: str, path: str, body: object,
                            data: bytes | None, status: int, code: str) -> None:
    got, _, parsed = raw(emulator, method, path, body, data=data)
    assert (got, parsed["code"]) == (status, code), parsed
    assert parsed["message"]["lang"] == "en-US" and "odata.metadata" in parsed


def test_head_errors_have_no_body(emulator: BatchEmulator) -> None:
    status, _, body = raw(emulator, "HEAD", f"/pools/none?{V}")
    assert status == 404 and body is None


def test_strictness_names_loose_and_loose_echoes(client: BatchClient) -> None:
    body = {"id": "j1", "poolInfo": {"poolId": "p"}, "colour": "blue"}
    with pytest.raises(HttpResponseError) as info:
        client.create_job(body)
    assert info.value.status_code == 400 and "--loose" in info.value.error.message
    assert "colour" in info.value.error.message
    with BatchEmulator(loose=True, path_prefix=PATH_PREFIX) as loose:
        loose_client = client_for(loose)
        loose_client.create_job(body)
        assert loose_client.get_job("j1")["colour"] == "blue"
        assert list(loose_client.list_jobs(expand=["stats"]))


def test_injected_503_with_retry_after_is_retried(client: BatchClient,
                                                   emulator: BatchEmulator) -> None:
    make_job(client, "j1", "p")
    emulator.reset_request_counts()
    emulator.inject_faults("GET", "/jobs/j1", 503, "ServerBusy", count=2, retry_after=0.05)
    assert client.get_job("j1").id == "j1"
    assert emulator.request_counts()[("GET", "get_job")] == 3


def test_post_429_without_retry_after_fails_at_once(client: BatchClient,
                                                     emulator: BatchEmulator) -> None:
    emulator.inject_faults("POST", "/jobs", 429, "TooManyRequests", count=1)
    with pytest.raises(HttpResponseError) as info:
        make_job(client, "j1", "p")
    assert info.value.status_code == 429 and info.value.error.code == "TooManyRequests"
    assert "Retry-After" not in info.value.response.headers
    assert emulator.request_counts()[("POST", "create_job")] == 1
    make_job(client, "j1", "p")  # the fault is used up


def test_internal_errors_are_500_with_request_id(client: BatchClient, emulator: BatchEmulator,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    make_job(client, "j1", "p")

    def broken(self: BatchBackend, job_id: str) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(BatchBackend, "task_counts", broken)
    status, headers, body = raw(emulator, "GET", f"/jobs/j1/taskcounts?{V}")
    assert status == 500 and body["code"] == "InternalError"
    assert headers["request-id"] in body["message"]["value"]
    monkeypatch.undo()
    assert client.get_job_task_counts("j1").task_counts.active == 0  # still serving


def test_admin_routes(client: BatchClient, emulator: BatchEmulator) -> None:
    make_pool(client, "p1")
    status, stats = admin(emulator, "GET", "/_emulator/stats")
    assert status == 200 and stats["total"] >= 1
    assert any(c["route"] == "create_pool" for c in stats["counts"])
    assert admin(emulator, "DELETE", "/_emulator/stats")[0] == 204
    assert emulator.request_counts() == {}
    fault = {"method": "GET", "path_contains": "/pools/p1", "status": 500,
             "code": "InternalError", "count": 1, "retry_after": 0}
    assert admin(emulator, "POST", "/_emulator/faults", fault)[0] == 204
    assert raw(emulator, "GET", f"/pools/p1?{V}")[0] == 500
    assert raw(emulator, "GET", f"/pools/p1?{V}")[0] == 200
    node = next(iter(client.list_nodes("p1"))).id
    assert admin(emulator, "POST", f"/_emulator/pools/p1/nodes/{node}/preempt")[0] == 204
    assert client.get_node("p1", node).state in ("preempted", "starting", "idle")
    wait_until(lambda: client.get_node("p1", node).state == "idle", what="node back")
    make_job(client, "j1", "p1")
    assert admin(emulator, "POST", "/_emulator/jobs/j1/tasks/none/kill")[1]["code"] == \
        "TaskNotFound"
    assert admin(emulator, "GET", "/_emulator/info")[1]["accountName"] == "devbatch"
    assert admin(emulator, "POST", "/_emulator/reset")[0] == 204
    assert list(client.list_pools()) == [] and list(client.list_jobs()) == []
    assert admin(emulator, "GET", "/_emulator/nothing")[0] == 400


def test_realistic_casing() -> None:
    with BatchEmulator(realistic_casing=True, path_prefix=PATH_PREFIX) as emu:
        c = client_for(emu)
        make_pool(c, "p1")
        assert c.get_pool("p1").task_scheduling_policy.node_fill_type == "Spread"
        make_job(c, "j1", "p1")
        c.create_task("j1", m.BatchTaskCreateOptions(id="t1", command_line="/bin/false"))
        result = c.create_task_collection("j1", m.BatchTaskGroup(task_values=[
            m.BatchTaskCreateOptions(id="t1", command_line="/bin/true")]))
        assert result.result_values[0].status == "ClientError"
        task = wait_until(lambda: (t := c.get_task("j1", "t1")).state == "completed" and t,
                          what="completion")
        assert task.execution_info.failure_info.category == "UserError"


def test_lifecycle() -> None:
    emu = BatchEmulator(path_prefix=PATH_PREFIX)
    with pytest.raises(RuntimeError):
        _ = emu.url
    assert emu.start() is emu
    other = BatchEmulator()
    assert emu.account_key != other.account_key
    assert len(base64.b64decode(emu.account_key)) == 64
    data_dir = emu.data_dir
    assert data_dir is not None and data_dir.is_dir()
    assert emu.account_key not in repr(emu)
    emu.stop()
    emu.stop()
    assert not data_dir.exists()
