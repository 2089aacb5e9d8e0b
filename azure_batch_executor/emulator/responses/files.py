"""Handlers for task files and node files (docs/dev/emulator-rest.md).

Role: list, read (whole or `ocp-range`, always 200), stat (HEAD) and delete the files a
task's runner wrote under its task directory (`stdout.txt`, `stderr.txt`, `wd/...`), or
anything under a node's root. The backend only says *where* (under its lock); the disk
is read here, outside the lock. Paths never escape their root.

Imports: the standard library and sibling emulator modules.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .. import exceptions as exc
from .. import wire
from .base import BaseResponses, Request, Response


def _resolve(root: Path, file_path: str) -> Path:
    parts = [p for p in file_path.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise exc.FileNotFound(values={"FilePath": file_path})
    return root.joinpath(*parts)


def _entries(root: Path, recursive: bool) -> list[tuple[str, Path]]:
    if not root.is_dir():
        return []
    out: list[tuple[str, Path]] = []
    if not recursive:
        return sorted((p.name, p) for p in root.iterdir())
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        for name in dirnames + sorted(filenames):
            out.append((prefix + name, Path(dirpath) / name))
    return sorted(out)


def _content_type(path: Path) -> str:
    return "text/plain" if path.suffix.lower() == ".txt" else "application/octet-stream"


def _file_props(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {
        "creationTime": wire.iso(min(st.st_ctime, st.st_mtime)),
        "lastModified": wire.iso(st.st_mtime),
        "contentLength": str(st.st_size),
        "contentType": _content_type(path),
        "fileMode": oct(st.st_mode),
    }


class FileResponses(BaseResponses):
    # --- task files -------------------------------------------------------------------------

    def _task_root(self, jobId: str, taskId: str) -> Path:
        with self.backend.op(wake=False):
            return self.backend.task_files_root(jobId, taskId)

    def _node_root(self, poolId: str, nodeId: str) -> Path:
        with self.backend.op(wake=False):
            return self.backend.node_files_root(poolId, nodeId)

    def list_task_files(self, req: Request, jobId: str, taskId: str) -> Response:
        root = self._task_root(jobId, taskId)
        url = f"{req.base_url}/jobs/{jobId}/tasks/{taskId}/files"
        return self._list(req, root, url)

    def download_task_file(self, req: Request, jobId: str, taskId: str, filePath: str
                           ) -> Response:
        root = self._task_root(jobId, taskId)
        return self._download(req, root, filePath,
                              f"{req.base_url}/jobs/{jobId}/tasks/{taskId}/files")

    def get_task_file_properties(self, req: Request, jobId: str, taskId: str, filePath: str
                                 ) -> Response:
        root = self._task_root(jobId, taskId)
        return self._stat(req, root, filePath, f"{req.base_url}/jobs/{jobId}/tasks/{taskId}/files")

    def delete_task_file(self, req: Request, jobId: str, taskId: str, filePath: str) -> Response:
        self.no_body(req)
        return self._delete(req, self._task_root(jobId, taskId), filePath)

    # --- node files -------------------------------------------------------------------------

    def list_node_files(self, req: Request, poolId: str, nodeId: str) -> Response:
        root = self._node_root(poolId, nodeId)
        return self._list(req, root, f"{req.base_url}/pools/{poolId}/nodes/{nodeId}/files")

    def download_node_file(self, req: Request, poolId: str, nodeId: str, filePath: str
                           ) -> Response:
        root = self._node_root(poolId, nodeId)
        return self._download(req, root, filePath,
                              f"{req.base_url}/pools/{poolId}/nodes/{nodeId}/files")

    def get_node_file_properties(self, req: Request, poolId: str, nodeId: str, filePath: str
                                 ) -> Response:
        root = self._node_root(poolId, nodeId)
        return self._stat(req, root, filePath,
                          f"{req.base_url}/pools/{poolId}/nodes/{nodeId}/files")

    def delete_node_file(self, req: Request, poolId: str, nodeId: str, filePath: str
                         ) -> Response:
        self.no_body(req)
        return self._delete(req, self._node_root(poolId, nodeId), filePath)

    # --- shared -----------------------------------------------------------------------------

    def _list(self, req: Request, root: Path, url: str) -> Response:
        recursive = self.flag(req, "recursive")
        listed = _entries(root, recursive)

        def render(name: str, path: Path) -> dict[str, Any]:
            item: dict[str, Any] = {"name": name, "url": f"{url}/{quote(name, safe='')}",
                          "isDirectory": path.is_dir()}
            if not item["isDirectory"]:
                with contextlib.suppress(OSError):  # gone or unreadable: listed without properties
                    item["properties"] = _file_props(path)
            return item

        def entries(start: int) -> Iterable[tuple[int, Callable[[], dict[str, Any]]]]:
            for i, (name, path) in enumerate(listed[start:], start):
                yield i, partial(render, name, path)

        return self.listing(req, "files", "files", entries)

    def _headers(self, path: Path, url: str, file_path: str) -> dict[str, str]:
        """The file headers as the service writes them: `ocp-batch-file-isdirectory` is
        .NET's `True`/`False` and `ocp-batch-file-url` the whole URL percent-encoded
        (recorded: azure-sdk-for-python sdk/batch/azure-batch/tests/recordings/
        test_batch.test_batch_files.yaml, `https%3A%2F%2F...%2Ffiles%2Fstderr.txt`)."""
        st = path.stat()
        return {
            "Content-Type": _content_type(path),
            "Content-Length": "0" if path.is_dir() else str(st.st_size),
            "Last-Modified": wire.rfc1123(st.st_mtime),
            "ocp-creation-time": wire.rfc1123(min(st.st_ctime, st.st_mtime)),
            "ocp-batch-file-isdirectory": "True" if path.is_dir() else "False",
            "ocp-batch-file-url": quote(f"{url}/{file_path}", safe=""),
            "ocp-batch-file-mode": oct(st.st_mode),
        }

    def _check_modified(self, req: Request, path: Path) -> None:
        mtime = int(path.stat().st_mtime)
        since = req.headers.get("If-Modified-Since")
        if since is not None:
            ts = wire.parse_rfc1123(since)
            if ts is not None and mtime <= ts:
                raise exc.NotModified()
        until = req.headers.get("If-Unmodified-Since")
        if until is not None:
            ts = wire.parse_rfc1123(until)
            if ts is not None and mtime > ts:
                raise exc.ConditionNotMet()

    def _stat(self, req: Request, root: Path, file_path: str, url: str) -> Response:
        path = _resolve(root, file_path)
        if not path.exists():
            raise exc.FileNotFound(values={"FilePath": file_path})
        self._check_modified(req, path)
        return Response(200, self._headers(path, url, file_path), b"")

    def _download(self, req: Request, root: Path, file_path: str, url: str) -> Response:
        path = _resolve(root, file_path)
        if not path.is_file():
            raise exc.FileNotFound(values={"FilePath": file_path})
        self._check_modified(req, path)
        headers = self._headers(path, url, file_path)
        data = path.read_bytes()
        requested = req.headers.get("ocp-range")
        if requested:
            m = re.fullmatch(r"\s*bytes=(\d+)-(\d*)\s*", requested)
            if not m:
                raise exc.InvalidHeaderValue(f"The ocp-range header {requested!r} is not "
                                             "bytes=<start>-<end>.",
                                             {"HeaderName": "ocp-range"})
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else len(data) - 1
            if start >= len(data) or end < start:
                raise exc.InvalidRange(values={"Range": requested,
                                               "ContentLength": str(len(data))})
            data = data[start:end + 1]
        headers["Content-Length"] = str(len(data))
        return Response(200, headers, data)

    def _delete(self, req: Request, root: Path, file_path: str) -> Response:
        path = _resolve(root, file_path)
        if not path.exists():
            raise exc.FileNotFound(values={"FilePath": file_path})
        if path.is_dir():
            if self.flag(req, "recursive"):
                shutil.rmtree(path, ignore_errors=True)
            elif any(path.iterdir()):
                raise exc.OperationInvalidForCurrentState(
                    f"The directory {file_path!r} is not empty; pass recursive=true to delete "
                    "it with its contents.")
            else:
                path.rmdir()
        else:
            path.unlink()
        return Response(200)
