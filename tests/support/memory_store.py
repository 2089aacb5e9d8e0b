"""`MemoryBlobStore`: a `BlobPort` that keeps blobs in a dict.

Its SAS URLs carry a recognisable fake signature (`SECRET_SIG`) so that tests can check
that no signature reaches a log line, a repr or an exception; `blob_of(url)` maps a URL
it gave back to the blob name (the SDK fake fetches resource files that way). With
`stats`, requests are counted as the real store counts them.

`for_container(name)` is a view of another container of the same fake account: it shares
`blobs` (one dict of blob names, for the tests' assertions: job blob names start with
their job id, so they never clash), and `container_of` records which container each blob
was written to, so that `delete_container` deletes just that container's blobs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
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
        self.container_of: dict[str, str] = {}  # blob name -> the container it is in
        self.containers: dict[str, Mapping[str, str]] = {}  # created: name -> metadata
        self.metadata: Mapping[str, str] = {}

    @property
    def container_url(self) -> str:
        return self._container_url

    @property
    def container_name(self) -> str:
        return self._container_url.rstrip("/").rsplit("/", 1)[1]

    def for_container(self, name: str, metadata: Mapping[str, str] | None = None
                      ) -> MemoryBlobStore:
        view = MemoryBlobStore(self._stats, self._container_url.rsplit("/", 1)[0] + "/" + name)
        view.blobs, view.lock = self.blobs, self.lock
        view.container_of, view.containers = self.container_of, self.containers
        view.metadata = dict(metadata or {})
        return view

    def for_url(self, url: str) -> MemoryBlobStore:
        """The container a (container or blob) URL names."""
        return self.for_container(urlsplit(url).path.lstrip("/").split("/", 1)[0])

    def delete_container(self) -> bool:
        self._stats.add("blob.container_delete")
        name = self.container_name
        with self.lock:
            names = [b for b, c in self.container_of.items() if c == name]
            for blob in names:
                del self.blobs[blob], self.container_of[blob]
            return self.containers.pop(name, None) is not None or bool(names)

    def __repr__(self) -> str:
        return f"MemoryBlobStore(container={self.container_url!r})"

    def ensure_container(self) -> None:
        self._stats.add("blob.container")
        with self.lock:
            self.containers.setdefault(self.container_name, self.metadata)

    def sign(self) -> None:
        pass

    def read_url(self, blob_name: str) -> str:
        return f"{self.container_url}/{blob_name}?sp=r&sig={self.SECRET_SIG}"

    def download_url(self, blob_name: str) -> str:
        return f"{self.container_url}/{blob_name}?sp=r&sig={self.SECRET_SIG}"

    def output_container_url(self) -> str:
        return f"{self.container_url}?sp=cw&sig={self.SECRET_SIG}"

    def blob_of(self, url: str) -> str:
        """The blob name in a URL `read_url` made (of any container of the account)."""
        return urlsplit(url).path.lstrip("/").split("/", 1)[1]

    def upload(self, blob_name: str, data: bytes) -> None:
        self._stats.add("blob.put")
        with self.lock:
            self.blobs[blob_name] = bytes(data)
            self.container_of[blob_name] = self.container_name

    def upload_creating_container(self, blob_name: str, data: bytes) -> None:
        with self.lock:
            self.containers.setdefault(self.container_name, self.metadata)
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
                self.container_of.pop(name, None)
        return len(names)

    def close(self) -> None:
        pass
