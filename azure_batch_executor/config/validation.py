"""Checks of the settings: each one before any request, naming the setting and the fix.

Role: `validate(settings, names)` runs every check of a resolved `Settings`; `names` maps
a field to what the caller's user calls it (the SuperBatch client's argument names), so
that errors name what the user typed. Each failure is a `ConfigurationError`.
"""

from __future__ import annotations

import base64
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .. import constants as C
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from . import Settings

_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CONTAINER_RE = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")


def validate(self: Settings, names: Mapping[str, str]) -> None:
    """Check `self`, naming each setting as `names` says (else by its keyword)."""
    _validate_accounts(self, lambda field: names.get(field, field))
    _validate_pool(self, lambda field: names.get(field, field))
    _validate_scaling(self, lambda field: names.get(field, field))
    _validate_environment(self, lambda field: names.get(field, field))
    _validate_registry(self, lambda field: names.get(field, field))
    _validate_cleanup(self, lambda field: names.get(field, field))

def _validate_accounts(self: Settings, n: Callable[[str], str]) -> None:
    """The accounts: whole or absent; `n` names a field as the caller's user knows it."""
    if not self._any_account():
        return
    batch_given = self.batch_account_url or self.batch_account_name or self.batch_account_key
    storage_given = (
        self.storage_account_url or self.storage_account_key or self.storage_connection_string
    )
    if not self.batch_account_url:
        what = "a storage account" if storage_given and not batch_given else "part of one"
        raise ConfigurationError(
            f"{what} is configured but no Batch account URL: set {C.ENV_BATCH_ACCOUNT_URL} "
            f"or pass {n('batch_account_url')}= (or unset every account variable to use the "
            "local stack)"
        )
    if not _is_url(self.batch_account_url):
        raise ConfigurationError(
            f"{C.ENV_BATCH_ACCOUNT_URL}={self.batch_account_url!r} is not a URL: use "
            f"https://NAME.REGION.batch.azure.com (the account's URL in the portal) as "
            f"{C.ENV_BATCH_ACCOUNT_URL} or {n('batch_account_url')}=")
    if self.storage_account_url and not _is_url(self.storage_account_url):
        raise ConfigurationError(
            f"{C.ENV_STORAGE_ACCOUNT_URL}={self.storage_account_url!r} is not a URL: use "
            f"https://NAME.blob.core.windows.net as {C.ENV_STORAGE_ACCOUNT_URL} or "
            f"{n('storage_account_url')}=")
    if bool(self.batch_account_name) != bool(self.batch_account_key):
        missing = (
            (C.ENV_BATCH_ACCOUNT_KEY, "batch_account_key")
            if self.batch_account_name
            else (C.ENV_BATCH_ACCOUNT_NAME, "batch_account_name")
        )
        raise ConfigurationError(
            f"Batch shared-key authentication needs both the account name and key: set "
            f"{missing[0]} or pass {n(missing[1])}= (or unset both to use Entra ID)"
        )
    if self.batch_account_key:
        _check_base64(self.batch_account_key, C.ENV_BATCH_ACCOUNT_KEY)
    if not storage_given:
        raise ConfigurationError(
            f"a Batch account is configured but no storage account: set "
            f"{C.ENV_STORAGE_ACCOUNT_URL} (Entra ID) or {C.ENV_STORAGE_CONNECTION_STRING}, "
            f"or pass {n('storage_account_url')}= / {n('storage_connection_string')}="
        )
    if not self.storage_connection_string:
        if not self.storage_account_url:
            raise ConfigurationError(
                f"{C.ENV_STORAGE_ACCOUNT_KEY} is set but the storage account is unknown: set "
                f"{C.ENV_STORAGE_ACCOUNT_URL} or {C.ENV_STORAGE_CONNECTION_STRING}"
            )
        if self.storage_account_key:
            _check_base64(self.storage_account_key, C.ENV_STORAGE_ACCOUNT_KEY)
            if not self.storage_account_name:
                raise ConfigurationError(
                    f"cannot tell the storage account name from {C.ENV_STORAGE_ACCOUNT_URL}; "
                    f"use https://NAME.blob.core.windows.net or set "
                    f"{C.ENV_STORAGE_CONNECTION_STRING}"
                )
    elif "AccountName=" not in self.storage_connection_string:
        raise ConfigurationError(
            f"{C.ENV_STORAGE_CONNECTION_STRING} has no AccountName=...; copy the whole "
            "connection string from the portal (Access keys)"
        )

