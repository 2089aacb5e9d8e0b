"""Wire details against the values recorded from the real service (issue 11, item 2).

Each test names its recording; docs/dev/emulator-rest.md ("Recorded conventions") lists
them. Requests are signed by hand (`compat_kit.signed`) so that what is on the wire is
exactly what a client sends; the emulator runs in strict mode.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from compat_kit import signed
from support.waiting import wait_until

from azure_batch_executor.emulator import BatchEmulator

V16, V17, V19, V25 = "2022-10-01.16.0", "2023-05-01.17.0", "2024-02-01.19.0", "2025-06-01"
IMAGE = {"imageReference": {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy",
                            "sku": "22_04-lts", "version": "latest"},
         "nodeAgentSKUId": "batch.node.ubuntu 22.04"}
# .NET FFFFFFF: up to 7 digits, no trailing zero, no fraction on a whole second
BODY_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,6}[1-9])?Z$")


def _pool(emulator: BatchEmulator, pool_id: str, version: str = V25, nodes: int = 0,
          **extra: object) -> None:
    body = {"id": pool_id, "vmSize": "standard_d2s_v3", "virtualMachineConfiguration": IMAGE,
            "targetDedicatedNodes": nodes, **extra}
    status, _, error = signed(emulator, "POST", f"/pools?api-version={version}", body)
    assert status == 201, error


def _job(emulator: BatchEmulator, job_id: str, pool_id: str = "p") -> None:
    status, _, error = signed(emulator, "POST", f"/jobs?api-version={V25}",
                              {"id": job_id, "poolInfo": {"poolId": pool_id}})
    assert status == 201, error


def _wait(probe, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    return wait_until(probe, "the emulator's state", timeout)


def test_delete_without_content_length_signs_an_empty_line(emulator: BatchEmulator) -> None:
    """recording_should_delete_a_job_successfully.json: DELETE, no Content-Length, 202."""
    _job(emulator, "j")
    status, _, body = signed(emulator, "DELETE", f"/jobs/j?api-version={V19}",
                             content_length=False)
    assert status == 202, body
    status, _, body = signed(emulator, "DELETE", f"/jobs/missing?api-version={V19}",
                             content_length=True)
    assert status == 404 and body["code"] == "JobNotFound"


@pytest.mark.parametrize("name", ["timeout", "timeOut", "TIMEOUT"])
def test_timeout_in_any_case(emulator: BatchEmulator, name: str) -> None:
    """azure-batch 14.x sends `timeout=30` (azure-cli test_batch_task_create_cmd.yaml:
    `...&timeout=30` answered 200/201); 15.x sends `timeOut`; above 30 the service uses 30."""
    status, _, body = signed(emulator, "GET", f"/pools?api-version={V19}&{name}=30")
    assert status == 200, body
    status, _, body = signed(emulator, "GET", f"/pools?api-version={V19}&{name}=120")
    assert status == 200, body


def test_timeout_must_be_an_integer(emulator: BatchEmulator) -> None:
    status, _, body = signed(emulator, "GET", f"/pools?api-version={V19}&timeout=soon")
    assert status == 400 and body["code"] == "InvalidQueryParameterValue"


def test_maxresults_below_one(emulator: BatchEmulator) -> None:
    """recording_should_fail_to_list_pools_with_invalid_max.json, verbatim."""
    status, headers, body = signed(emulator, "GET",
                                   "/pools?maxResults=-5&api-version=2023-11-01.18.0")
    assert status == 400
    assert body["code"] == "InvalidQueryParameterValue"
    assert body["values"] == [{"key": "QueryParameterName", "value": "maxresults"},
                              {"key": "QueryParameterValue", "value": "-5"},
                              {"key": "Reason", "value": "MaxResults cannot be less than 1"}]
    assert headers["DataServiceVersion"] == "3.0"


def test_next_link_keeps_the_request_query(emulator: BatchEmulator) -> None:
    """azure-batch 14.x and @azure/batch follow odata.nextLink as given."""
    for i in range(3):
        _job(emulator, f"j{i}")
    query = f"api-version={V16}&$filter=startswith(id%2C%27j%27)&maxresults=1&timeout=30"
    status, _, body = signed(emulator, "GET", f"/jobs?{query}")
    assert status == 200 and [j["id"] for j in body["value"]] == ["j0"]
    link = body["odata.nextLink"]
    assert link.startswith(f"{emulator.url}/jobs?{query}&$skiptoken=")
    seen = ["j0"]
    while link:
        status, _, body = signed(emulator, "GET", link[len(emulator.url):])
        assert status == 200, body
        seen += [j["id"] for j in body["value"]]
        link = body.get("odata.nextLink")
        assert link is None or f"api-version={V16}" in link
    assert seen == ["j0", "j1", "j2"]


def test_data_service_version_on_every_response(emulator: BatchEmulator) -> None:
    """Every recorded response carries DataServiceVersion 3.0: 201 creates, 202 deletes,
    200 reads and HEADs, 400/409 errors (recordings listed in docs/dev/emulator-rest.md)."""
    answers = [
        signed(emulator, "POST", f"/jobs?api-version={V19}",
               {"id": "j", "poolInfo": {"poolId": "p"}}),
        signed(emulator, "GET", f"/jobs/j?api-version={V19}"),
        signed(emulator, "POST", f"/jobs/j/disable?api-version={V19}", {"disableTasks": "wait"}),
        signed(emulator, "DELETE", f"/jobs/j?api-version={V19}", content_length=False),
        signed(emulator, "GET", f"/jobs/nope?api-version={V19}"),
        signed(emulator, "GET", f"/pools?api-version={V19}&maxresults=0"),
        signed(emulator, "GET", "/pools?api-version=2019-01-01.8.0"),
        signed(emulator, "HEAD", f"/pools/nope?api-version={V19}"),
    ]
    _pool(emulator, "p")
    answers.append(signed(emulator, "HEAD", f"/pools/p?api-version={V19}"))
    statuses = [status for status, _, _ in answers]
    assert statuses == [201, 200, 202, 202, 404, 400, 400, 404, 200]
    for status, headers, _ in answers:
        assert headers.get("DataServiceVersion") == "3.0", (status, headers)


def test_task_counts_type(emulator: BatchEmulator) -> None:
    """recording_should_count_tasks_sucessfully.json: #taskcountsresult/@Element."""
    _job(emulator, "j")
    status, _, body = signed(emulator, "GET", f"/jobs/j/taskcounts?api-version={V19}")
    assert status == 200
    assert body["odata.metadata"] == f"{emulator.url}/$metadata#taskcountsresult/@Element"
    assert set(body) == {"odata.metadata", "taskCounts", "taskSlotCounts"}


