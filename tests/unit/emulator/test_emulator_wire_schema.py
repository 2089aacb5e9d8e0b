"""Wire formats (durations, times, ETags) and the strict request-body validator."""

from __future__ import annotations

import datetime
import json

import azure.batch.models as m
import pytest
from azure.batch._utils.model_base import SdkJSONEncoder

from azure_batch_executor.emulator import exceptions as exc
from azure_batch_executor.emulator import schema, wire


@pytest.mark.parametrize("text, seconds, canonical", [
    ("PT15M00S", 900, "PT15M"), ("PT01H00M00S", 3600, "PT1H"), ("P1D", 86400, "P1D"),
    ("PT0.5S", 0.5, "PT0.5S"), ("PT02.5S", 2.5, "PT2.5S"), ("P1DT01H00M00S", 90000, "P1DT1H"),
    ("P7D", 604800, "P7D"),
])
def test_durations(text: str, seconds: float, canonical: str) -> None:
    assert wire.parse_duration(text) == seconds
    assert wire.format_duration(seconds) == canonical


def test_unbounded_and_invalid_durations() -> None:
    big = wire.parse_duration("P10675199DT02H48M05.477539S")
    assert wire.format_duration(big) == wire.UNBOUNDED
    for bad in ("", "P", "PT", "15 minutes", "P1DT"):
        assert wire.parse_duration(bad) is None


def test_times_and_etags() -> None:
    assert wire.iso(0) == "1970-01-01T00:00:00Z"
    assert wire.iso(0.25) == "1970-01-01T00:00:00.25Z"
    assert wire.iso7(0.25) == "1970-01-01T00:00:00.2500000Z"  # error messages' Time: line
    assert wire.rfc1123(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert wire.parse_rfc1123("Thu, 01 Jan 1970 00:00:10 GMT") == 10
    first, second = wire.new_etag(), wire.new_etag()
    assert first != second and first.startswith("0x8D") and len(first) == 17
    assert wire.strip_etag(f'"{first}"') == first


def _sdk_json(model: object) -> dict:
    return json.loads(json.dumps(model, cls=SdkJSONEncoder, exclude_readonly=True))


def test_everything_the_sdk_sends_for_typical_models_is_accepted() -> None:
    pool = m.BatchPoolCreateOptions(
        id="p1", vm_size="standard_d2s_v3",
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.BatchVmImageReference(publisher="canonical", offer="ubuntu",
                                                    sku="22_04-lts", version="latest"),
            node_agent_sku_id="batch.node.ubuntu 22.04",
            container_configuration=m.BatchContainerConfiguration(
                type="dockerCompatible", container_image_names=["python:3.11"])),
        target_dedicated_nodes=1, target_low_priority_nodes=0, task_slots_per_node=2,
        task_scheduling_policy=m.BatchTaskSchedulingPolicy(node_fill_type="pack"),
        resize_timeout=datetime.timedelta(minutes=15),
        start_task=m.BatchStartTask(command_line="/bin/true", wait_for_success=True,
                                    max_task_retry_count=1),
        metadata=[m.BatchMetadataItem(name="a", value="b")])
    schema.validate(_sdk_json(pool), schema.POOL_CREATE, loose=False)
    task = m.BatchTaskCreateOptions(
        id="t1", command_line="python3 -c 'print(1)'",
        resource_files=[m.ResourceFile(http_url="http://x/y?sas", file_path="in.pickle",
                                       file_mode="0644"),
                        m.ResourceFile(storage_container_url="http://x/c?sas", blob_prefix="a/")],
        output_files=[m.OutputFile(
            file_pattern="outputs.pickle",
            destination=m.OutputFileDestination(container=m.OutputFileBlobContainerDestination(
                container_url="http://x/c?sas", path="j/out.pickle",
                upload_headers=[m.OutputFileUploadHeader(name="x-ms-blob-content-type",
                                                         value="application/octet-stream")])),
            upload_options=m.OutputFileUploadConfiguration(upload_condition="taskCompletion"))],
        constraints=m.BatchTaskConstraints(max_wall_clock_time=datetime.timedelta(seconds=2.5),
                                           retention_time=datetime.timedelta(days=1),
                                           max_task_retry_count=2),
        environment_settings=[m.EnvironmentSetting(name="A", value="1")],
        exit_conditions=m.ExitConditions(
            exit_codes=[m.ExitCodeMapping(code=3, exit_options=m.ExitOptions(job_action="none"))],
            default=m.ExitOptions(dependency_action="satisfy")),
        container_settings=m.BatchTaskContainerSettings(image_name="python:3.11",
                                                        working_directory="taskWorkingDirectory"),
        user_identity=m.UserIdentity(auto_user=m.AutoUserSpecification(
            scope="task", elevation_level="nonadmin")),
        required_slots=1, depends_on=m.BatchTaskDependencies(
            task_ids=["a"], task_id_ranges=[m.BatchTaskIdRange(start=1, end=3)]))
    schema.validate(_sdk_json(task), schema.TASK_CREATE, loose=False)
    job = m.BatchJobCreateOptions(
        id="j1", pool_info=m.BatchPoolInfo(pool_id="p1"), priority=5, max_parallel_tasks=3,
        constraints=m.BatchJobConstraints(max_wall_clock_time=datetime.timedelta(hours=1),
                                          max_task_retry_count=1),
        all_tasks_complete_mode="noaction", task_failure_mode="performexitoptionsjobaction",
        uses_task_dependencies=True, allow_task_preemption=False,
        common_environment_settings=[m.EnvironmentSetting(name="X")])
    schema.validate(_sdk_json(job), schema.JOB_CREATE, loose=False)
    schema.validate(_sdk_json(m.BatchPoolResizeOptions(
        target_dedicated_nodes=2, node_deallocation_option="requeue",
        resize_timeout=datetime.timedelta(minutes=5))), schema.POOL_RESIZE, loose=False)