def _validate_pool(self: Settings, n: Callable[[str], str]) -> None:
    """Pool, job and polling settings; `n` names a field as the caller's user knows it."""
    if not _ID_RE.match(self.pool_id):
        raise ConfigurationError(
            f"{n('pool_id')}={self.pool_id!r}: use 1-64 of [A-Za-z0-9_-]")
    if not re.match(r"^[A-Za-z0-9_-]{1,30}$", self.job_id_prefix):
        raise ConfigurationError(
            f"{n('job_id_prefix')}={self.job_id_prefix!r}: use 1-30 of [A-Za-z0-9_-]"
        )
    if not _CONTAINER_RE.match(self.container_name):
        raise ConfigurationError(
            f"{n('container_name')}={self.container_name!r}: use 3-63 of [a-z0-9-], no '--'"
        )
    for name in ("dedicated_nodes", "spot_nodes"):
        value = getattr(self, name)
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ConfigurationError(f"{n(name)}={value!r}: must be an int >= 0")
    if self.pool_nodes == (0, 0):
        raise ConfigurationError(
            f"{n('dedicated_nodes')}=0 and {n('spot_nodes')}=0: the pool needs a node")
    slots = self.task_slots_per_node
    if slots is not None and (not isinstance(slots, int) or not 1 <= slots <= 256):
        raise ConfigurationError(
            f"{n('task_slots_per_node')}={slots!r}: must be an int in 1..256")
    if not isinstance(self.max_task_retries, int) or self.max_task_retries < -1:
        raise ConfigurationError(
            f"{n('max_task_retries')}={self.max_task_retries!r}: must be -1 (unlimited) "
            "or >= 0"
        )
    timeout = self.task_timeout
    if timeout is not None and (
        not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0
    ):
        raise ConfigurationError(
            f"{n('task_timeout')}={timeout!r}: must be seconds > 0 or None")
    poll = self.poll_interval
    if not isinstance(poll, (int, float)) or not math.isfinite(poll) or poll <= 0:
        raise ConfigurationError(f"{n('poll_interval')}={poll!r}: must be seconds > 0")
    idle = self.max_poll_interval
    if idle is not None and (isinstance(idle, bool) or not isinstance(idle, (int, float))
                             or not math.isfinite(idle) or idle < poll):
        raise ConfigurationError(
            f"{n('max_poll_interval')}={idle!r}: must be seconds >= {n('poll_interval')}"
            f" ({poll!r}), or None for the default")
    depth = self.queue_depth
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int)
                              or depth < 0):
        raise ConfigurationError(
            f"{n('queue_depth')}={depth!r}: must be an int >= 0 (tasks queued at Batch "
            "beyond max_workers), or None for 3 per worker")
    target = self.chunk_target
    if target is not None and (isinstance(target, bool) or not isinstance(target, (int, float))
                               or not math.isfinite(target) or target <= 0):
        raise ConfigurationError(
            f"{n('chunk_target')}={target!r}: must be seconds > 0 (how long a map() task "
            "should run), or None for the default")
    if not isinstance(self.echo_output, bool):
        raise ConfigurationError(
            f"{n('echo_output')}={self.echo_output!r}: must be True or False")
    if self.progress != "auto" and not isinstance(self.progress, bool):
        raise ConfigurationError(
            f"{n('progress')}={self.progress!r}: must be \"auto\", True or False")


def _validate_scaling(self: Settings, n: Callable[[str], str]) -> None:
    """Autoscale and the wait for nodes; `n` names a field as the caller's user knows it."""
    most = self.max_nodes
    if most is not None:
        if isinstance(most, bool) or not isinstance(most, int) or most < 1:
            raise ConfigurationError(f"{n('max_nodes')}={most!r}: must be an int >= 1")
        given = (self.dedicated_nodes, self.spot_nodes)
        if any(v is not None for v in given) and most > sum(v or 0 for v in given):
            raise ConfigurationError(
                f"{n('max_nodes')}={most} is more than {n('dedicated_nodes')}="
                f"{given[0] or 0} + {n('spot_nodes')}={given[1] or 0} allow: they are the "
                f"most of each kind; raise one of them, or leave both unset (then all "
                f"{most} nodes are dedicated)")
    idle = self.idle_timeout
    if idle is not None and (isinstance(idle, bool) or not isinstance(idle, (int, float))
                             or not math.isfinite(idle) or idle < C.MIN_IDLE_TIMEOUT):
        raise ConfigurationError(
            f"{n('idle_timeout')}={idle!r}: must be seconds >= {C.MIN_IDLE_TIMEOUT:g} "
            "(Batch samples the pending tasks every 30 s)")
    for name in ("pool_start_timeout", "pool_status_interval"):
        value = getattr(self, name)
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or value <= 0):
            raise ConfigurationError(f"{n(name)}={value!r}: must be seconds > 0")

