"""Resource files and output files through a fake blob endpoint: URLs, naming, error codes."""

from __future__ import annotations

import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from runner_testkit import FakeBlobServer, Reply, Waiter

from azure_batch_executor.emulator.runner import RunOutcome, RunSpec, TaskRunner

Run = Callable[..., RunOutcome]
MakeSpec = Callable[..., RunSpec]
SAS = "sv=2021-08-06&sr=c&sp=rl&sig=a%2Bb%3D"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- resource files ----------------------------------------------------------------------


def test_http_url_download_keeps_the_sas_and_sets_modes(
    run: Run, blob_server: FakeBlobServer, tmp_path: Path
) -> None:
    blob_server.routes[("GET", "/c/a.bin")] = Reply(200, b"alpha")
    blob_server.routes[("GET", "/c/b.sh")] = Reply(200, b"beta")
    outcome = run(
        "cat in/deep/a.bin",
        resource_files=[
            {"httpUrl": f"{blob_server.url}/c/a.bin?{SAS}", "filePath": "in/deep/a.bin"},
            {"httpUrl": f"{blob_server.url}/c/b.sh", "filePath": "b.sh", "fileMode": "0644"},
        ],
    )
    assert (outcome.reason, outcome.exit_code) == ("exited", 0)
    wd = tmp_path / "task" / "wd"
    assert (tmp_path / "task" / "stdout.txt").read_bytes() == b"alpha"
    assert _mode(wd / "in" / "deep" / "a.bin") == 0o770
    assert _mode(wd / "b.sh") == 0o644
    assert [r.path for r in blob_server.requests] == [f"/c/a.bin?{SAS}", "/c/b.sh"]


@pytest.mark.parametrize(
    ("status", "category", "code"),
    [
        (404, "usererror", "BlobNotFound"),
        (403, "usererror", "BlobAccessDenied"),
        (500, "servererror", "BlobDownloadMiscError"),
        (400, "servererror", "BlobDownloadMiscError"),
    ],
)
def test_download_errors(
    run: Run, blob_server: FakeBlobServer, tmp_path: Path, status: int, category: str, code: str
) -> None:
    blob_server.routes[("GET", "/c/x")] = Reply(status, b"<Error/>")
    marker = tmp_path / "ran"
    outcome = run(
        f"touch {marker}",
        resource_files=[{"httpUrl": f"{blob_server.url}/c/x?{SAS}", "filePath": "x"}],
    )
    assert (outcome.reason, outcome.exit_code) == ("preprocessing", None)
    assert outcome.failure is not None
    assert (outcome.failure.category, outcome.failure.code) == (category, code)
    assert "a%2Bb%3D" not in outcome.failure.message  # the signature is redacted
    assert not marker.exists()
    assert not (tmp_path / "task" / "wd" / "x").exists()


def test_connection_refused_is_misc_error(run: Run) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/c/x"
    outcome = run("/bin/true", resource_files=[{"httpUrl": url, "filePath": "x"}])
    assert outcome.failure is not None
    assert (outcome.failure.category, outcome.failure.code) == (
        "servererror",
        "BlobDownloadMiscError",
    )


def test_stalled_download_times_out(
    make_spec: MakeSpec, blob_server: FakeBlobServer, tmp_path: Path
) -> None:
    release = threading.Event()
    blob_server.routes[("GET", "/c/slow")] = Reply(
        200, b"part", before_body=lambda: release.wait(10), tail=b"rest"
    )
    runner = TaskRunner(http_timeout=0.3)
    waiter = Waiter()
    try:
        spec = make_spec(
            "/bin/true", resource_files=[{"httpUrl": f"{blob_server.url}/c/slow", "filePath": "s"}]
        )
        runner.start(spec, waiter)
        outcome = waiter.wait()
    finally:
        release.set()
        runner.stop()
    assert outcome.failure is not None
    assert (outcome.failure.category, outcome.failure.code) == (
        "servererror",
        "BlobDownloadTimedOut",
    )


@pytest.mark.parametrize(("reason", "code"), [("terminated", "TaskEnded"), ("requeued", None)])
def test_terminate_during_download(
    runner: TaskRunner,
    make_spec: MakeSpec,
    blob_server: FakeBlobServer,
    tmp_path: Path,
    reason: str,
    code: str | None,
) -> None:
    arrived, release = threading.Event(), threading.Event()

    def hold() -> None:
        arrived.set()
        release.wait(10)

    blob_server.routes[("GET", "/c/big")] = Reply(200, b"x" * 10, before_body=hold, tail=b"y")
    marker = tmp_path / "ran"
    waiter = Waiter()
    spec = make_spec(
        f"touch {marker}",
        resource_files=[{"httpUrl": f"{blob_server.url}/c/big", "filePath": "big"}],
    )
    runner.start(spec, waiter)
    assert arrived.wait(10)
    runner.terminate("run-1", reason)  # type: ignore[arg-type]
    release.set()
    outcome = waiter.wait()
    assert (outcome.reason, outcome.exit_code) == (reason, None)
    assert (outcome.failure.code if outcome.failure else None) == code
    assert not marker.exists()


