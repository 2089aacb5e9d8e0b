"""api-versions and per-version shapes, the service's defaults, strings read as numbers."""

from __future__ import annotations

import copy

import pytest

from azure_batch_executor.emulator import exceptions as exc
from azure_batch_executor.emulator import schema, versions, wire
from azure_batch_executor.emulator.app import _is_int32
from azure_batch_executor.emulator.responses import shapes


def test_the_clients_versions_are_listed_oldest_first() -> None:
    listed = list(versions.SUPPORTED)
    assert listed[0] == "2022-10-01.16.0" and listed[-1] == versions.LATEST == "2025-06-01"
    assert "2024-02-01.19.0" in listed and "2024-07-01.20.0" in listed
    assert versions.served_as("1999-01-01.1.0") == versions.LATEST  # --loose only
    assert all(since in versions.SUPPORTED for since in versions.INTRODUCED.values())


def test_shape_drops_newer_properties_without_touching_the_model() -> None:
    doc = {"id": "p", "upgradePolicy": {"mode": "manual"},
           "networkConfiguration": {"dynamicVNetAssignmentScope": "none",
                                    "enableAcceleratedNetworking": False}}
    before = copy.deepcopy(doc)
    old = versions.shape("pool", "2022-10-01.16.0", doc)
    assert old == {"id": "p", "networkConfiguration": {"dynamicVNetAssignmentScope": "none"}}
    assert doc == before
    assert versions.shape("pool", "2025-06-01", doc) is doc
    assert versions.shape("pool", "2024-02-01.19.0", doc) is doc


def test_start_task_defaults() -> None:
    assert shapes.start_task({"commandLine": "x"}) == {
        "commandLine": "x", "maxTaskRetryCount": 0, "waitForSuccess": True,
        "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}}
    given = {"commandLine": "x", "userIdentity": {"username": "u"}, "maxTaskRetryCount": 2,
             "waitForSuccess": False}
    assert shapes.start_task(given) is given


def test_echoed_enums_and_stored_specs_stay_as_sent() -> None:
    stored = {"filePattern": "*", "uploadOptions": {"uploadCondition": "tasksuccess"}}
    doc = shapes.task({"id": "t", "outputFiles": [stored]}, versions.LATEST)
    assert doc["outputFiles"][0]["uploadOptions"]["uploadCondition"] == "TaskSuccess"
    assert stored["uploadOptions"]["uploadCondition"] == "tasksuccess"
    assert wire.echoed_enum("PACK") == "Pack" and wire.echoed_enum("other") == "other"


@pytest.mark.parametrize("text, ok", [("30", True), (" +30 ", True), ("-1", True),
                                      ("3_0", False), ("3.0", False), ("", False),
                                      ("2147483648", False), ("٣", False)])
def test_timeout_is_an_int32(text: str, ok: bool) -> None:
    assert _is_int32(text) is ok


def test_numeric_strings_are_converted_on_the_fast_path_too() -> None:
    body = {"id": "t", "commandLine": "c", "requiredSlots": "2",
            "constraints": {"maxTaskRetryCount": " -1 "}}
    out = schema.validate_owned(body, schema.TASK_CREATE, loose=False)
    assert out["requiredSlots"] == 2 and out["constraints"]["maxTaskRetryCount"] == -1
    with pytest.raises(exc.InvalidConstraintValue):
        schema.validate({"id": "t", "commandLine": "c",
                         "constraints": {"maxTaskRetryCount": "-2"}},
                        schema.TASK_CREATE, loose=False)
    with pytest.raises(exc.InvalidPropertyValue):
        schema.validate({"id": "t", "commandLine": "c", "requiredSlots": "two"},
                        schema.TASK_CREATE, loose=False)