def test_echoed_enums_in_the_service_casing(emulator: BatchEmulator) -> None:
    """recording_should_list_all_tasks_successfully.json: uploadCondition "TaskCompletion",
    "TaskFailure"; every recorded pool: nodeFillType "Spread"."""
    _job(emulator, "j")
    outputs = [{"filePattern": f"{cond}-*", "uploadOptions": {"uploadCondition": cond},
                "destination": {"container": {"containerUrl": "http://127.0.0.1:9/c?sig=x"}}}
               for cond in ("taskcompletion", "TASKFAILURE", "TaskSuccess")]
    status, _, error = signed(emulator, "POST", f"/jobs/j/tasks?api-version={V19}",
                              {"id": "t", "commandLine": "/bin/true", "outputFiles": outputs})
    assert status == 201, error
    _, _, task = signed(emulator, "GET", f"/jobs/j/tasks/t?api-version={V19}")
    assert [o["uploadOptions"]["uploadCondition"] for o in task["outputFiles"]] == \
        ["TaskCompletion", "TaskFailure", "TaskSuccess"]
    _, _, listed = signed(emulator, "GET", f"/jobs/j/tasks?api-version={V19}")
    assert listed["value"][0]["outputFiles"] == task["outputFiles"]
    _pool(emulator, "p1")
    _pool(emulator, "p2", taskSchedulingPolicy={"nodeFillType": "pack"})
    for pool_id, fill in (("p1", "Spread"), ("p2", "Pack")):
        _, _, pool = signed(emulator, "GET", f"/pools/{pool_id}?api-version={V19}")
        assert pool["taskSchedulingPolicy"] == {"nodeFillType": fill}


def test_file_headers(emulator: BatchEmulator) -> None:
    """test_batch.test_batch_files.yaml (azure-sdk-for-python): isdirectory "False", the
    file URL percent-encoded whole."""
    _pool(emulator, "p", nodes=1)
    _job(emulator, "j", "p")
    status, _, error = signed(emulator, "POST", f"/jobs/j/tasks?api-version={V19}",
                              {"id": "t", "commandLine": "/bin/sh -c 'echo hi > out.txt'"})
    assert status == 201, error
    _wait(lambda: signed(emulator, "GET", f"/jobs/j/tasks/t?api-version={V19}")[2]["state"]
          == "completed")
    for method in ("HEAD", "GET"):
        status, headers, _ = signed(emulator, method,
                                    f"/jobs/j/tasks/t/files/wd%2Fout.txt?api-version={V19}")
        assert status == 200
        assert headers["ocp-batch-file-isdirectory"] == "False"
        url = headers["ocp-batch-file-url"]
        assert "/" not in url and ":" not in url
        assert unquote(url) == f"{emulator.url}/jobs/j/tasks/t/files/wd/out.txt"
        assert headers["DataServiceVersion"] == "3.0"
    status, headers, _ = signed(emulator, "HEAD", f"/jobs/j/tasks/t/files/wd?api-version={V19}")
    assert headers["ocp-batch-file-isdirectory"] == "True"


