"""The Blob side: the executor's containers, uploads, SAS URLs for tasks, downloads.

Role: a `BlobStore` is one container of a storage account. An executor connects to the
shared container (the `container_name` setting: node environments, expiry markers) and
works in its job's own container (`for_container(JobLayout.container)`, sharing the
client, the request counts and the signing key). A store creates its container if absent,
uploads config/worker/input/payload blobs (and files, streamed), downloads outputs and
stderr tails, deletes blobs by prefix or its whole container (one request), and signs the
SAS tokens of its tasks with least permissions (docs/security.md): a blob-scoped read-only
SAS (``sr=b``, ``sp=r``) for each resource file, a container SAS with create+write only
(``sr=c``, ``sp=cw``: no read, list or delete) for output files, scoped to the store's
container: the job's own, so a task's write token reaches no other job's blobs
(learn.microsoft.com/rest/api/storageservices/create-service-sas, "Specify the signed
resource"); all expiring with the job (its maximum wall-clock time plus
`SAS_EXPIRY_MARGIN`). Account-key SAS when a key or connection string is given, user
delegation SAS with Entra ID: a user delegation key signs SAS for any container of its
account (learn.microsoft.com/rest/api/storageservices/create-user-delegation-sas), so the
key `sign()` gets once serves the job's container and the shared one. With a
`pool_identity` the task URLs carry no SAS at all (the nodes authenticate as the pool's
managed identity); only `download_url`, for the blobs the worker fetches itself, is still
signed. Every request goes through `retry.RetryPolicy` and is counted: Blob's throttling and
busy replies (503 `ServerBusy`, 500 `OperationTimedOut`), timeouts and a body cut short are
waited out for up to 15 minutes, honouring `Retry-After`; the storage SDK's own retries are
off, so a download is never retried twice over (but for the SDK's three reads of a body cut
short, which it does whatever its settings: once they fail, the download is a transient
failure too, `_cut_short_is_transient`).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from azure.core.exceptions import (
    DecodeError,
    HttpResponseError,
    IncompleteReadError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceResponseError,
)
from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerSasPermissions,
    generate_blob_sas,
    generate_container_sas,
)

from .. import constants as C
from ..config import Settings
from ..errors import ConfigurationError
from .retry import RequestStats, RetryPolicy, http_transport, naming_credentials

log = logging.getLogger(__name__)

_DELETE_BATCH = 256  # the most sub-requests a blob batch request may hold
_CUT_SHORT = (IncompleteReadError, DecodeError, ServiceResponseError)

T = TypeVar("T")


def sas_expiry(settings: Settings, now: dt.datetime) -> dt.datetime:
    """When the SAS tokens of a job started `now` expire: with the job (its maximum
    wall-clock time) plus `SAS_EXPIRY_MARGIN`, at most `SAS_MAX_DAYS` (a user delegation
    key's limit) less a minute."""
    limit = dt.timedelta(days=C.SAS_MAX_DAYS) - dt.timedelta(minutes=1)
    lifetime = dt.timedelta(seconds=settings.job_max_wall_clock + C.SAS_EXPIRY_MARGIN)
    return now + min(lifetime, limit)


def _credential_variable(settings: Settings) -> str:
    if settings.storage_connection_string:
        return C.ENV_STORAGE_CONNECTION_STRING
    if settings.storage_account_key:
        return C.ENV_STORAGE_ACCOUNT_KEY
    return f"{C.ENV_STORAGE_ACCOUNT_URL} (and your Entra ID login: az login)"


@dataclass(frozen=True)
class ContainerInfo:
    """A container of the account as a listing reports it (`BlobStore.containers`)."""

    name: str
    metadata: Mapping[str, str]
    last_modified: dt.datetime | None


class BlobStore:
    """One blob container of the account, with counted and retried requests."""

    def __init__(self, settings: Settings, stats: RequestStats, retry: RetryPolicy) -> None:
        self._settings = settings
        self._stats = stats
        self._retry = retry
        kw: dict[str, Any] = {"retry_total": 0, "max_single_put_size": 64 * 1024 * 1024,
                              "transport": http_transport(C.IO_THREADS + 4)}
        if settings.storage_connection_string:
            self._service = BlobServiceClient.from_connection_string(
                settings.storage_connection_string, **kw
            )
        elif settings.storage_account_key:
            cred = {"account_name": str(settings.storage_account_name),
                    "account_key": settings.storage_account_key}
            self._service = BlobServiceClient(str(settings.storage_account_url), cred, **kw)
        else:
            from azure.identity import DefaultAzureCredential

            self._service = BlobServiceClient(
                str(settings.storage_account_url), DefaultAzureCredential(), **kw
            )
        self._container = self._service.get_container_client(settings.container_name)
        self._metadata: dict[str, str] | None = None  # set on the container this creates
        self._signing: dict[str, Any] = {}  # sign(): the key, start and expiry of blob SAS
        self._write_sas = ""

    def __repr__(self) -> str:
        return f"BlobStore(container={self._container.url!r})"

    @property
    def container_url(self) -> str:
        """The container URL without any SAS (safe to log and to put in error messages)."""
        return self._container.url

    @property
    def container_name(self) -> str:
        return str(self._container.container_name)

    def for_container(self, name: str, metadata: Mapping[str, str] | None = None
                      ) -> BlobStore:
        """Container `name` of the same account: the same client, request counts, retry
        policy and (once `sign()`ed) signing key, its SAS tokens scoped to that container.
        `metadata` is set on it if this store creates it (`ensure_container`). Closing
        either store closes the client they share."""
        view = copy.copy(self)
        view._container = self._service.get_container_client(name)
        view._metadata = dict(metadata) if metadata else None
        if self._signing:
            view._sign_for_container()
        return view

    # ------------------------------------------------------------------ setup
    def ensure_container(self) -> None:
        """Create the container if absent; a credential problem names the variable to fix."""
        with naming_credentials(self._auth_error), contextlib.suppress(ResourceExistsError):
            self._call("blob.container", self._container.create_container,
                       metadata=self._metadata)

    def container_exists(self) -> bool:
        """Whether the container exists (one request)."""
        return bool(self._call("blob.container_head", self._container.exists))

    def delete_container(self) -> bool:
        """Delete the container and every blob in it, in one request (the service removes
        the blobs in the background; the name is taken for a while); False when there was
        no such container."""
        try:
            self._call("blob.container_delete", self._container.delete_container)
        except ResourceNotFoundError:
            return False
        return True

    def containers(self, name_starts_with: str = "") -> list[ContainerInfo]:
        """The account's containers (whose name starts with `name_starts_with`), with their
        metadata (one listing, paged)."""
        def listing() -> list[ContainerInfo]:
            return [ContainerInfo(str(c.name), dict(c.metadata or {}), c.last_modified)
                    for c in self._service.list_containers(
                        name_starts_with=name_starts_with or None, include_metadata=True)]

        return self._call("blob.list_containers", listing)

    def _auth_error(self, exc: HttpResponseError) -> ConfigurationError:
        code = getattr(exc, "error_code", None) or exc.status_code
        return ConfigurationError(
            f"the storage account refused the credentials ({code}); check "
            f"{_credential_variable(self._settings)}"
        )

    def sign(self) -> None:
        """Get ready to sign this job's SAS tokens (once per executor): the signing key (a
        user delegation key under Entra ID) and the validity, from 15 minutes ago (clock
        skew) to the job's maximum wall-clock time plus a margin (at most 7 days, the limit
        of a user delegation key); then the output container's create+write SAS."""
        now = dt.datetime.now(dt.timezone.utc)
        start = now - dt.timedelta(minutes=15)
        expiry = sas_expiry(self._settings, now)
        credential = self._service.credential
        key_kw: dict[str, Any]
        if getattr(credential, "account_key", None):
            key_kw = {"account_key": credential.account_key}
        else:
            udk = self._call(
                "blob.delegation_key", self._service.get_user_delegation_key, start, expiry
            )
            key_kw = {"user_delegation_key": udk}
        self._signing = {"account_name": str(self._service.account_name),
                         "start": start, "expiry": expiry, **key_kw}
        self._sign_for_container()

    def _sign_for_container(self) -> None:
        """This container's part of the signing: its name in every SAS (a blob SAS names
        its container too), and its output SAS: create+write on this container only."""
        self._signing = {**self._signing, "container_name": self._container.container_name}
        self._write_sas = generate_container_sas(
            permission=ContainerSasPermissions(create=True, write=True), **self._signing,
        )

    # ------------------------------------------------------------------ URLs for tasks
    def read_url(self, blob_name: str) -> str:
        """A resource-file URL: the blob's URL with a read-only SAS for that blob alone
        (no SAS with a `pool_identity`: the task definition names the identity)."""
        if self._settings.pool_identity:
            return self._blob_url(blob_name)
        return self.download_url(blob_name)

    def download_url(self, blob_name: str) -> str:
        """The blob's URL with a read-only SAS for that blob alone, expiring with the job:
        for a blob the worker downloads itself (a large argument), always signed."""
        if not self._signing:
            raise RuntimeError("BlobStore.sign() must be called before its URLs are made")
        sas = generate_blob_sas(blob_name=blob_name, permission=BlobSasPermissions(read=True),
                                **self._signing)
        return f"{self._blob_url(blob_name)}?{sas}"

    def output_container_url(self) -> str:
        """An output-file containerUrl: the container URL with the create/write SAS (no
        SAS with a `pool_identity`)."""
        if self._settings.pool_identity:
            return self._container.url
        return f"{self._container.url}?{self._write_sas}"

    def _blob_url(self, blob_name: str) -> str:
        return f"{self._container.url}/{quote(blob_name, safe='/')}"

    # ------------------------------------------------------------------ data
    def upload(self, blob_name: str, data: bytes) -> None:
        self._call("blob.put", self._container.upload_blob, blob_name, data, overwrite=True)

    def upload_creating_container(self, blob_name: str, data: bytes) -> None:
        """An upload that also creates the container if it is missing: one request when it
        exists (the usual case) instead of a create and an upload. Refused credentials name
        the variable to fix, as `ensure_container` does."""
        with naming_credentials(self._auth_error):
            try:
                self.upload(blob_name, data)
            except ResourceNotFoundError:  # ContainerNotFound
                self.ensure_container()
                self.upload(blob_name, data)

    def upload_file(self, path: str | os.PathLike[str], blob_name: str) -> None:
        """Upload a local file streamed from disk: up to 64 MiB in one request, larger files
        in 4 MiB blocks, never read whole into memory. A retry reads the file again."""
        def put() -> None:
            with open(path, "rb") as stream:
                self._container.upload_blob(blob_name, stream, overwrite=True)

        self._call("blob.put", put)

    def download(self, blob_name: str) -> bytes | None:
        """The blob's bytes, or None when it does not exist."""
        def get() -> bytes:
            with _cut_short_is_transient():
                return self._container.download_blob(blob_name).readall()

        try:
            return self._call("blob.get", get)
        except ResourceNotFoundError:
            return None

    def tail(self, blob_name: str, nbytes: int = C.STDERR_TAIL_BYTES) -> str:
        """The last `nbytes` of a text blob ('' when absent or unreadable)."""
        try:
            props = self._call("blob.head", self._container.get_blob_client(blob_name)
                               .get_blob_properties)
            size = int(props.size or 0)
            if size == 0:
                return ""
            offset = max(0, size - nbytes)

            def get() -> bytes:
                with _cut_short_is_transient():
                    return self._container.download_blob(
                        blob_name, offset=offset, length=size - offset
                    ).readall()

            data = self._call("blob.get", get)
        except (HttpResponseError, OSError):
            return ""
        text = data.decode("utf-8", errors="replace")
        return ("..." if offset else "") + text

    # ------------------------------------------------------------------ cleanup
    def blob_names(self, prefix: str) -> list[str]:
        """The names of the blobs under `prefix` (one listing, counted once); none when the
        container does not exist."""
        def names() -> list[str]:
            return list(self._container.list_blob_names(name_starts_with=prefix))

        try:
            return self._call("blob.list", names)
        except ResourceNotFoundError:  # ContainerNotFound: nothing was stored there yet
            return []

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob under `prefix` (e.g. a job's ``<job_id>/``), 256 per batch
        request; return how many there were. Blobs already gone count as deleted."""
        if not prefix:
            raise ValueError("delete_prefix: an empty prefix would empty the whole container")
        names = self.blob_names(prefix)
        for start in range(0, len(names), _DELETE_BATCH):
            replies = self._call("blob.delete", self._container.delete_blobs,
                                 *names[start:start + _DELETE_BATCH],
                                 raise_on_any_failure=False)
            refused = [r for r in replies if r.status_code >= 300 and r.status_code != 404]
            if refused:
                raise HttpResponseError(
                    message=f"could not delete {len(refused)} blob(s) under {prefix} in "
                            f"{self.container_url}", response=refused[0])
        return len(names)

    def _call(self, kind: str, fn: Callable[..., T], *a: Any, **kw: Any) -> T:
        return self._retry.call(self._stats, kind, fn, *a, **kw)

    def close(self) -> None:
        """Close the client (that of every `for_container` view of it too)."""
        self._service.close()


@contextlib.contextmanager
def _cut_short_is_transient() -> Iterator[None]:
    """A download whose body kept being cut short raises `IncompleteReadError` (transient:
    `retry.RetryPolicy` tries it again), not what the storage SDK raises.

    Whatever `retry_total` says, the SDK reads a download's body up to 3 times (a new GET
    each, 1 s apart) when it is cut short (a connection reset mid-body, a truncated or
    undecodable reply), then gives up with a bare `HttpResponseError` wrapping the
    transport's error: no status, so not transient, and the task's result would be lost
    to three resets in a row that a retry a second later gets past."""
    try:
        yield
    except HttpResponseError as exc:
        if exc.status_code is not None or isinstance(exc, IncompleteReadError) \
                or not _transport_failure(exc):
            raise
        raise IncompleteReadError(message=f"the download's body was cut short: {exc}",
                                  error=exc) from exc


def _transport_failure(exc: BaseException) -> bool:
    """True when `exc` wraps (as `inner_exception` or cause, at any depth) a failure of the
    connection rather than a reply: a body cut short or undecodable, a reset, a timeout
    (requests' and urllib3's errors are `OSError`s or urllib3 `HTTPError`s, told by their
    module: urllib3 comes with the storage SDK's transport, not as our dependency)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        link = todo.pop()
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        if isinstance(link, (*_CUT_SHORT, OSError)) or any(
                k.__module__.split(".")[0] == "urllib3" for k in type(link).__mro__):
            return True
        todo += [getattr(link, "inner_exception", None), link.__cause__, link.__context__]
    return False
