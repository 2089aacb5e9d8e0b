"""The last step of serializing an entity: what the service writes that the model does not.

Role: the defaults the service fills into echoed properties, the service's spelling of
echoed enums, and the per-api-version shape (`versions.shape`), applied to the JSON an
entity's `to_json` made, just before it is sent. Each function copies what it changes:
the models' JSON shares nested dicts with their stored specs. Sources, recorded from the
real service (docs/dev/emulator-rest.md, "Recorded conventions"):

- a pool's `startTask` comes back with `userIdentity` `{"autoUser": {"scope": "pool",
  "elevationLevel": "nonadmin"}}`, `maxTaskRetryCount` 0 and `waitForSuccess` true when
  not given (azure-sdk-for-js sdk/batch/batch-rest/recordings/node/pool_operations_test/
  recording_should_get_a_pool_reference_successfully.json: the pool was created with
  `{"commandLine": ...}` only; azure-cli .../batch/tests/latest/recordings/
  test_batch_pools_and_nodes.yaml for a given `userIdentity`);
- `taskSchedulingPolicy` is `{"nodeFillType": "Spread"}` when not given, and the fill
  type comes back capitalised (the same recordings, and every pool GET recorded);
- a given `networkConfiguration` comes back with `dynamicVNetAssignmentScope` "none" and
  `enableAcceleratedNetworking` false (azure-sdk-for-python sdk/batch/azure-batch/tests/
  recordings/test_batch.pyTestBatchtest_batch_network_configuration[sync].json, api
  2023-05-01.17.0; the latter from that version on, `versions.INTRODUCED`); a pool created
  without one has none (azure-cli .../test_batch_pool_upgradePolicy_cmd.yaml, 2024-02-01.19.0);
- a task's `outputFiles[].uploadOptions.uploadCondition` comes back capitalised
  ("TaskCompletion": azure-sdk-for-js .../task_operations_test/
  recording_should_list_all_tasks_successfully.json).

Imports: the standard library and sibling emulator modules (`versions`, `wire`).
"""

from __future__ import annotations

from typing import Any

from .. import versions, wire

_AUTO_USER = {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}


def start_task(spec: dict[str, Any]) -> dict[str, Any]:
    """A pool's (or node's) `startTask` with the service's defaults filled in."""
    if "userIdentity" in spec and "maxTaskRetryCount" in spec and "waitForSuccess" in spec:
        return spec
    out = dict(spec)
    out.setdefault("userIdentity", {"autoUser": dict(_AUTO_USER["autoUser"])})
    out.setdefault("maxTaskRetryCount", 0)
    out.setdefault("waitForSuccess", True)
    return out


def pool(doc: dict[str, Any], version: str) -> dict[str, Any]:
    doc = dict(doc)
    if isinstance(doc.get("startTask"), dict):
        doc["startTask"] = start_task(doc["startTask"])
    policy = doc.get("taskSchedulingPolicy")
    if isinstance(policy, dict) and "nodeFillType" in policy:
        doc["taskSchedulingPolicy"] = {**policy,
                                       "nodeFillType": wire.echoed_enum(policy["nodeFillType"])}
    network = doc.get("networkConfiguration")
    if isinstance(network, dict):
        network = dict(network)
        network.setdefault("dynamicVNetAssignmentScope", "none")
        network.setdefault("enableAcceleratedNetworking", False)
        doc["networkConfiguration"] = network
    return versions.shape("pool", version, doc)


def node(doc: dict[str, Any], version: str) -> dict[str, Any]:
    if isinstance(doc.get("startTask"), dict):
        doc = {**doc, "startTask": start_task(doc["startTask"])}
    return versions.shape("node", version, doc)


def task(doc: dict[str, Any], version: str) -> dict[str, Any]:
    outputs = doc.get("outputFiles")
    if outputs:
        doc = {**doc, "outputFiles": [_output_file(o) for o in outputs]}
    return versions.shape("task", version, doc)


def _output_file(output: Any) -> Any:
    options = output.get("uploadOptions") if isinstance(output, dict) else None
    if not isinstance(options, dict) or "uploadCondition" not in options:
        return output
    condition = wire.echoed_enum(options["uploadCondition"])
    if condition == options["uploadCondition"]:
        return output
    return {**output, "uploadOptions": {**options, "uploadCondition": condition}}
