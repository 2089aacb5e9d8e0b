"""Where a job's blobs are, for the commands that read or delete them.

Role: an executor's job keeps its blobs in a container of its own
(`wire.layout.JobLayout.container`, its metadata naming the job), under ``<job id>/``; a
job made before containers per job has them under ``<job id>/`` in the shared container
(the `container_name` setting), which also holds the expiry markers and the node
environments. `ContainerAccount` is an `accounts.Account` whose `container` is another
container of the same storage account (the same client and counts), so every `inventory`
read works on a job's container; `locate` finds where a job's blobs are (one request, and
one listing for an older job); `job_containers` lists the containers made for jobs.

Imports: `accounts`, `inventory`, `wire.layout`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..cloud.batch import BatchService
from ..cloud.storage import BlobStore, ContainerInfo
from ..wire.layout import CONTAINER_JOB_KEY, JobLayout
from . import inventory
from .accounts import Account


class ContainerAccount(Account):
    """`account`, reading (and deleting) blob container `container` instead of its own;
    its Batch side and its blob client are `account`'s, which closes them."""

    def __init__(self, account: Account, container: str) -> None:
        super().__init__(dataclasses.replace(account.settings, container_name=container),
                         account.retry)
        self.stats = account.stats
        self.parent = account

    @property
    def store(self) -> BlobStore:
        if self._store is None:
            self._store = self.parent.store.for_container(self.settings.container_name)
        return self._store

    @property
    def batch(self) -> BatchService:
        return self.parent.batch

    @property
    def client(self) -> Any:
        return self.parent.client

    def close(self) -> None:
        """Nothing: the client is `parent`'s."""


@dataclass(frozen=True)
class JobBlobs:
    """Where the blobs of job `job_id` are: under ``<job id>/`` in the container `account`
    reads, the job's own (`own`) or the shared one (a job made before containers per job)."""

    job_id: str
    account: Account
    own: bool

    @property
    def container(self) -> str:
        return self.account.settings.container_name

    @property
    def prefix(self) -> str:
        return JobLayout(self.job_id).prefix

    def delete(self) -> object:
        """Delete them: the whole container (one request), or the prefix."""
        store = self.account.store
        return store.delete_container() if self.own else store.delete_prefix(self.prefix)


def own_container(account: Account, job_id: str) -> JobBlobs:
    """The job's own container (whether or not it exists)."""
    return JobBlobs(job_id, ContainerAccount(account, JobLayout(job_id).container), True)


def locate(account: Account, job_id: str) -> JobBlobs | None:
    """Where the job's blobs are: its own container if it exists, else its prefix in the
    shared container if any blob is there, else None."""
    own = own_container(account, job_id)
    if own.container != account.settings.container_name \
            and account.call("blob.container_head", own.account.container.exists):
        return own
    if inventory.prefix(account, own.prefix).count:
        return JobBlobs(job_id, account, False)
    return None


def job_containers(account: Account) -> dict[str, ContainerInfo]:
    """Job id -> its container, for every container of the storage account whose metadata
    names the job it was made for (one listing)."""
    with account.naming_fixes(blob=True):
        found = account.store.containers()
    return {info.metadata[CONTAINER_JOB_KEY]: info for info in found
            if info.metadata.get(CONTAINER_JOB_KEY)}
