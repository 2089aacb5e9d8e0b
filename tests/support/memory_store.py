"""`MemoryBlobStore`: a `BlobPort` that keeps blobs in a dict.

Its SAS URLs carry a recognisable fake signature (`SECRET_SIG`) so that tests can check
that no signature reaches a log line, a repr or an exception; `blob_of(url)` maps a URL
it gave back to the blob name (the SDK fake fetches resource files that way). With
`stats`, requests are counted as the real store counts them.
"""

from __future__ import annotations

import os
import threading
from urllib.parse import urlsplit

from azure_batch_executor.cloud.retry import RequestStats


class MemoryBlobStore:
    """Blobs in a dict; URLs carry a fake SAS signature so masking can be checked."""

    SECRET_SIG = "c2VjcmV0LXNpZ25hdHVyZQ%3D%3D"

    def __init__(self, stats: RequestStats | None = None,
                 container_url: str = "https://fake.blob.core.windows.net/azure-batch-executor"
                 ) -> None:
        self._stats = stats if stats is not None else RequestStats()
        self._container_url = container_url
        self.blobs: dict[str, bytes] = {}
        self.lock = threading.Lock()

    @property
    def container_url(self) -> str:
        return self._container_url

    def __repr__(self) -> str:
        return f"MemoryBlobStore(container={self.container_url!r})"

    def ensure_container(self) -> None:
        self._stats.add("blob.container")

    def sign(self) -> None:
        pass

    def read_url(self, blob_name: str) -> str:
        return f"{self.container_url}/{blob_name}?sp=r&sig={self.SECRET_SIG}"

    def download_url(self, blob_name: str) -> str:
        return f"{self.container_url}/{blob_name}?sp=r&sig={self.SECRET_SIG}"

    def output_container_url(self) -> str:
        return f"{self.container_url}?sp=cw&sig={self.SECRET_SIG}"

    def blob_of(self, url: str) -> str:
        """The blob name in a URL `read_url` made."""
        return urlsplit(url).path[len(urlsplit(self.container_url).path) + 1:]

    def upload(self, blob_name: str, data: bytes) -> None:
        self._stats.add("blob.put")
        with self.lock:
            self.blobs[blob_name] = bytes(data)

    def upload_creating_container(self, blob_name: str, data: bytes) -> None:
        self.upload(blob_name, data)

    def upload_file(self, path: str | os.PathLike[str], blob_name: str) -> None:
        with open(path, "rb") as f:
            self.upload(blob_name, f.read())

    def download(self, blob_name: str) -> bytes | None:
        self._stats.add("blob.get")
        with self.lock:
            return self.blobs.get(blob_name)

    def tail(self, blob_name: str, nbytes: int = 2048) -> str:
        with self.lock:
            data = self.blobs.get(blob_name, b"")
        return data[-nbytes:].decode("utf-8", "replace")

    def blob_names(self, prefix: str) -> list[str]:
        with self.lock:
            return [name for name in self.blobs if name.startswith(prefix)]

    def delete_prefix(self, prefix: str) -> int:
        with self.lock:
            names = [name for name in self.blobs if name.startswith(prefix)]
            for name in names:
                del self.blobs[name]
        return len(names)

    def close(self) -> None:
        pass