def _validate_cleanup(self: Settings, n: Callable[[str], str]) -> None:
    """What is kept after the work, and the price of a node-hour."""
    if not isinstance(self.keep_job, bool):
        raise ConfigurationError(f"{n('keep_job')}={self.keep_job!r}: must be True or False")
    for name in ("task_retention", "blob_retention"):
        value = getattr(self, name)
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or math.isnan(value) or value < 0
                or (name == "task_retention" and not math.isfinite(value))):
            never = " (math.inf: never deleted)" if name == "blob_retention" else ""
            raise ConfigurationError(f"{n(name)}={value!r}: must be seconds >= 0{never}")
    wall = self.job_max_wall_clock
    most = C.SAS_MAX_DAYS * 86400 - C.SAS_EXPIRY_MARGIN - 60
    if (isinstance(wall, bool) or not isinstance(wall, (int, float))
            or not 60 <= wall <= most):
        raise ConfigurationError(
            f"{n('job_max_wall_clock')}={wall!r}: must be seconds from 60 to {most:.0f} "
            f"(the task SAS tokens outlive the job by {C.SAS_EXPIRY_MARGIN:.0f} s, within "
            f"the {C.SAS_MAX_DAYS}-day limit of a user delegation key)")
    identity = self.pool_identity
    if identity is not None and not (isinstance(identity, str)
                                     and identity.lower().startswith("/subscriptions/")):
        raise ConfigurationError(
            f"{n('pool_identity')}={identity!r}: must be the resource id of a managed "
            "identity of the pool (/subscriptions/.../userAssignedIdentities/<name>)")
    price = self.node_hour_price
    if price is not None and (isinstance(price, bool) or not isinstance(price, (int, float))
                              or not math.isfinite(price) or price < 0):
        raise ConfigurationError(
            f"{n('node_hour_price')}={price!r}: must be the price of one node-hour, a "
            "number >= 0 (docs/cost.md#usage says where to read it)")

def _validate_registry(self: Settings, n: Callable[[str], str]) -> None:
    login = (self.registry_username, self.registry_password)
    if any(login) and not all(login):
        missing = "registry_password" if self.registry_username else "registry_username"
        raise ConfigurationError(
            f"a private registry login needs both {n('registry_username')} and "
            f"{n('registry_password')}: pass {n(missing)}= (az acr credential show -n "
            "REGISTRY), or registry_identity= for a pool managed identity")
    if (any(login) or self.registry_identity) and not self.registry_server:
        raise ConfigurationError(
            f"registry credentials are given but not the registry: pass "
            f"{n('registry_server')}= (e.g. myregistry.azurecr.io)")
    if self.registry_server and not (any(login) or self.registry_identity):
        raise ConfigurationError(
            f"{n('registry_server')}={self.registry_server!r} needs a login "
            f"({n('registry_username')} and {n('registry_password')}) or "
            f"{n('registry_identity')} (a managed identity of the pool); leave it unset "
            "for a public image")

def _validate_environment(self: Settings, n: Callable[[str], str]) -> None:
    """The nodes' environment: each form checked here, before any request."""
    env = self.environment
    name = n("environment")
    if isinstance(env, tuple):
        for item in env:
            _check_requirement(item, name)
    elif env is None:
        pass
    elif isinstance(env, (str, os.PathLike)):
        text = os.fspath(env)
        if text not in ("auto", "none"):
            _check_environment_file(Path(text), name)
    else:
        raise ConfigurationError(
            f"{name}={env!r}: use \"auto\" (replicate this Python environment), \"none\" "
            "(the pool's image as it is), a list of requirement strings, or the path of "
            "a requirements.txt, pyproject.toml or uv.lock")
    for field, url in [("index_url", self.index_url),
                       *(("extra_index_urls", u) for u in self.extra_index_urls)]:
        if url is not None and not _is_url(url):
            raise ConfigurationError(
                f"{n(field)}: {url!r} is not a package index URL; use "
                "https://HOST/PATH/simple (e.g. https://pypi.org/simple)")
    version = self.python_version
    if version is not None and not re.match(r"^3\.\d{1,2}(\.\d{1,3})?$", str(version)):
        raise ConfigurationError(
            f"{n('python_version')}={version!r}: use 3.X or 3.X.Y (e.g. \"3.11\")")


def _check_base64(value: str, variable: str) -> None:
    try:
        base64.b64decode(value, validate=True)
    except ValueError:
        raise ConfigurationError(
            f"{variable} is not a valid base64 account key; copy the key from the portal "
            "(Keys / Access keys)"
        ) from None


def _check_requirement(item: Any, name: str) -> None:
    from packaging.requirements import InvalidRequirement, Requirement

    if isinstance(item, os.PathLike) or (isinstance(item, str) and item.startswith(
            (".", "/", "~")) and Path(item).expanduser().is_dir()):
        return  # a local project: built into a wheel on the client
    if not isinstance(item, str):
        raise ConfigurationError(f"{name}: {item!r} is not a requirement string")
    try:
        Requirement(item)
    except InvalidRequirement as exc:
        raise ConfigurationError(
            f"{name}: {item!r} is not a requirement (PEP 508): {exc}; write it as pip "
            "would take it, e.g. \"numpy>=1.26\" or \"pandas==2.2.3\"") from None


_ENVIRONMENT_FILES = ("requirements.txt", "pyproject.toml", "uv.lock")


def _check_environment_file(path: Path, name: str) -> None:
    if not path.is_file():
        raise ConfigurationError(
            f"{name}={str(path)!r}: no such file; give the path of a requirements.txt, "
            "pyproject.toml or uv.lock (or \"auto\" / \"none\")")
    if not (path.name in _ENVIRONMENT_FILES or path.suffix == ".txt"):
        raise ConfigurationError(
            f"{name}={str(path)!r}: not a requirements file (*.txt), pyproject.toml or uv.lock")


def _is_url(text: Any) -> bool:
    if not isinstance(text, str):
        return False
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