def _listing(names: list[str], next_marker: str = "") -> bytes:
    blobs = "".join(f"<Blob><Name>{n}</Name><Properties/></Blob>" for n in names)
    return (
        '<?xml version="1.0" encoding="utf-8"?><EnumerationResults>'
        f"<Blobs>{blobs}</Blobs><NextMarker>{next_marker}</NextMarker></EnumerationResults>"
    ).encode()


def test_container_listing_pages_and_keeps_folders(
    run: Run, blob_server: FakeBlobServer, tmp_path: Path
) -> None:
    base = "/acct/inputs"
    first = f"{base}?restype=container&comp=list&prefix=data%2F&{SAS}"
    second = f"{base}?restype=container&comp=list&prefix=data%2F&marker=page%202&{SAS}"
    blob_server.routes[("GET", first)] = Reply(200, _listing(["data/a.txt"], "page 2"))
    blob_server.routes[("GET", second)] = Reply(200, _listing(["data/sub/b c.txt", "data/dir/"]))
    blob_server.routes[("GET", f"{base}/data/a.txt?{SAS}")] = Reply(200, b"A")
    blob_server.routes[("GET", f"{base}/data/sub/b%20c.txt?{SAS}")] = Reply(200, b"B")
    outcome = run(
        "/bin/true",
        resource_files=[
            {
                "storageContainerUrl": f"{blob_server.url}{base}?{SAS}",
                "blobPrefix": "data/",
                "filePath": "inputs",
                "fileMode": "0600",
            }
        ],
    )
    assert (outcome.reason, outcome.exit_code) == ("exited", 0), outcome.failure
    wd = tmp_path / "task" / "wd"
    assert (wd / "inputs" / "data" / "a.txt").read_text() == "A"
    assert (wd / "inputs" / "data" / "sub" / "b c.txt").read_text() == "B"
    assert _mode(wd / "inputs" / "data" / "a.txt") == 0o600
    assert [r.path for r in blob_server.requests][:2] == [first, second]


@pytest.mark.parametrize(
    ("status", "category", "code"),
    [
        (404, "usererror", "ResourceContainerNotFound"),
        (403, "usererror", "ResourceContainerAccessDenied"),
        (503, "servererror", "ResourceContainerListMiscError"),
    ],
)
def test_listing_errors(
    run: Run, blob_server: FakeBlobServer, status: int, category: str, code: str
) -> None:
    blob_server.routes[("GET", "/acct/gone")] = Reply(status)
    outcome = run(
        "/bin/true", resource_files=[{"storageContainerUrl": f"{blob_server.url}/acct/gone?{SAS}"}]
    )
    assert (outcome.reason, outcome.exit_code) == ("preprocessing", None)
    assert outcome.failure is not None
    assert (outcome.failure.category, outcome.failure.code) == (category, code)


def test_blob_names_escaping_wd_are_refused(run: Run, blob_server: FakeBlobServer) -> None:
    blob_server.routes[("GET", "/acct/c")] = Reply(200, _listing(["../../evil.txt"]))
    entry = {"storageContainerUrl": f"{blob_server.url}/acct/c"}
    outcome = run("/bin/true", resource_files=[entry])
    assert outcome.failure is not None
    assert outcome.failure.code == "ResourceFileCreateFailed"


def test_auto_storage_resolver(
    make_spec: MakeSpec, blob_server: FakeBlobServer, tmp_path: Path
) -> None:
    blob_server.routes[("GET", "/acct/auto")] = Reply(200, _listing(["f.txt"]))
    blob_server.routes[("GET", "/acct/auto/f.txt")] = Reply(200, b"F")
    runner = TaskRunner(auto_storage_container_url=lambda name: f"{blob_server.url}/acct/{name}")
    waiter = Waiter()
    try:
        runner.start(
            make_spec("/bin/true", resource_files=[{"autoStorageContainerName": "auto"}]), waiter
        )
        outcome = waiter.wait()
    finally:
        runner.stop()
    assert outcome.reason == "exited", outcome.failure
    assert (tmp_path / "task" / "wd" / "f.txt").read_text() == "F"


# -- output files ------------------------------------------------------------------------


def _out(
    server: FakeBlobServer, pattern: str, path: str | None = None, **container: object
) -> dict:
    dest: dict = {"containerUrl": f"{server.url}/acct/results?{SAS}", **container}
    if path is not None:
        dest["path"] = path
    return {"filePattern": pattern, "destination": {"container": dest}}