def test_time_fractions(emulator: BatchEmulator) -> None:
    """Body times as .NET's FFFFFFF (test_batch.pyTestBatchtest_batch_jobs[sync].json has
    "2023-10-17T08:48:43.423611Z" beside 7-digit ones); the error message's Time: line
    keeps 7 digits (recording_should_fail_to_job_preprelease_status.json)."""
    for i in range(20):
        _job(emulator, f"j{i}")
    _, _, body = signed(emulator, "GET", f"/jobs?api-version={V19}")
    stamps = [j[k] for j in body["value"] for k in ("creationTime", "lastModified",
                                                    "stateTransitionTime")]
    assert stamps and all(BODY_TIME.match(s) for s in stamps), stamps
    _, _, error = signed(emulator, "GET", f"/jobs/nope?api-version={V19}")
    assert re.search(r"\nTime:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$",
                     error["message"]["value"])


def test_terminate_data_service_id(emulator: BatchEmulator) -> None:
    """recording_should_terminate_a_job_successfully.json: DataServiceId is .../terminate."""
    _job(emulator, "j")
    status, headers, _ = signed(emulator, "POST", f"/jobs/j/terminate?api-version={V19}")
    assert status == 202
    assert headers["DataServiceId"] == f"{emulator.url}/jobs/j/terminate"
    assert headers["ETag"].startswith("0x8D") and "Last-Modified" in headers


def test_job_not_found_body(emulator: BatchEmulator) -> None:
    status, _, body = signed(emulator, "GET", f"/jobs/nope?api-version={V19}")
    assert status == 404
    assert set(body) == {"odata.metadata", "code", "message"}
    assert body["code"] == "JobNotFound"
    assert body["message"]["value"].startswith("The specified job does not exist.\nRequestId:")


def test_pool_defaults(emulator: BatchEmulator) -> None:
    """recording_should_get_a_pool_reference_successfully.json (startTask, scheduling
    policy) and test_batch.pyTestBatchtest_batch_network_configuration[sync].json
    (networkConfiguration, api 2023-05-01.17.0)."""
    network = {"endpointConfiguration": {"inboundNATPools": []}}
    _pool(emulator, "p", startTask={"commandLine": "/bin/true"}, networkConfiguration=network)
    _, _, pool = signed(emulator, "GET", f"/pools/p?api-version={V17}")
    assert pool["startTask"] == {"commandLine": "/bin/true", "maxTaskRetryCount": 0,
                                 "waitForSuccess": True, "userIdentity": {"autoUser": {
                                     "scope": "pool", "elevationLevel": "nonadmin"}}}
    assert pool["taskSchedulingPolicy"] == {"nodeFillType": "Spread"}
    assert pool["networkConfiguration"] == {**network, "dynamicVNetAssignmentScope": "none",
                                            "enableAcceleratedNetworking": False}
    _, _, pool = signed(emulator, "GET", f"/pools/p?api-version={V16}")  # before the property
    assert pool["networkConfiguration"] == {**network, "dynamicVNetAssignmentScope": "none"}
    _pool(emulator, "bare")
    _, _, pool = signed(emulator, "GET", f"/pools/bare?api-version={V19}")
    assert "networkConfiguration" not in pool and "startTask" not in pool


def test_each_version_gets_its_shape(emulator: BatchEmulator) -> None:
    """upgradePolicy exists from 2024-02-01.19.0 (versions.INTRODUCED)."""
    _pool(emulator, "p", upgradePolicy={"mode": "manual"})
    for version, present in ((V16, False), (V17, False), (V19, True), (V25, True)):
        _, _, pool = signed(emulator, "GET", f"/pools/p?api-version={version}")
        assert ("upgradePolicy" in pool) is present, version
        _, _, listed = signed(emulator, "GET", f"/pools?api-version={version}")
        assert ("upgradePolicy" in listed["value"][0]) is present, version


@pytest.mark.parametrize("value, stored", [("2", 2), (" +2 ", 2), (2, 2)])
def test_integers_as_strings_are_converted(emulator: BatchEmulator, value: object,
                                           stored: int) -> None:
    """The service's OData reader converts a JSON string to the declared Int32 (see
    validator.py); the az CLI sends `"targetDedicatedNodes": "1"` this way."""
    _pool(emulator, "p", targetLowPriorityNodes=value, taskSlotsPerNode=str(stored),
          enableInterNodeCommunication="false")
    _, _, pool = signed(emulator, "GET", f"/pools/p?api-version={V19}")
    assert pool["targetLowPriorityNodes"] == stored and pool["taskSlotsPerNode"] == stored
    assert pool["enableInterNodeCommunication"] is False


@pytest.mark.parametrize("value", ["two", "1.5", "", "99999999999", True])
def test_other_strings_are_refused(emulator: BatchEmulator, value: object) -> None:
    body = {"id": "p", "vmSize": "s", "virtualMachineConfiguration": IMAGE,
            "targetDedicatedNodes": value}
    status, _, error = signed(emulator, "POST", f"/pools?api-version={V19}", body)
    assert status == 400 and error["code"] == "InvalidPropertyValue"
