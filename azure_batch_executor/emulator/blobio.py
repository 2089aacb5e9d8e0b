"""Plain-HTTP blob I/O for the emulator's task runner (what a Batch node agent does).

Role: download a URL to a local file, list a container through its SAS URL
(`?restype=container&comp=list&prefix=...`, following `NextMarker`), and upload
a local file with Put Blob. URLs are used exactly as given: the SAS query is
kept byte for byte and hosts are never rewritten. No credentials are handled
here; whatever authorises a request is already in its URL.

Every failure is raised as `BlobHTTPError` carrying the HTTP status, the
`x-ms-error-code` header and whether it was a timeout, so the runner can map it
to a Batch failure code. `Aborted` is raised when the caller's `should_stop`
callback asks to give up between chunks.

Imports: the standard library only (urllib.request, xml.etree). Proxies come
from the usual environment variables (`NO_PROXY` is honoured) via urllib.
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

#: Storage REST version sent when the caller's headers do not name one.
STORAGE_API_VERSION = "2021-08-06"
_CHUNK = 1 << 20


class Aborted(Exception):
    """The caller's `should_stop()` returned True: the transfer was abandoned."""


class BlobHTTPError(Exception):
    """A blob request failed: an HTTP error status, a timeout or a connection error."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        timed_out: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.timed_out = timed_out


def _never() -> bool:
    return False


def redact(url: str) -> str:
    """The URL with the SAS signature value hidden, for logs and messages."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = "&".join(
        "sig=REDACTED" if item.lower().startswith("sig=") else item
        for item in parts.query.split("&")
    )
    return parts._replace(query=query).geturl()


def blob_url(container_url: str, blob_name: str) -> str:
    """URL of `blob_name` in the container, keeping the container URL's SAS query verbatim."""
    parts = urlsplit(container_url)
    path = parts.path.rstrip("/") + "/" + quote(blob_name, safe="/")
    url = f"{parts.scheme}://{parts.netloc}{path}"
    return f"{url}?{parts.query}" if parts.query else url


def _list_url(container_url: str, prefix: str | None, marker: str | None) -> str:
    parts = urlsplit(container_url)
    url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}?restype=container&comp=list"
    if prefix:
        url += "&prefix=" + quote(prefix, safe="")
    if marker:
        url += "&marker=" + quote(marker, safe="")
    if parts.query:
        url += "&" + parts.query
    return url


def _open(request: urllib.request.Request, timeout: float) -> http.client.HTTPResponse:
    """urlopen that turns every failure into `BlobHTTPError`."""
    what = f"{request.get_method()} {redact(request.full_url)}"
    try:
        response: http.client.HTTPResponse = urllib.request.urlopen(request, timeout=timeout)
        return response
    except urllib.error.HTTPError as exc:
        code = exc.headers.get("x-ms-error-code") if exc.headers else None
        exc.close()
        raise BlobHTTPError(
            f"{what} failed: HTTP {exc.code} {exc.reason}" + (f" ({code})" if code else ""),
            status=exc.code,
            error_code=code,
        ) from None
    except urllib.error.URLError as exc:
        timed_out = isinstance(exc.reason, TimeoutError)
        raise BlobHTTPError(f"{what} failed: {exc.reason}", timed_out=timed_out) from None
    except TimeoutError:
        raise BlobHTTPError(f"{what} timed out after {timeout:g} s", timed_out=True) from None
    except OSError as exc:  # connection reset and friends
        raise BlobHTTPError(f"{what} failed: {exc}") from None


def _headers(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    headers = dict(extra or {})
    if not any(name.lower() == "x-ms-version" for name in headers):
        headers["x-ms-version"] = STORAGE_API_VERSION
    return headers


def download(
    url: str,
    dest: Path,
    *,
    timeout: float,
    should_stop: Callable[[], bool] = _never,
) -> int:
    """GET `url` into `dest` (created or truncated); returns the byte count.

    A partial file is removed when the download fails or is aborted.
    Raises `BlobHTTPError`, `Aborted`, or `OSError` for local file errors.
    """
    request = urllib.request.Request(url, headers=_headers(), method="GET")
    with _open(request, timeout) as response:
        size = 0
        try:
            with open(dest, "wb") as out:
                while True:
                    if should_stop():
                        raise Aborted(url)
                    try:
                        chunk = response.read1(_CHUNK)  # whatever has arrived
                    except TimeoutError:
                        raise BlobHTTPError(
                            f"GET {redact(url)} timed out after {timeout:g} s", timed_out=True
                        ) from None
                    except OSError as exc:
                        raise BlobHTTPError(f"GET {redact(url)} failed: {exc}") from None
                    if not chunk:
                        return size
                    out.write(chunk)
                    size += len(chunk)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise


def list_blob_names(
    container_url: str,
    prefix: str | None,
    *,
    timeout: float,
    should_stop: Callable[[], bool] = _never,
) -> Iterator[str]:
    """Yield the names of the container's blobs starting with `prefix`, page by page."""
    marker: str | None = None
    while True:
        if should_stop():
            raise Aborted(container_url)
        request = urllib.request.Request(
            _list_url(container_url, prefix, marker), headers=_headers(), method="GET"
        )
        with _open(request, timeout) as response:
            try:
                body = response.read()
            except OSError as exc:
                raise BlobHTTPError(
                    f"listing {redact(container_url)} failed: {exc}",
                    timed_out=isinstance(exc, TimeoutError),
                ) from None
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            raise BlobHTTPError(
                f"listing {redact(container_url)} returned unparsable XML: {exc}"
            ) from None
        for name_el in root.iterfind("./Blobs/Blob/Name"):
            name = name_el.text or ""
            if name_el.get("Encoded", "").lower() == "true":
                name = unquote(name)
            if name:
                yield name
        marker = root.findtext("NextMarker") or None
        if not marker:
            return


def put_blob(
    url: str,
    source: Path,
    *,
    headers: Mapping[str, str],
    timeout: float,
) -> int:
    """Upload `source` with one Put Blob (BlockBlob); returns the HTTP status.

    `headers` (e.g. an output file's `uploadHeaders`) are added to the request;
    Content-Type defaults to application/octet-stream.
    Raises `BlobHTTPError`, or `OSError` when the local file cannot be read.
    """
    all_headers = _headers(headers)
    all_headers["x-ms-blob-type"] = "BlockBlob"
    if not any(name.lower() == "content-type" for name in all_headers):
        all_headers["Content-Type"] = "application/octet-stream"
    with open(source, "rb") as body:
        all_headers["Content-Length"] = str(os.fstat(body.fileno()).st_size)
        request = urllib.request.Request(url, data=body, headers=all_headers, method="PUT")
        with _open(request, timeout) as response:
            response.read()
            return int(response.status)
