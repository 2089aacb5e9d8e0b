"""Large arguments on the node: downloaded once per node into its shared directory.

The worker runs as a node runs it (a subprocess per task, each in its own working directory,
sharing ``AZ_BATCH_NODE_SHARED_DIR``); the objects come from a local HTTP server that counts
the downloads, as Blob storage would serve them to a read SAS URL.
"""

from __future__ import annotations

import http.server
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from azure_batch_executor import constants as C
from azure_batch_executor.wire import codec as _wire
from azure_batch_executor.wire import outcome
from azure_batch_executor.wire import worker as worker_module

WORKER = Path(worker_module.__file__)
SAS = "sv=2025&sig=c2VjcmV0"


def total(data, i):
    return len(data) + i


class Blobs(http.server.ThreadingHTTPServer):
    """Serves `objects` (path -> bytes) like a blob endpoint, counting GETs; `status`
    answers every request with that error instead; `delay` slows each reply."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.objects: dict[str, bytes] = {}
        self.gets: list[str] = []
        self.status: int | None = None
        self.busy = 0  # the next this many requests are answered 503 ServerBusy
        self.delay = 0.0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/c/job/{name}?{SAS}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Blobs

    def do_GET(self) -> None:  # the stdlib handler's name
        path = self.path.split("?", 1)[0].rsplit("/", 1)[-1]
        self.server.gets.append(path)
        time.sleep(self.server.delay)
        if self.server.busy:
            self.server.busy -= 1
            self.send_response(503)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.server.status is not None or path not in self.server.objects:
            self.send_error(self.server.status or 404)
            return
        data = self.server.objects[path]
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def blobs() -> Iterator[Blobs]:
    server = Blobs()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _by_value() -> None:
    _wire.ship_user_modules()  # this test module is user code: pickled by value


def spec_for(blobs: Blobs, data: bytes, i: int = 0) -> tuple[bytes, str]:
    """The spec of ``total(data, i)`` with `data` diverted, served by `blobs`; its digest."""
    divert = _wire.Divert(lambda digest: blobs.url(f"shared_{digest}.pickle"))
    spec = _wire.encode_call(total, (data, i), {}, divert)
    (digest, pickled), = divert.objects.items()
    blobs.objects[f"shared_{digest}.pickle"] = pickled
    return spec, digest


def start_task(tmp_path: Path, name: str, spec: bytes, shared: Path) -> subprocess.Popen[str]:
    wd = tmp_path / name / "wd"
    wd.mkdir(parents=True)
    (wd / C.WORKER_SCRIPT_FILE).write_bytes(WORKER.read_bytes())
    (wd / C.GLOBAL_CONFIG_FILE).write_bytes(_wire.encode_config(None, ()))
    (wd / C.WORKER_INPUTS_FILE).write_bytes(spec)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(AZ_BATCH_NODE_SHARED_DIR=str(shared), AZ_BATCH_NODE_ID=f"node-{shared.name}")
    return subprocess.Popen([sys.executable, C.WORKER_SCRIPT_FILE], cwd=wd, env=env,
                            stderr=subprocess.PIPE, text=True)


def finish(tmp_path: Path, name: str, proc: subprocess.Popen[str]) -> dict:
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return pickle.loads((tmp_path / name / "wd" / C.WORKER_OUTPUTS_FILE).read_bytes())


def run_task(tmp_path: Path, name: str, spec: bytes, shared: Path) -> dict:
    return finish(tmp_path, name, start_task(tmp_path, name, spec, shared))


def objects_of(shared: Path) -> list[str]:
    return sorted(p.name for p in (shared / C.NODE_OBJECTS_DIR).iterdir()
                  if not p.name.endswith(".lock"))


def test_concurrent_tasks_of_a_node_download_an_object_once(tmp_path, blobs) -> None:
    data = os.urandom(300_000)
    spec, digest = spec_for(blobs, data)
    blobs.delay = 0.5  # all four tasks ask while the first download is under way
    node = tmp_path / "node-a"
    procs = [start_task(tmp_path, f"t{i}", spec, node) for i in range(4)]
    outs = [finish(tmp_path, f"t{i}", p) for i, p in enumerate(procs)]
    assert [outcome.decode_row(o["results"][0]) for o in outs] == [(True, len(data))] * 4
    assert blobs.gets == [f"shared_{digest}.pickle"]  # one download for the node
    assert sorted(o["node"]["fetched"] for o in outs) == [0, 0, 0, 1]
    fetched_bytes = sum(o["node"]["fetched_bytes"] for o in outs)
    assert fetched_bytes == len(blobs.objects[f"shared_{digest}.pickle"])
    assert {o["node"]["node_id"] for o in outs} == {"node-node-a"}
    assert objects_of(node) == [digest]
    # a later task of the node finds it there; another node downloads its own copy
    assert run_task(tmp_path, "later", spec, node)["node"]["fetched"] == 0
    assert run_task(tmp_path, "other", spec, tmp_path / "node-b")["node"]["fetched"] == 1
    assert len(blobs.gets) == 2


def test_an_object_whose_sha256_differs_is_refused(tmp_path, blobs) -> None:
    spec, digest = spec_for(blobs, os.urandom(100_000))
    blobs.objects[f"shared_{digest}.pickle"] = b"not the pickle it names" * 1000
    out = run_task(tmp_path, "t", spec, tmp_path / "node")
    stage, _, type_name, message, _ = out["fatal"]
    assert (stage, type_name) == ("inputs", "builtins.OSError")
    assert "sha256" in message and "large argument" in message
    assert objects_of(tmp_path / "node") == []  # nothing under its name, no temp file left


def test_a_refused_download_is_not_retried_and_keeps_the_sas_out(tmp_path, blobs) -> None:
    spec, _ = spec_for(blobs, os.urandom(100_000))
    blobs.status = 403  # an expired SAS, say
    out = run_task(tmp_path, "t", spec, tmp_path / "node")
    message = out["fatal"][3]
    assert "HTTP 403" in message and "/c/job/shared_" in message
    assert "sig=" not in message and SAS not in repr(out)
    assert len(blobs.gets) == 1


def test_throttling_is_waited_out(tmp_path, blobs) -> None:
    spec, digest = spec_for(blobs, os.urandom(100_000))
    blobs.busy = 1  # ServerBusy, Retry-After: 1
    start = time.monotonic()
    out = run_task(tmp_path, "t", spec, tmp_path / "node")
    assert out["fatal"] is None and out["node"]["fetched"] == 1
    assert blobs.gets == [f"shared_{digest}.pickle"] * 2
    assert time.monotonic() - start >= 1.0  # not sooner than Retry-After


def test_objects_unused_for_an_hour_are_pruned_before_a_download(tmp_path, blobs) -> None:
    node = tmp_path / "node"
    directory = node / C.NODE_OBJECTS_DIR
    directory.mkdir(parents=True)
    stale, recent = "a" * 64, "b" * 64
    for name in (stale, recent, "c" * 64 + ".123.tmp"):
        (directory / name).write_bytes(b"x")
    hour_ago = time.time() - worker_module.OBJECT_IDLE_SECONDS - 60
    os.utime(directory / stale, (hour_ago, hour_ago))
    os.utime(directory / ("c" * 64 + ".123.tmp"), (hour_ago, hour_ago))
    spec, digest = spec_for(blobs, os.urandom(100_000))
    assert run_task(tmp_path, "t", spec, node)["node"]["fetched"] == 1
    assert objects_of(node) == sorted([recent, digest])


def test_no_objects_no_shared_directory(tmp_path) -> None:
    out = run_task(tmp_path, "t", _wire.encode_call(total, (b"small", 1), {}), tmp_path / "node")
    assert outcome.decode_row(out["results"][0]) == (True, 6)
    assert "fetched" not in out["node"] and not (tmp_path / "node").exists()


def test_digest_names_are_checked(tmp_path) -> None:
    with pytest.raises(ValueError, match="bad object name"):
        worker_module._fetch(str(tmp_path), "../../etc/passwd", "http://127.0.0.1:9/x")