def test_uploads_names_headers_and_sas(
    run: Run, blob_server: FakeBlobServer, tmp_path: Path
) -> None:
    outputs = [
        _out(blob_server, "../stdout.txt", "logs/task 1+stdout.txt"),
        _out(
            blob_server,
            "$OUTDIR/**/*.csv",
            "vf",
            uploadHeaders=[{"name": "x-ms-blob-content-type", "value": "text/csv"}],
        ),
        _out(blob_server, "result.txt"),
        _out(blob_server, "nothing-*.bin"),
    ]
    env = {"PATH": "/usr/bin:/bin", "OUTDIR": "out"}
    script = (
        "mkdir -p out/n; echo r > result.txt; echo 1 > out/a.csv; echo 2 > out/n/b.csv; echo hi"
    )
    outcome = run(f"sh -c '{script}'", output_files=outputs, env=env)
    assert (outcome.reason, outcome.exit_code, outcome.failure) == ("exited", 0, None)
    puts = {r.path: r for r in blob_server.puts()}
    assert sorted(puts) == [
        f"/acct/results/logs/task%201%2Bstdout.txt?{SAS}",
        f"/acct/results/result.txt?{SAS}",
        f"/acct/results/vf/a.csv?{SAS}",
        f"/acct/results/vf/n/b.csv?{SAS}",
    ]
    stdout_put = puts[f"/acct/results/logs/task%201%2Bstdout.txt?{SAS}"]
    assert stdout_put.body == b"hi\n"
    assert stdout_put.headers["x-ms-blob-type"] == "BlockBlob"
    csv_put = puts[f"/acct/results/vf/a.csv?{SAS}"]
    assert csv_put.headers["x-ms-blob-content-type"] == "text/csv"
    assert csv_put.body == b"1\n"
    log = (tmp_path / "task" / "fileuploadout.txt").read_text()
    assert "No files matched pattern 'nothing-*.bin'" in log
    assert "sig=REDACTED" in log and "a%2Bb%3D" not in log
    assert (tmp_path / "task" / "fileuploaderr.txt").read_text() == ""


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (403, "FileUploadAccessDenied"),
        (404, "FileUploadContainerNotFound"),
        (500, "FileUploadMiscError"),
    ],
)
def test_upload_errors_keep_the_exit_code(
    run: Run, blob_server: FakeBlobServer, tmp_path: Path, status: int, code: str
) -> None:
    blob_server.put_status = status
    outcome = run("/bin/true", output_files=[_out(blob_server, "../stdout.txt")])
    assert (outcome.reason, outcome.exit_code) == ("upload", 0)
    assert outcome.failure is not None
    assert (outcome.failure.category, outcome.failure.code) == ("usererror", code)
    assert code in (tmp_path / "task" / "fileuploaderr.txt").read_text()


def test_upload_failure_does_not_stop_later_entries(
    run: Run, blob_server: FakeBlobServer
) -> None:
    blob_server.routes[("PUT", "/acct/results/first.txt")] = Reply(403)
    outputs = [
        _out(blob_server, "../stdout.txt", "first.txt"),
        _out(blob_server, "../stderr.txt", "second.txt"),
    ]
    outcome = run("false", output_files=outputs)
    assert (outcome.reason, outcome.exit_code) == ("upload", 1)
    assert outcome.failure is not None and outcome.failure.code == "FileUploadAccessDenied"
    assert [r.path.split("?")[0] for r in blob_server.puts()] == [
        "/acct/results/first.txt",
        "/acct/results/second.txt",
    ]


def test_walltime_stays_walltime_when_an_upload_fails(
    run: Run, blob_server: FakeBlobServer
) -> None:
    blob_server.put_status = 500
    outcome = run(
        "sleep 30", output_files=[_out(blob_server, "../stdout.txt")], max_wall_clock_seconds=0.2
    )
    assert (outcome.reason, outcome.exit_code) == ("walltime", 137)
    assert outcome.failure is not None and outcome.failure.code == "TaskEnded"


def test_unknown_upload_condition_is_an_upload_failure(
    run: Run, blob_server: FakeBlobServer
) -> None:
    entry = _out(blob_server, "../stdout.txt")
    entry["uploadOptions"] = {"uploadCondition": "sometimes"}
    outcome = run("/bin/true", output_files=[entry])
    assert outcome.reason == "upload"
    assert outcome.failure is not None and outcome.failure.code == "FileUploadMiscError"
    assert blob_server.puts() == []


def test_terminate_during_uploads_stops_them(
    runner: TaskRunner, make_spec: MakeSpec, blob_server: FakeBlobServer
) -> None:
    arrived, release = threading.Event(), threading.Event()

    def hold() -> None:
        arrived.set()
        release.wait(10)

    blob_server.routes[("PUT", "/acct/results/one.txt")] = Reply(201, before_body=hold, tail=b" ")
    outputs = [
        _out(blob_server, "../stdout.txt", "one.txt"),
        _out(blob_server, "../stderr.txt", "two.txt"),
    ]
    waiter = Waiter()
    runner.start(make_spec("/bin/true", output_files=outputs), waiter)
    assert arrived.wait(10)
    runner.terminate("run-1", "terminated")
    release.set()
    outcome = waiter.wait()
    assert (outcome.reason, outcome.exit_code) == ("terminated", 0)  # the process had exited
    assert [r.path.split("?")[0] for r in blob_server.puts()] == ["/acct/results/one.txt"]