def test_unknown_and_not_emulated_properties_name_loose() -> None:
    with pytest.raises(exc.InvalidPropertyValue, match="--loose") as info:
        schema.validate({"id": "t", "commandLine": "x", "colour": 1}, schema.TASK_CREATE,
                        loose=False)
    assert info.value.values["PropertyName"] == "colour"
    with pytest.raises(exc.InvalidPropertyValue, match=r"jobManagerTask.*--loose"):
        schema.validate({"id": "j", "poolInfo": {}, "jobManagerTask": {}}, schema.JOB_CREATE,
                        loose=False)
    with pytest.raises(exc.InvalidPropertyValue, match="mountConfiguration"):
        schema.validate({"id": "p", "vmSize": "x", "mountConfiguration": []},
                        schema.POOL_CREATE, loose=False)
    kept = schema.validate({"id": "t", "commandLine": "x", "colour": 1}, schema.TASK_CREATE,
                           loose=True)
    assert kept["colour"] == 1


@pytest.mark.parametrize("body, error, name", [
    ({"commandLine": "x"}, exc.MissingRequiredProperty, "id"),
    ({"id": "t", "commandLine": 5}, exc.InvalidPropertyValue, "commandLine"),
    ({"id": "t", "commandLine": "x", "requiredSlots": 0}, exc.InvalidPropertyValue,
     "requiredSlots"),
    ({"id": "t", "commandLine": "x", "requiredSlots": True}, exc.InvalidPropertyValue,
     "requiredSlots"),
    ({"id": "t", "commandLine": "x", "constraints": {"maxTaskRetryCount": -2}},
     exc.InvalidConstraintValue, "constraints.maxTaskRetryCount"),
    ({"id": "t", "commandLine": "x", "constraints": {"maxWallClockTime": "1h"}},
     exc.InvalidPropertyValue, "constraints.maxWallClockTime"),
    ({"id": "t", "commandLine": "x", "outputFiles": [{"filePattern": "a"}]},
     exc.MissingRequiredProperty, "outputFiles[0].destination"),
    ({"id": "t", "commandLine": "x", "environmentSettings": {"A": "1"}},
     exc.InvalidPropertyValue, "environmentSettings"),
])
def test_bad_task_bodies(body: dict, error: type, name: str) -> None:
    with pytest.raises(error) as info:
        schema.validate(body, schema.TASK_CREATE, loose=False)
    assert info.value.values["PropertyName"] == name


def test_priority_range_and_enums_case_insensitive() -> None:
    with pytest.raises(exc.InvalidPropertyValue):
        schema.validate({"id": "j", "poolInfo": {}, "priority": 1001}, schema.JOB_CREATE,
                        loose=False)
    body = schema.validate({"id": "j", "poolInfo": {}, "onAllTasksComplete": "TerminateJob"},
                           schema.JOB_CREATE, loose=False)
    assert body["onAllTasksComplete"] == "TerminateJob"  # echoed verbatim


def test_non_object_body() -> None:
    with pytest.raises(exc.InvalidRequestBody):
        schema.validate([1, 2], schema.TASK_CREATE, loose=False)
