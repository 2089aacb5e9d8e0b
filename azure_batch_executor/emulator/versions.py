"""The REST api-versions the emulator accepts, and how a response's shape depends on them.

Role: the documented list of api-versions (docs/dev/emulator-rest.md, "API versions"):
each one is what an official client still in use sends. A request with another version
is 400 `UnsupportedRequestVersion` (with `--loose` it is served as the newest). Where the
service's responses differ by version, `shape` removes from an entity's JSON the
properties its version does not have, so every version gets its own shape; the table
`INTRODUCED` says which. Both tables come from the Batch REST specification
(`specification/batch/data-plane/Microsoft.Batch/stable/<version>/BatchService.json` in
Azure/azure-rest-api-specs, and the TypeSpec `specification/batch/Azure.Batch` for
2024-07-01.20.0 and 2025-06-01), read through the models the official SDKs generate
from them (azure-batch 13.0.0 = 2022-10-01.16.0, 14.0.0 = 2023-05-01.17.0, 14.1.0 =
2023-11-01.18.0, 14.2.0 and 15.0.0b1 = 2024-02-01.19.0, 15.0.0b2 = 2024-07-01.20.0,
15.1.0 = 2025-06-01; @azure/batch 10.2.0 = 2022-10-01.16.0).

Imports: the standard library only.
"""

from __future__ import annotations

from typing import Any

LATEST = "2025-06-01"

# api-version -> the official clients still in use that send it (oldest first).
SUPPORTED: dict[str, str] = {
    "2022-10-01.16.0": "@azure/batch 10.x (npm, BatchServiceClient), azure-batch 13.x",
    "2023-05-01.17.0": "azure-batch 14.0.x (BatchServiceClient)",
    "2023-11-01.18.0": "azure-batch 14.1.x (BatchServiceClient)",
    "2024-02-01.19.0": "azure-batch 14.2.x (BatchServiceClient), azure-batch 15.0.0b1 "
                       "(BatchClient; the az CLI's batch commands)",
    "2024-07-01.20.0": "azure-batch 15.0.0b2 (BatchClient)",
    "2025-06-01": "azure-batch 15.1.x (BatchClient)",
}
_ORDER = {version: i for i, version in enumerate(SUPPORTED)}

# (entity, property path) -> the first api-version that has it. Only properties the
# emulator can emit are listed; the rest of its output exists in every supported version.
INTRODUCED: dict[tuple[str, str], str] = {
    ("pool", "upgradePolicy"): "2024-02-01.19.0",
    ("pool", "taskSchedulingPolicy/jobDefaultOrder"): "2025-06-01",
    ("pool", "virtualMachineConfiguration/securityProfile"): "2023-11-01.18.0",
    ("pool", "virtualMachineConfiguration/serviceArtifactReference"): "2023-11-01.18.0",
    ("pool", "networkConfiguration/enableAcceleratedNetworking"): "2023-05-01.17.0",
    ("pool", "startTask/containerSettings/containerHostBatchBindMounts"): "2024-07-01.20.0",
    ("node", "startTask/containerSettings/containerHostBatchBindMounts"): "2024-07-01.20.0",
    ("node", "virtualMachineInfo/imageReference/sharedGalleryImageId"): "2024-07-01.20.0",
    ("node", "virtualMachineInfo/imageReference/communityGalleryImageId"): "2024-07-01.20.0",
    ("task", "containerSettings/containerHostBatchBindMounts"): "2024-07-01.20.0",
    ("pool", "virtualMachineConfiguration/imageReference/sharedGalleryImageId"):
        "2024-07-01.20.0",
    ("pool", "virtualMachineConfiguration/imageReference/communityGalleryImageId"):
        "2024-07-01.20.0",
}


def is_supported(version: str) -> bool:
    return version in SUPPORTED


def served_as(version: str) -> str:
    """The version whose shape a request gets: its own, or the newest for an unknown one
    (accepted only with `--loose`)."""
    return version if version in SUPPORTED else LATEST


def _missing(version: str) -> dict[str, list[list[str]]]:
    rank = _ORDER[version]
    out: dict[str, list[list[str]]] = {}
    for (entity, path), since in INTRODUCED.items():
        if rank < _ORDER[since]:
            out.setdefault(entity, []).append(path.split("/"))
    return out


_MISSING = {version: _missing(version) for version in SUPPORTED}


def older_than(version: str, other: str) -> bool:
    return _ORDER[served_as(version)] < _ORDER[other]


def shape(entity: str, version: str, doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` as the service writes `entity` at `version` (properties it lacks removed).

    Returns `doc` itself when nothing is missing at that version (the newest ones), else a
    copy: entity JSON may be shared with the model.
    """
    paths = _MISSING[served_as(version)].get(entity)
    if not paths or not _any_present(doc, paths):
        return doc
    out = dict(doc)
    for parts in paths:
        _drop(out, parts)
    return out


def _any_present(doc: dict[str, Any], paths: list[list[str]]) -> bool:
    for parts in paths:
        node: Any = doc
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            return True
    return False


def _drop(doc: dict[str, Any], parts: list[str]) -> None:
    """Remove `parts` from `doc`, copying each dict on the way (never mutates shared ones)."""
    head, rest = parts[0], parts[1:]
    if head not in doc:
        return
    if not rest:
        del doc[head]
        return
    child = doc[head]
    if isinstance(child, dict):
        child = dict(child)
        _drop(child, rest)
        doc[head] = child
