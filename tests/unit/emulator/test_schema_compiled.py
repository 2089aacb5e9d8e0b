"""The compiled validator against a plain recursive reference: same results, same errors.

`schema.validate` compiles each schema into closures and names a property only when it
raises (`schema.validate_owned` too, returning the body itself when nothing is dropped);
`_ref_validate` below is the straightforward recursive validator they replaced. Every body
here must give the same output, or the same error class, message and values.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from azure_batch_executor.emulator import exceptions as exc
from azure_batch_executor.emulator import schema, validator, wire
from azure_batch_executor.emulator.models import task_ops

# --- the reference: the validator as it was before compilation ------------------------


def _ref_validate(body: Any, spec_map: dict[str, schema.F], *, loose: bool,
                  path: str = "") -> dict:
    if not isinstance(body, dict):
        if not path:
            raise exc.InvalidRequestBody("The request body must be a JSON object.")
        raise validator._invalid(path.rstrip("."), "expected a JSON object")
    out: dict = {}
    for key, value in body.items():
        name = path + key
        if value is None or key.startswith("odata."):
            continue
        spec = spec_map.get(key)
        if spec is None:
            validator._loose_or_raise(name, loose, "is not a known property of this request")
            out[key] = value
            continue
        if spec.unsupported or (spec.unsupported_value is not None
                                and value == spec.unsupported_value):
            shown = f"with value {value!r} " if spec.unsupported_value is not None else ""
            validator._loose_or_raise(name, loose, f"{shown}is not supported")
        out[key] = _ref_check(value, spec, loose=loose, name=name)
    for key, spec in spec_map.items():
        if spec.required and body.get(key) is None:
            raise exc.MissingRequiredProperty(
                f"The property '{path + key}' is required but was not specified.",
                {"PropertyName": path + key},
            )
    return out


def _ref_check(value: Any, spec: schema.F, *, loose: bool, name: str) -> Any:
    kind = spec.kind
    if kind == "any":
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise validator._invalid(name, "expected a string")
        return value
    if kind == "bool":
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            value = value.strip().lower() == "true"  # Boolean.Parse, as the service reads it
        if not isinstance(value, bool):
            raise validator._invalid(name, "expected true or false")
        return value
    if kind == "int":
        if isinstance(value, str):  # Int32.Parse, as the service reads it
            text = value.strip()
            digits = text[1:] if text[:1] in "+-" and text else text
            if digits.isascii() and digits.isdigit() and -2**31 <= int(text) < 2**31:
                value = int(text)
        if isinstance(value, bool) or not isinstance(value, int):
            raise validator._invalid(name, "expected an integer")
        if (spec.lo is not None and value < spec.lo) or (spec.hi is not None and value > spec.hi):
            bounds = f"{spec.lo if spec.lo is not None else '-inf'}.." \
                     f"{spec.hi if spec.hi is not None else 'inf'}"
            raise validator._invalid(name, f"{value} is outside the allowed range {bounds}",
                                  spec.range_error)
        return value
    if kind == "duration":
        seconds = wire.parse_duration(value) if isinstance(value, str) else None
        if seconds is None or seconds < 0:
            raise validator._invalid(name, f"{value!r} is not an ISO 8601 duration")
        return value
    if kind == "enum":
        if not isinstance(value, str) or value.lower() not in spec.values:
            raise validator._invalid(name, f"{value!r} is not one of {', '.join(spec.values)}")
        return value
    if kind == "obj":
        return _ref_validate(value, spec.sub, loose=loose, path=name + ".")
    if kind == "list":
        if not isinstance(value, list):
            raise validator._invalid(name, "expected a JSON array")
        return [_ref_check(v, spec.sub, loose=loose, name=f"{name}[{i}]")
                for i, v in enumerate(value)]
    raise AssertionError(kind)


def _outcome(fn: Any, *args: Any, **kw: Any) -> tuple[str, Any, Any, Any]:
    try:
        return ("ok", fn(*args, **kw), None, None)
    except exc.BatchError as err:
        return (type(err).__name__, err.message, err.code, dict(err.values))


def _same(body: Any, spec_map: dict[str, schema.F], *, loose: bool, path: str = "") -> Any:
    want = _outcome(_ref_validate, copy.deepcopy(body), spec_map, loose=loose, path=path)
    got = _outcome(schema.validate, copy.deepcopy(body), spec_map, loose=loose, path=path)
    assert got == want
    if not path:
        owned = copy.deepcopy(body)
        assert _outcome(schema.validate_owned, owned, spec_map, loose=loose) == want
        if want[0] == "ok" and want[1] == body:  # nothing dropped: the body itself is kept
            assert schema.validate_owned(owned, spec_map, loose=loose) is owned
    return got


# --- bodies --------------------------------------------------------------------------------


def _task(i: int = 0) -> dict[str, Any]:
    url = "https://acct.blob.core.windows.net/c?sv=2024&sig=x"
    return {
        "id": f"t{i}",
        "commandLine": "/bin/sh -c 'python3 -m worker'",
        "resourceFiles": [{"httpUrl": f"{url}&n={i}", "filePath": "in.pkl"},
                          {"httpUrl": url, "filePath": "func.pkl"}],
        "outputFiles": [
            {"filePattern": pattern,
             "destination": {"container": {"containerUrl": url, "path": f"out/{i}/{pattern}"}},
             "uploadOptions": {"uploadCondition": condition}}
            for pattern, condition in (("out.pkl", "taskcompletion"), ("std*.txt", "TaskSuccess"),
                                       ("err.txt", "taskfailure"))
        ],
        "environmentSettings": [{"name": "A", "value": str(i)}],
        "constraints": {"maxTaskRetryCount": 2, "maxWallClockTime": "PT1H"},
    }


def _set(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


VARIANTS: list[tuple[tuple[Any, ...], Any]] = [
    (("id",), 5), (("id",), None), (("commandLine",), ["x"]), (("colour",), "red"),
    (("odata.type",), "x"), (("displayName",), None), (("requiredSlots",), 0),
    (("requiredSlots",), True), (("requiredSlots",), 2.5), (("requiredSlots",), 3),
    (("constraints", "maxTaskRetryCount"), -2), (("constraints", "maxTaskRetryCount"), "1"),
    (("constraints", "maxWallClockTime"), "1h"), (("constraints", "retentionTime"), 7),
    (("constraints", "colour"), 1), (("constraints",), "x"), (("constraints",), []),
    (("resourceFiles",), {"a": 1}), (("resourceFiles", 1), "x"),
    (("resourceFiles", 1, "fileMode"), 755), (("resourceFiles", 1, "identityReference"), {}),
    (("resourceFiles", 0, "colour"), 1),
    (("outputFiles", 2, "destination", "container", "containerUrl"), 5),
    (("outputFiles", 2, "destination", "container", "containerUrl"), None),
    (("outputFiles", 2, "destination", "container", "uploadHeaders"), [{"value": "v"}]),
    (("outputFiles", 2, "destination", "container", "uploadHeaders"), [{"name": 1}]),
    (("outputFiles", 2, "destination", "container", "uploadHeaders"), [{"name": "n"}]),
    (("outputFiles", 1, "destination"), None), (("outputFiles", 1, "destination"), "x"),
    (("outputFiles", 1, "uploadOptions", "uploadCondition"), "TASKFAILURE"),
    (("outputFiles", 1, "uploadOptions", "uploadCondition"), "always"),
    (("outputFiles", 1, "uploadOptions", "uploadCondition"), 1),
    (("outputFiles", 0), None), (("outputFiles", 0), 7),
    (("environmentSettings", 0, "name"), None), (("environmentSettings", 0), {}),
    (("multiInstanceSettings",), {"numberOfInstances": 2}),
    (("applicationPackageReferences",), []),
    (("dependsOn",), {"taskIds": ["a", 2]}), (("dependsOn",), {"taskIds": "a"}),
    (("dependsOn",), {"taskIdRanges": [{"start": 1}]}),
    (("dependsOn",), {"taskIdRanges": [{"start": 1, "end": 3}], "taskIds": ["x"]}),
    (("exitConditions",), {"exitCodes": [{"code": 1, "exitOptions": {"jobAction": "Bad"}}]}),
    (("exitConditions",), {"exitCodes": [{"code": 1}], "default": {"jobAction": "NONE"}}),
    (("exitConditions",), {"exitCodeRanges": [{"start": 1, "end": 2, "exitOptions": 3}]}),
    (("containerSettings",), {"imageName": "python", "workingDirectory": "containerimagedefault",
                              "registry": {"identityReference": {"resourceId": 5}}}),
    (("userIdentity",), {"autoUser": {"scope": "Task", "elevationLevel": "root"}}),
    (("affinityInfo",), {}),
    (("outputFiles", 0, "destination", "container", "path"), None),
    (("resourceFiles", 1, "odata.type"), "#Microsoft.Azure.Batch.Protocol.Entities.ResourceFile"),
    (("constraints", "maxWallClockTime"), None), (("environmentSettings", 0, "value"), None),
    (("dependsOn",), {"taskIdRanges": [{"start": 1, "end": 2, "odata.x": 1}]}),
]


@pytest.mark.parametrize("loose", [False, True])
def test_valid_task_same_output(loose: bool) -> None:
    got = _same(_task(3), schema.TASK_CREATE, loose=loose)
    assert got[0] == "ok" and got[1] == _task(3)


@pytest.mark.parametrize("loose", [False, True])
@pytest.mark.parametrize("where, value", VARIANTS)
def test_task_variants_same_outcome(where: tuple[Any, ...], value: Any, loose: bool) -> None:
    _same(_set(_task(), where, value), schema.TASK_CREATE, loose=loose)


@pytest.mark.parametrize("loose", [False, True])
def test_several_problems_first_one_wins(loose: bool) -> None:
    body = _task()
    body["outputFiles"][2]["destination"]["container"]["containerUrl"] = 5
    body["outputFiles"][1]["uploadOptions"]["uploadCondition"] = "never"
    del body["id"]
    body["zzz"] = 1
    assert _same(body, schema.TASK_CREATE, loose=loose)[0] == "InvalidPropertyValue"


def test_nested_list_item_name() -> None:
    body = _set(_task(), ("outputFiles", 2, "destination", "container", "containerUrl"), 5)
    with pytest.raises(exc.InvalidPropertyValue) as info:
        schema.validate(body, schema.TASK_CREATE, loose=False)
    assert info.value.values == {
        "PropertyName": "outputFiles[2].destination.container.containerUrl",
        "Reason": "expected a string"}
    body = _set(_task(), ("outputFiles", 1, "destination", "container"), {"path": "p"})
    with pytest.raises(exc.MissingRequiredProperty) as missing:
        schema.validate(body, schema.TASK_CREATE, loose=False)
    assert missing.value.values == {"PropertyName": "outputFiles[1].destination.container."
                                                    "containerUrl"}


@pytest.mark.parametrize("spec_map, body", [
    (schema.JOB_CREATE, {"id": "j", "poolInfo": {"poolId": "p"}, "priority": 1001}),
    (schema.JOB_CREATE, {"id": "j", "poolInfo": {"poolId": "p"}, "priority": -1000,
                         "onAllTasksComplete": "TerminateJob", "metadata": [{"name": "a"}]}),
    (schema.JOB_CREATE, {"id": "j", "poolInfo": {"autoPoolSpecification": {}}}),
    (schema.JOB_CREATE, {"id": "j", "poolInfo": None}),
    (schema.JOB_CREATE, {"id": "j", "poolInfo": {}, "jobManagerTask": {}}),
    (schema.JOB_UPDATE, {"poolInfo": {"poolId": 1}}),
    (schema.JOB_DISABLE, {"disableTasks": "Requeue"}),
    (schema.JOB_DISABLE, {}),
    (schema.POOL_CREATE, {"id": "p", "vmSize": "x", "enableAutoScale": True}),
    (schema.POOL_CREATE, {"id": "p", "vmSize": "x", "enableAutoScale": 1}),
    (schema.POOL_CREATE, {"id": "p", "vmSize": "x", "enableAutoScale": False}),
    (schema.POOL_CREATE, {"id": "p", "vmSize": "x", "autoScaleFormula": "$x=1"}),
    (schema.POOL_CREATE, {"id": "p", "vmSize": "x", "targetDedicatedNodes": -1}),
    (schema.POOL_CREATE, {"id": "p", "vmSize": "x", "taskSchedulingPolicy": {}}),
    (schema.POOL_CREATE, {"id": "p", "vmSize": "x", "startTask": {"commandLine": "c",
                                                                 "maxTaskRetryCount": -5}}),
    (schema.POOL_CREATE, {"id": "p", "vmSize": "x", "virtualMachineConfiguration": {
        "nodeAgentSKUId": "n", "imageReference": {"publisher": 1}}}),
    (schema.POOL_RESIZE, {"nodeDeallocationOption": "RetainedData", "resizeTimeout": "PT5M"}),
    (schema.POOL_RESIZE, {"resizeTimeout": "-PT5M"}),
    (schema.TASK_COLLECTION, {"value": [1, "x", None]}),
    (schema.TASK_COLLECTION, {"value": "x"}),
    (schema.TASK_COLLECTION, {}),
    ({}, {"a": 1}),
    ({}, {}),
])
@pytest.mark.parametrize("loose", [False, True])
def test_other_schemas_same_outcome(spec_map: dict[str, schema.F], body: dict, loose: bool
                                    ) -> None:
    _same(body, spec_map, loose=loose)


@pytest.mark.parametrize("body", [[1], "x", 3, None])
@pytest.mark.parametrize("path", ["", "x.", "a.b"])
def test_non_objects_and_path_prefixes(body: Any, path: str) -> None:
    _same(body, schema.TASK_CREATE, loose=False, path=path)
    _same({"id": 1, "poolInfo": {"poolId": 2}}, schema.JOB_CREATE, loose=False, path=path)


def test_check_names_like_before() -> None:
    for spec, value, name in [
        (schema.TASK_CONSTRAINTS, {"maxTaskRetryCount": -3}, "c"),
        (schema.TASK_CONSTRAINTS, 5, "c"),
        (schema.lst(schema.OUTPUT_FILE), [{"filePattern": 1}], "outs"),
        (schema.PRIORITY, 2000, "p"),
        (schema.ENV, [{"name": "a", "value": None}], ""),
    ]:
        want = _outcome(_ref_check, value, spec, loose=False, name=name)
        assert _outcome(schema.check, value, spec, loose=False, name=name) == want


def test_resource_file_rules_unchanged() -> None:
    cases = [
        [{"httpUrl": "u", "filePath": "a"}],
        [{"httpUrl": "u"}],
        [{"httpUrl": "u", "storageContainerUrl": "s", "filePath": "a"}],
        [{"filePath": "a"}],
        [{"httpUrl": "u", "filePath": "a", "blobPrefix": "b"}],
        [{"storageContainerUrl": "s", "blobPrefix": "b"}],
        [{"httpUrl": "u", "filePath": "../x"}],
        [{"httpUrl": "u", "filePath": "a/../../x"}],
        [{"httpUrl": "u", "filePath": "/abs"}],
        [{"httpUrl": "u", "filePath": "\\abs"}],
        [{"httpUrl": "u", "filePath": "a\\..\\..\\x"}],
        [{"httpUrl": "u", "filePath": "a..b"}],
        [{"httpUrl": "u", "filePath": "a", "fileMode": "0755"}],
        [{"httpUrl": "u", "filePath": "a", "fileMode": "0789"}],
        [{"httpUrl": "u", "filePath": "a", "fileMode": ""}],
        [{"httpUrl": "u", "filePath": "a"}, {"autoStorageContainerName": "c", "fileMode": "x"}],
    ]
    expected = [
        None,
        ("MissingRequiredProperty", "resourceFiles[0].filePath"),
        ("InvalidPropertyValue", "resourceFiles[0]"),
        ("InvalidPropertyValue", "resourceFiles[0]"),
        ("InvalidPropertyValue", "resourceFiles[0].blobPrefix"),
        None,
        ("InvalidPropertyValue", "resourceFiles[0].filePath"),
        ("InvalidPropertyValue", "resourceFiles[0].filePath"),
        ("InvalidPropertyValue", "resourceFiles[0].filePath"),
        ("InvalidPropertyValue", "resourceFiles[0].filePath"),
        ("InvalidPropertyValue", "resourceFiles[0].filePath"),
        None,
        None,
        ("InvalidPropertyValue", "resourceFiles[0].fileMode"),
        ("InvalidPropertyValue", "resourceFiles[0].fileMode"),
        ("InvalidPropertyValue", "resourceFiles[1].fileMode"),
    ]
    for files, want in zip(cases, expected, strict=True):
        try:
            task_ops.check_resource_files(files)
            got = None
        except exc.BatchError as err:
            got = (type(err).__name__, err.values["PropertyName"])
        assert got == want, files


def _ref_iso(ts: float) -> str:
    """.NET's FFFFFFF: the fraction without trailing zeros, none on a whole second."""
    d = datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)
    fraction = f".{d.microsecond:06d}".rstrip("0") if d.microsecond else ""
    return d.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def test_iso_matches_strftime_including_rounding_into_the_next_second() -> None:
    stamps = [0, 0.5, 1.9999996, 1.9999994, 1.0000005, 1_700_000_000.25, 1_700_000_000.9999999]
    stamps += [1_790_000_000 + i * 0.0123457 for i in range(500)]
    for ts in stamps + stamps[::-1]:
        assert wire.iso(ts) == _ref_iso(ts), ts
