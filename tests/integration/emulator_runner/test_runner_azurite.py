"""TaskRunner resource and output files against a real Azurite, through SAS URLs."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from runner_azurite_kit import Azurite

from azure_batch_executor.emulator.runner import RunOutcome

Run = Callable[..., RunOutcome]


def _out(container_url: str, pattern: str, path: str | None, condition: str, **extra: object):
    container: dict = {"containerUrl": container_url, **extra}
    if path is not None:
        container["path"] = path
    return {
        "filePattern": pattern,
        "destination": {"container": container},
        "uploadOptions": {"uploadCondition": condition},
    }


def test_http_url_with_blob_sas(run: Run, azurite: Azurite, tmp_path: Path) -> None:
    container = azurite.new_container()
    azurite.upload(container, "jobs/j1/config.pickle", b"config-bytes")
    url = azurite.blob_url(container, "jobs/j1/config.pickle")
    entry = {"httpUrl": url, "filePath": "config.pickle"}
    outcome = run("cat config.pickle", resource_files=[entry])
    assert (outcome.reason, outcome.exit_code, outcome.failure) == ("exited", 0, None)
    assert (tmp_path / "task" / "stdout.txt").read_bytes() == b"config-bytes"
    assert stat.S_IMODE((tmp_path / "task" / "wd" / "config.pickle").stat().st_mode) == 0o770


def test_container_url_with_prefix_keeps_folders(
    run: Run, azurite: Azurite, tmp_path: Path
) -> None:
    container = azurite.new_container()
    azurite.upload(container, "job1/a.txt", b"A")
    azurite.upload(container, "job1/deep/b c.txt", b"B")
    azurite.upload(container, "job10/not-me.txt", b"X")  # shares the partial prefix "job1"
    azurite.upload(container, "other/c.txt", b"C")
    entry = {
        "storageContainerUrl": azurite.container_url(container, read=True, list=True),
        "blobPrefix": "job1/",
        "filePath": "in",
        "fileMode": "0640",
    }
    outcome = run("/bin/true", resource_files=[entry])
    assert (outcome.reason, outcome.exit_code, outcome.failure) == ("exited", 0, None)
    wd = tmp_path / "task" / "wd"
    files = sorted(p.relative_to(wd).as_posix() for p in wd.rglob("*") if p.is_file())
    assert files == ["in/job1/a.txt", "in/job1/deep/b c.txt"]
    assert (wd / "in" / "job1" / "deep" / "b c.txt").read_bytes() == b"B"
    assert stat.S_IMODE((wd / "in" / "job1" / "a.txt").stat().st_mode) == 0o640


def test_partial_prefix_and_no_file_path(run: Run, azurite: Azurite, tmp_path: Path) -> None:
    container = azurite.new_container()
    azurite.upload(container, "job1/a.txt", b"A")
    azurite.upload(container, "job10/b.txt", b"B")
    entry = {
        "storageContainerUrl": azurite.container_url(container, read=True, list=True),
        "blobPrefix": "job1",
    }
    outcome = run("/bin/true", resource_files=[entry])
    assert outcome.reason == "exited", outcome.failure
    wd = tmp_path / "task" / "wd"
    assert (wd / "job1" / "a.txt").read_bytes() == b"A"
    assert (wd / "job10" / "b.txt").read_bytes() == b"B"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            "/bin/true",
            ["logs/completion-stdout.txt", "logs/success-stdout.txt", "res/a.csv", "res/n/b.csv"],
        ),
        ("false", ["logs/completion-stdout.txt", "logs/failure-stdout.txt"]),
    ],
)
def test_outputs_per_upload_condition(
    run: Run, azurite: Azurite, command: str, expected: list[str]
) -> None:
    container = azurite.new_container()
    url = azurite.container_url(container, create=True, write=True)
    script = (
        "mkdir -p out/n; echo 1 > out/a.csv; echo 2 > out/n/b.csv; echo x > out/.skip.csv; "
        + command
    )
    outputs = [
        _out(url, "../stdout.txt", "logs/success-stdout.txt", "tasksuccess"),
        _out(url, "../stdout.txt", "logs/failure-stdout.txt", "taskfailure"),
        _out(url, "../stdout.txt", "logs/completion-stdout.txt", "taskcompletion"),
        _out(
            url,
            "out/**/*.csv",
            "res",
            "TaskSuccess",
            uploadHeaders=[{"name": "x-ms-blob-content-type", "value": "text/csv"}],
        ),
    ]
    outcome = run(f"sh -c '{script}'", output_files=outputs)
    assert outcome.reason == "exited", outcome.failure
    assert azurite.blob_names(container) == expected
    if "res/n/b.csv" in expected:
        assert azurite.read(container, "res/n/b.csv") == b"2\n"
        props = azurite.service.get_blob_client(container, "res/a.csv").get_blob_properties()
        assert props.content_settings.content_type == "text/csv"


def test_download_404_is_blob_not_found_and_nothing_runs(
    run: Run, azurite: Azurite, tmp_path: Path
) -> None:
    container = azurite.new_container()
    marker = tmp_path / "ran"
    entry = {"httpUrl": azurite.blob_url(container, "missing.bin"), "filePath": "m"}
    outcome = run(f"touch {marker}", resource_files=[entry])
    assert (outcome.reason, outcome.exit_code) == ("preprocessing", None)
    assert outcome.failure is not None
    assert (outcome.failure.category, outcome.failure.code) == ("usererror", "BlobNotFound")
    assert not marker.exists()


def test_listing_without_list_permission_is_access_denied(run: Run, azurite: Azurite) -> None:
    container = azurite.new_container()
    azurite.upload(container, "a.txt", b"A")
    entry = {"storageContainerUrl": azurite.container_url(container, read=True)}
    outcome = run("/bin/true", resource_files=[entry])
    assert outcome.failure is not None
    assert outcome.failure.code == "ResourceContainerAccessDenied"


def test_missing_container_listing(run: Run, azurite: Azurite) -> None:
    url = azurite.container_url("no-such-container", read=True, list=True)
    outcome = run("/bin/true", resource_files=[{"storageContainerUrl": url}])
    assert outcome.failure is not None
    assert outcome.failure.code == "ResourceContainerNotFound"


def test_upload_to_missing_container(run: Run, azurite: Azurite) -> None:
    url = azurite.container_url("no-such-container", create=True, write=True)
    outcome = run("/bin/true", output_files=[_out(url, "../stdout.txt", None, "taskcompletion")])
    assert (outcome.reason, outcome.exit_code) == ("upload", 0)
    assert outcome.failure is not None
    assert (outcome.failure.category, outcome.failure.code) == (
        "usererror",
        "FileUploadContainerNotFound",
    )


def test_upload_with_read_only_sas_is_access_denied(run: Run, azurite: Azurite) -> None:
    container = azurite.new_container()
    url = azurite.container_url(container, read=True, list=True)
    outcome = run("false", output_files=[_out(url, "../stderr.txt", "e.txt", "taskfailure")])
    assert (outcome.reason, outcome.exit_code) == ("upload", 1)
    assert outcome.failure is not None
    assert outcome.failure.code == "FileUploadAccessDenied"
    assert azurite.blob_names(container) == []
