"""A task's file transfers: resource files before the command, output files after it.

Role: turn the task JSON's `resourceFiles` and `outputFiles` (camelCase, as
received) into blob requests (`blobio`) and local paths (`patterns`), and map
every failure to its Batch failure code (docs/dev/emulator-rest.md, "Resource files",
"Output files"):

    resource download  404 BlobNotFound, 403 BlobAccessDenied        (usererror)
                       timeout BlobDownloadTimedOut, else BlobDownloadMiscError (servererror)
    container listing  404 ResourceContainerNotFound, 403 ResourceContainerAccessDenied
                       (usererror), else ResourceContainerListMiscError (servererror)
    local file system  DiskFull (servererror), else ResourceFileWriteFailed (usererror)
    bad entry          ResourceFileCreateFailed (usererror): filePath escaping wd, ...
    output upload      403 FileUploadAccessDenied, 404 FileUploadContainerNotFound,
                       else FileUploadMiscError (all usererror)

Uploads are logged to `<taskdir>/fileuploadout.txt`, their errors to
`fileuploaderr.txt` (SAS signatures redacted). Both stop early when
`should_stop()` turns true: downloads raise `blobio.Aborted`, uploads return.

Imports: the standard library and the sibling stdlib-only modules `blobio`, `patterns`.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from . import blobio, patterns
from .blobio import BlobHTTPError

DEFAULT_FILE_MODE = 0o770
UPLOAD_CONDITIONS = ("tasksuccess", "taskfailure", "taskcompletion")


class TransferFailure(Exception):
    """A transfer failed the task: Batch `failureInfo` fields."""

    def __init__(self, category: str, code: str, message: str) -> None:
        super().__init__(message)
        self.category = category
        self.code = code
        self.message = message


# -- resource files ----------------------------------------------------------------------


def _inside(wd: Path, *parts: str) -> Path:
    """`wd/parts...` folded; a TransferFailure when it leaves `wd`."""
    root = os.path.normpath(str(wd))
    joined = os.path.normpath(os.path.join(root, *parts))
    if not joined.startswith(root + os.sep):
        shown = "/".join(parts)
        raise TransferFailure(
            "usererror",
            "ResourceFileCreateFailed",
            f"Resource file destination {shown!r} is not inside the task working directory",
        )
    return Path(joined)


def _file_mode(entry: Mapping[str, Any]) -> int:
    text = entry.get("fileMode")
    if text in (None, ""):
        return DEFAULT_FILE_MODE
    try:
        return int(str(text), 8)
    except ValueError:
        raise TransferFailure(
            "usererror", "ResourceFileCreateFailed", f"fileMode {text!r} is not an octal string"
        ) from None


def _local_error(dest: Path, exc: OSError) -> TransferFailure:
    if exc.errno == errno.ENOSPC:
        return TransferFailure("servererror", "DiskFull", f"No space left writing {dest}")
    return TransferFailure(
        "usererror", "ResourceFileWriteFailed", f"Cannot write resource file {dest}: {exc}"
    )


def _download_one(url: str, dest: Path, mode: int, timeout: float, should_stop: Any) -> None:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        blobio.download(url, dest, timeout=timeout, should_stop=should_stop)
        os.chmod(dest, mode)
    except BlobHTTPError as exc:
        if exc.status == 404:
            raise TransferFailure("usererror", "BlobNotFound", str(exc)) from None
        if exc.status == 403:
            raise TransferFailure("usererror", "BlobAccessDenied", str(exc)) from None
        if exc.timed_out:
            raise TransferFailure("servererror", "BlobDownloadTimedOut", str(exc)) from None
        raise TransferFailure("servererror", "BlobDownloadMiscError", str(exc)) from None
    except OSError as exc:
        raise _local_error(dest, exc) from None


def _list(container_url: str, prefix: str | None, timeout: float, should_stop: Any) -> list[str]:
    try:
        return list(
            blobio.list_blob_names(container_url, prefix, timeout=timeout, should_stop=should_stop)
        )
    except BlobHTTPError as exc:
        if exc.status == 404:
            raise TransferFailure("usererror", "ResourceContainerNotFound", str(exc)) from None
        if exc.status == 403:
            raise TransferFailure("usererror", "ResourceContainerAccessDenied", str(exc)) from None
        raise TransferFailure("servererror", "ResourceContainerListMiscError", str(exc)) from None


def _container_url(entry: Mapping[str, Any], auto_storage: Callable[[str], str] | None) -> str:
    if entry.get("storageContainerUrl"):
        return str(entry["storageContainerUrl"])
    name = str(entry["autoStorageContainerName"])
    if auto_storage is None:
        raise TransferFailure(
            "usererror",
            "ResourceContainerNotFound",
            f"autoStorageContainerName {name!r} is not supported: this emulator has no "
            "auto-storage account configured. Use storageContainerUrl with a read+list SAS "
            "URL, or give TaskRunner(auto_storage_container_url=...)",
        )
    try:
        return auto_storage(name)
    except Exception as exc:
        raise TransferFailure(
            "usererror",
            "ResourceContainerNotFound",
            f"autoStorageContainerName {name!r} could not be resolved: {exc}",
        ) from exc


def download_resource_files(
    resource_files: list[dict[str, Any]],
    wd: Path,
    *,
    timeout: float,
    should_stop: Callable[[], bool],
    auto_storage: Callable[[str], str] | None = None,
) -> None:
    """Download every entry into `wd`; raises TransferFailure or blobio.Aborted."""
    for entry in resource_files:
        sources = [
            key
            for key in ("httpUrl", "storageContainerUrl", "autoStorageContainerName")
            if entry.get(key)
        ]
        if len(sources) != 1:
            raise TransferFailure(
                "usererror",
                "ResourceFileCreateFailed",
                "A resource file needs exactly one of httpUrl, storageContainerUrl and "
                f"autoStorageContainerName; got {sources or 'none'}",
            )
        mode = _file_mode(entry)
        file_path = str(entry.get("filePath") or "")
        if sources[0] == "httpUrl":
            if not file_path:
                raise TransferFailure(
                    "usererror",
                    "ResourceFileCreateFailed",
                    "A resource file with httpUrl needs filePath",
                )
            dest = _inside(wd, file_path)
            _download_one(str(entry["httpUrl"]), dest, mode, timeout, should_stop)
            continue
        container_url = _container_url(entry, auto_storage)
        prefix = entry.get("blobPrefix") or None
        for name in _list(container_url, prefix, timeout, should_stop):
            if name.endswith("/"):  # a folder marker, not a file
                continue
            dest = _inside(wd, file_path, name) if file_path else _inside(wd, name)
            url = blobio.blob_url(container_url, name)
            _download_one(url, dest, mode, timeout, should_stop)


# -- output files ------------------------------------------------------------------------


def _stamp() -> str:
    """UTC, to the microsecond (benchmarks time an output's landing from these lines)."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


def _upload_error(exc: BlobHTTPError) -> TransferFailure:
    if exc.status == 403:
        return TransferFailure("usererror", "FileUploadAccessDenied", str(exc))
    if exc.status == 404:
        return TransferFailure("usererror", "FileUploadContainerNotFound", str(exc))
    return TransferFailure("usererror", "FileUploadMiscError", str(exc))


def _upload_entry(
    entry: Mapping[str, Any],
    wd: Path,
    env: Mapping[str, str],
    *,
    timeout: float,
    should_stop: Callable[[], bool],
    out: TextIO,
    err: TextIO,
) -> TransferFailure | None:
    """Upload one entry's matches; returns its first failure."""
    container = (entry.get("destination") or {}).get("container") or {}
    pattern, container_url = entry.get("filePattern"), container.get("containerUrl")
    if not pattern or not container_url:
        return TransferFailure(
            "usererror",
            "FileUploadMiscError",
            "An output file needs filePattern and destination.container.containerUrl",
        )
    headers = {
        str(h.get("name")): str(h.get("value") or "")
        for h in container.get("uploadHeaders") or []
        if h.get("name")
    }
    wildcard, matches = patterns.match_files(str(pattern), wd, env)
    if not matches:
        out.write(f"{_stamp()} No files matched pattern {pattern!r}\n")
        return None
    first: TransferFailure | None = None
    for match in matches:
        if should_stop():
            return first
        name = patterns.blob_name(container.get("path"), match, wildcard=wildcard)
        url = blobio.blob_url(str(container_url), name)
        out.write(f"{_stamp()} Uploading {match.file} to {blobio.redact(url)}\n")
        try:
            status = blobio.put_blob(url, match.file, headers=headers, timeout=timeout)
        except BlobHTTPError as exc:
            failure = _upload_error(exc)
        except OSError as exc:
            failure = TransferFailure(
                "usererror", "FileUploadMiscError", f"Cannot read {match.file}: {exc}"
            )
        else:
            out.write(f"{_stamp()} Uploaded {match.file} (HTTP {status})\n")
            continue
        err.write(f"{_stamp()} {failure.code}: {failure.message}\n")
        first = first or failure
    return first


def upload_output_files(
    output_files: list[dict[str, Any]],
    wd: Path,
    env: Mapping[str, str],
    *,
    succeeded: bool,
    timeout: float,
    should_stop: Callable[[], bool],
) -> TransferFailure | None:
    """Upload the entries whose condition holds; returns the first failure, if any."""
    task_dir = wd.parent
    first: TransferFailure | None = None
    with (
        open(task_dir / "fileuploadout.txt", "a", encoding="utf-8") as out,
        open(task_dir / "fileuploaderr.txt", "a", encoding="utf-8") as err,
    ):
        for entry in output_files:
            if should_stop():
                break
            options = entry.get("uploadOptions") or {}
            condition = str(options.get("uploadCondition") or "taskcompletion").lower()
            if condition not in UPLOAD_CONDITIONS:
                failure = TransferFailure(
                    "usererror",
                    "FileUploadMiscError",
                    f"Unknown uploadCondition {condition!r}; expected one of {UPLOAD_CONDITIONS}",
                )
                err.write(f"{_stamp()} {failure.code}: {failure.message}\n")
                first = first or failure
                continue
            if (condition == "tasksuccess" and not succeeded) or (
                condition == "taskfailure" and succeeded
            ):
                out.write(
                    f"{_stamp()} Skipping {entry.get('filePattern')!r}: uploadCondition "
                    f"{condition}, task {'succeeded' if succeeded else 'failed'}\n"
                )
                continue
            entry_failure = _upload_entry(
                entry, wd, env, timeout=timeout, should_stop=should_stop, out=out, err=err
            )
            first = first or entry_failure
    return first
