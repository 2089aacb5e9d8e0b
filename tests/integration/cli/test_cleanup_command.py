"""`cleanup` against a local stack: what expired goes; with --older-than, what is old and
no longer live; live jobs, their blobs and their pool stay; `--output json` parsed.

Each executor's job has its own container; the shared container holds, besides the
markers executors write: the prefix and expiry marker of a client that died long ago
(before containers per job), a marker whose blobs are already gone, a shared node
environment and a blob outside anything this package names.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_kit import eventually, executor, job_state, kept_job, run, run_json
from support.gates import Gate, wait_gate

from azure_batch_executor.local import LocalStack

CONTAINER = "azure-batch-executor"
DEAD = "abx-20200101-000000-deadbeef"  # a client that died in 2020: its blobs expired
ORPHAN = "abx-20200101-000000-0badf00d"  # only its expired marker is left
PAST = "_expires/20200108T000000Z/"


@pytest.fixture(scope="module")
def container(stack: LocalStack) -> Iterator[Any]:
    from azure.storage.blob import ContainerClient

    client = ContainerClient.from_connection_string(stack.storage_connection_string,
                                                    CONTAINER)
    yield client
    client.close()


def _names(container: Any) -> set[str]:
    return set(container.list_blob_names())


def _exists(container: Any, job_id: str) -> bool:
    """Whether job `job_id`'s own container exists."""
    return bool(container._get_blob_service_client().get_container_client(job_id).exists())


def _items(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(item["kind"], item["name"]) for item in report["items"]}


def test_cleanup(stack: LocalStack, container: Any, tmp_path: Path,
                 capsys: pytest.CaptureFixture[str]) -> None:
    expired = kept_job(stack)  # kept, and its blobs' deadline is made past below
    kept = kept_job(stack)  # kept, its blobs expire in 7 days
    for name in container.list_blob_names(name_starts_with="_expires/"):
        if name.endswith("/" + expired):
            container.delete_blob(name)
    for name in (f"{PAST}{expired}", f"{DEAD}/iter_0_stdout.txt", f"{PAST}{DEAD}",
                 f"{PAST}{ORPHAN}", "_environments/e1/requirements.txt", "notes/other.txt"):
        container.upload_blob(name, b"x", overwrite=True)

    # Only what expired, dry: listed, nothing deleted.
    before = _names(container)
    report = run_json(capsys, "cleanup", "--dry-run")
    assert report["dry_run"] is True and report["older_than"] is None
    assert _items(report) == {("job", expired), ("container", expired),
                              ("blobs", f"{DEAD}/"), ("marker", f"{PAST}{ORPHAN}")}
    assert {item["status"] for item in report["items"]} == {"planned"}
    assert _names(container) == before

    code, out, err = run(capsys, "cleanup")
    assert code == 0, err
    assert out.splitlines()[0].split() == ["KIND", "NAME", "REASON", "RESULT"]
    assert all(line.endswith("deleted") for line in out.splitlines()[1:]), out
    left = _names(container)
    assert not any(n.startswith(f"{DEAD}/") or n.endswith((expired, DEAD, ORPHAN))
                   for n in left), left
    assert not _exists(container, expired) and _exists(container, kept)
    assert {"_environments/e1/requirements.txt", "notes/other.txt"} <= left
    assert job_state(stack, expired, until="gone") == "gone"

    gate = Gate(tmp_path)
    with executor(stack) as ex:
        try:
            live = ex.submit(wait_gate, gate.path, "released")
            assert eventually(live.running)  # added as a task: its job is not idle
            assert run_json(capsys, "cleanup", "--older-than", "1d", "--dry-run")["items"] == []
            report = run_json(capsys, "cleanup", "--older-than", "0s", "--environments")
            assert _items(report) == {("job", kept), ("container", kept),
                                      ("environment", "_environments/e1/")}, report
            assert {item["status"] for item in report["items"]} == {"deleted"}
            assert _exists(container, ex.job_id) and not _exists(container, kept)
            assert job_state(stack, ex.job_id) == "active"
        finally:
            gate.open()
        assert live.result(timeout=60) == "released"
    assert "notes/other.txt" in _names(container)

    # The live job ended (deleted at shutdown): its blobs and the pool are left over.
    job_state(stack, ex.job_id, until="gone")
    report = run_json(capsys, "cleanup", "--older-than", "0s")
    assert _items(report) == {("container", ex.job_id), ("pool", "azure-batch-executor")}
    pools = run_json(capsys, "pools")
    assert all(p["state"] == "deleting" for p in pools), pools
