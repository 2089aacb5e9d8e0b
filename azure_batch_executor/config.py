"""Settings: what the executor was asked to use, resolved and checked before any request.

Role: one frozen dataclass, `Settings`, resolved per field from the keyword
argument, else the environment (the seed's variable names), else a default.
With no Batch account configured at all the settings say ``local=True`` and the
executor fills in the local stack. Half a configuration is a `ConfigurationError`
naming the variable or argument to set. Secrets never appear in a repr.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import constants as C
from .errors import ConfigurationError

_SECRETS = ("batch_account_key", "storage_account_key", "storage_connection_string",
            "registry_password")
_MASK = "***"
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CONTAINER_RE = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")

# field name -> environment variable, for the account fields that may come from the
# environment (the seed's names)
ENV_NAMES = {
    "batch_account_url": C.ENV_BATCH_ACCOUNT_URL,
    "batch_account_name": C.ENV_BATCH_ACCOUNT_NAME,
    "batch_account_key": C.ENV_BATCH_ACCOUNT_KEY,
    "storage_account_url": C.ENV_STORAGE_ACCOUNT_URL,
    "storage_account_key": C.ENV_STORAGE_ACCOUNT_KEY,
    "storage_connection_string": C.ENV_STORAGE_CONNECTION_STRING,
}
# field name -> environment variable, for the other settings that may come from it
SETTING_ENV_NAMES = {
    "environment": C.ENV_ENVIRONMENT,
    "registry_server": "REGISTRY_SERVER",  # the SuperBatch seed's names
    "registry_username": "REGISTRY_USERNAME",
    "registry_password": "REGISTRY_PASSWORD",
    "registry_identity": "REGISTRY_IDENTITY",
    "pool_identity": C.ENV_POOL_IDENTITY,
    "progress": "AZURE_BATCH_EXECUTOR_PROGRESS",
}
_PROGRESS_WORDS = {"auto": "auto", "1": True, "true": True, "yes": True, "on": True,
                   "0": False, "false": False, "no": False, "off": False}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Resolved executor settings. Build with `Settings.resolve(**kwargs)`."""

    batch_account_url: str | None = None
    batch_account_name: str | None = None
    batch_account_key: str | None = dataclasses.field(default=None, repr=False)
    storage_account_url: str | None = None
    storage_account_key: str | None = dataclasses.field(default=None, repr=False)
    storage_connection_string: str | None = dataclasses.field(default=None, repr=False)
    pool_id: str = C.DEFAULT_POOL_ID
    vm_size: str = C.DEFAULT_VM_SIZE
    dedicated_nodes: int | None = None
    spot_nodes: int | None = None
    task_slots_per_node: int | None = None
    container_image: str | None = None
    # A private registry for container_image: a login (username + password), or a managed
    # identity of the pool (its resource id) that may pull from it.
    registry_server: str | None = None
    registry_username: str | None = None
    registry_password: str | None = dataclasses.field(default=None, repr=False)
    registry_identity: str | None = None
    # A managed identity of the pool (its resource id) with read and write access to the
    # storage container: task definitions then name it instead of carrying SAS tokens
    # (docs/security.md). The pool must have it: assign it where the pool is made.
    pool_identity: str | None = None
    delete_pool_when_done: bool = False
    # A pool the executor creates autoscales on its pending tasks (docs/cost.md): up to
    # `max_nodes` (default: dedicated_nodes + spot_nodes), none after `idle_timeout` s
    # without a pending task. On the process-wide local stack it keeps a fixed size unless
    # one of the two is given (`autoscale`).
    max_nodes: int | None = None
    idle_timeout: float | None = None
    # While no node of the pool can run the job's tasks: a status line every
    # `pool_status_interval` s; after `pool_start_timeout` s the waiting futures fail.
    pool_start_timeout: float = C.DEFAULT_POOL_START_TIMEOUT
    pool_status_interval: float = C.DEFAULT_POOL_STATUS_INTERVAL
    container_name: str = C.DEFAULT_CONTAINER_NAME
    job_id_prefix: str = C.DEFAULT_JOB_ID_PREFIX
    python_command: str | None = None
    task_timeout: float | None = None
    # The job's maximum wall-clock time (seconds): Batch ends the job then, and the SAS
    # tokens of its tasks expire an hour later (docs/security.md).
    job_max_wall_clock: float = C.JOB_MAX_WALL_CLOCK_DAYS * 86400.0
    max_task_retries: int = 0
    poll_interval: float = C.DEFAULT_POLL_INTERVAL
    # The cap of the idle backoff (None: 10 s on Azure, 2 s on the local stack; engine/watch.py)
    max_poll_interval: float | None = None
    echo_output: bool = True  # a task's stdout/stderr echoed on the client's
    # A tqdm bar of the tasks done (docs/logging.md#progress): "auto" (on when stderr is a
    # terminal or in a notebook), True or False
    progress: Any = "auto"
    # Cleanup and usage (docs/cost.md): a normal shutdown deletes the job unless `keep_job`;
    # a task's directory stays `task_retention` s on its node; the job's blobs stay
    # `blob_retention` s after shutdown (0: deleted then; math.inf: never); with a
    # `node_hour_price`, usage() estimates the cost of the node time.
    keep_job: bool = False
    task_retention: float = C.DEFAULT_TASK_RETENTION
    blob_retention: float = C.DEFAULT_BLOB_RETENTION
    node_hour_price: float | None = None
    # What the nodes run the worker with (docs/environments.md): "auto" (the client's
    # Python and installed distributions), "none" (the pool's image as it is), requirement
    # strings, or a requirements.txt / pyproject.toml / uv.lock path. None: "auto", unless
    # the nodes already are the client's environment (a container_image, a python_command
    # of the user's, a local stack whose nodes are the client's interpreter).
    environment: Any = None
    index_url: str | None = None  # the package index the nodes install from (default PyPI)
    extra_index_urls: tuple[str, ...] = ()
    python_version: str | None = None  # the nodes' Python (default: the client's)
    local: bool = False  # no Batch account configured: use the local stack

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRETS and value is not None:
                parts.append(f"{f.name}={_MASK!r}")
            else:
                parts.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(parts)})"

    # ------------------------------------------------------------------ resolution
    @classmethod
    def names(cls) -> list[str]:
        """The setting names accepted as keyword arguments."""
        return [f.name for f in dataclasses.fields(cls) if f.name != "local"]

    @classmethod
    def resolve(cls, env: Mapping[str, str] | None = None, *,
                argument_names: Mapping[str, str] | None = None, **kwargs: Any) -> Settings:
        """Resolve keyword arguments, then `env` (default: os.environ), then defaults.

        Errors name a setting by its keyword, or by its name in `argument_names` (the
        SuperBatch client's arguments: ``{"pool_id": "POOL_ID", ...}``)."""
        valid = cls.names()
        unknown = sorted(set(kwargs) - set(valid))
        if unknown:
            raise TypeError(
                f"AzureBatchExecutor() got unexpected keyword argument(s) {', '.join(unknown)}; "
                f"valid settings are: {', '.join(valid)}"
            )
        env = os.environ if env is None else env
        values: dict[str, Any] = {k: v for k, v in kwargs.items() if v is not None}
        for name, var in {**ENV_NAMES, **SETTING_ENV_NAMES}.items():
            if name not in values and env.get(var):
                values[name] = env[var]
        progress = values.get("progress")
        if isinstance(progress, str):  # "auto", or a word from the environment
            values["progress"] = _PROGRESS_WORDS.get(progress.strip().lower(), progress)
        for name in ("environment", "extra_index_urls"):  # hashable, as a setting must be
            if isinstance(values.get(name), list):
                values[name] = tuple(values[name])
        settings = cls(**values)
        settings._validate(argument_names or {})
        if not settings._any_account():
            settings = dataclasses.replace(settings, local=True)
        return settings

    def with_local_stack(
        self,
        *,
        batch_account_url: str,
        batch_account_name: str,
        batch_account_key: str,
        storage_connection_string: str,
        nodes: int,
        slots_per_node: int,
        node_image: str = "client",
    ) -> Settings:
        """These settings completed by the local stack's endpoints; pool sized from the stack.

        On nodes that stand in for an image of the client's environment (`node_image`
        "client") the worker runs with the client's interpreter and, unless asked, no
        environment is prepared; on "bare" nodes the environment is prepared as on Azure."""
        client = node_image == "client"
        sized = self.max_nodes is not None  # the pool's size is asked: not the stack's
        return dataclasses.replace(
            self,
            batch_account_url=batch_account_url,
            batch_account_name=batch_account_name,
            batch_account_key=batch_account_key,
            storage_connection_string=storage_connection_string,
            dedicated_nodes=(nodes if self.dedicated_nodes is None and not sized
                             else self.dedicated_nodes),
            spot_nodes=0 if self.spot_nodes is None and not sized else self.spot_nodes,
            task_slots_per_node=(
                slots_per_node if self.task_slots_per_node is None else self.task_slots_per_node
            ),
            python_command=self.python_command or (sys.executable if client else None),
            environment=("none" if client and self.environment is None
                         else self.environment),
        )

    # ------------------------------------------------------------------ derived values
    @property
    def pool_nodes(self) -> tuple[int, int]:
        """(dedicated, spot) target node counts; one dedicated node when neither is given."""
        dedicated, spot = self.dedicated_nodes, self.spot_nodes
        if dedicated is None and spot is None:
            return 1, 0
        return dedicated or 0, spot or 0

    @property
    def autoscale(self) -> bool:
        """Whether a pool the executor creates autoscales: always on an account (Azure, or a
        local stack given by its URL), on the process-wide local stack only when `max_nodes`
        or `idle_timeout` is given (its nodes cost nothing and its tests need them at once)."""
        return not self.local or self.max_nodes is not None or self.idle_timeout is not None

    @property
    def node_caps(self) -> tuple[int, int]:
        """(dedicated, spot): the most nodes of each kind an autoscaling pool grows to,
        dedicated first. `dedicated_nodes` and `spot_nodes` read as maxima; `max_nodes`
        alone means that many dedicated nodes."""
        if self.max_nodes is not None and self.dedicated_nodes is None \
                and self.spot_nodes is None:
            return self.max_nodes, 0
        return self.pool_nodes

    @property
    def most_nodes(self) -> int:
        """The most nodes (dedicated + spot) a pool the executor creates has."""
        if not self.autoscale:
            return sum(self.pool_nodes)
        total = sum(self.node_caps)
        return total if self.max_nodes is None else min(total, self.max_nodes)

    @property
    def idle_seconds(self) -> float:
        """`idle_timeout`, or its default."""
        return C.DEFAULT_IDLE_TIMEOUT if self.idle_timeout is None else float(self.idle_timeout)

    @property
    def slots_per_node(self) -> int:
        return self.task_slots_per_node or 1

    @property
    def command(self) -> str:
        return self.python_command or C.DEFAULT_PYTHON_COMMAND

    @property
    def batch_account(self) -> str:
        """The Batch account's name: the setting, else the first label of its URL."""
        if self.batch_account_name:
            return self.batch_account_name
        host = urlsplit(self.batch_account_url or "").hostname or ""
        return host.split(".")[0] if host and not re.match(r"^[0-9.]+$", host) \
            else "BATCH_ACCOUNT"

    @property
    def storage_account_name(self) -> str | None:
        """The storage account name taken from `storage_account_url` (None if not derivable)."""
        if not self.storage_account_url:
            return None
        parts = urlsplit(self.storage_account_url)
        host = parts.hostname or ""
        if host and not re.match(r"^[0-9.]+$", host) and host != "localhost":
            return host.split(".")[0]
        path = parts.path.strip("/")
        return path.split("/")[0] if path else None

    # ------------------------------------------------------------------ checks
    def _any_account(self) -> bool:
        return any(getattr(self, name) for name in ENV_NAMES)

    def _validate(self, names: Mapping[str, str]) -> None:
        self._validate_accounts(lambda field: names.get(field, field))
        self._validate_pool(lambda field: names.get(field, field))
        self._validate_scaling(lambda field: names.get(field, field))
        self._validate_environment(lambda field: names.get(field, field))
        self._validate_registry(lambda field: names.get(field, field))
        self._validate_cleanup(lambda field: names.get(field, field))

    def _validate_accounts(self, n: Callable[[str], str]) -> None:
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

    def _validate_pool(self, n: Callable[[str], str]) -> None:
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
        if not isinstance(self.echo_output, bool):
            raise ConfigurationError(
                f"{n('echo_output')}={self.echo_output!r}: must be True or False")
        if self.progress != "auto" and not isinstance(self.progress, bool):
            raise ConfigurationError(
                f"{n('progress')}={self.progress!r}: must be \"auto\", True or False")


    def _validate_scaling(self, n: Callable[[str], str]) -> None:
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

    @property
    def registry(self) -> dict[str, Any] | None:
        """The Batch `ContainerRegistryReference` of the private registry, or None."""
        if not self.registry_server:
            return None
        if self.registry_identity:
            return {"registryServer": self.registry_server,
                    "identityReference": {"resourceId": self.registry_identity}}
        return {"registryServer": self.registry_server, "username": self.registry_username,
                "password": self.registry_password}

    def _validate_cleanup(self, n: Callable[[str], str]) -> None:
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

    def _validate_registry(self, n: Callable[[str], str]) -> None:
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

    def _validate_environment(self, n: Callable[[str], str]) -> None:
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


def nested_task(env: Mapping[str, str] | None = None) -> str | None:
    """The id of the Batch task this process runs in (the worker sets ``AZURE_BATCH_EXECUTOR_TASK``
    while user code runs on a node), or None: not on a node, or nesting allowed by
    ``AZURE_BATCH_EXECUTOR_ALLOW_NESTED=1`` (also true/yes/on)."""
    env = os.environ if env is None else env
    task = env.get(C.TASK_ENV)
    if not task:
        return None
    if env.get(C.ENV_ALLOW_NESTED, "").strip().lower() in ("1", "true", "yes", "on"):
        return None
    return task


def iso_duration(seconds: float) -> str:
    """ISO 8601 duration for Batch (e.g. 90.5 -> 'PT1M30.5S')."""
    whole = int(seconds)
    frac = seconds - whole
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    time = ""
    if hours:
        time += f"{hours}H"
    if minutes:
        time += f"{minutes}M"
    if secs or frac or not (days or hours or minutes):
        time += f"{secs + frac:g}S" if frac else f"{secs}S"
    return out + ("T" + time if time else "")


def human_duration(seconds: float) -> str:
    """A duration as a log line says it: 45 -> '45s', 90 -> '1m30s', 600 -> '10m',
    3720 -> '1h02m', 2.5 -> '2.5s'."""
    if seconds < 10:
        return f"{seconds:.1f}".rstrip("0").rstrip(".") + "s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if not minutes:
        return f"{secs}s"
    return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"


def mask_secrets(text: str, settings: Settings | None = None) -> str:
    """`text` with SAS signatures, account keys and connection-string keys replaced by ***."""
    text = re.sub(r"(?i)(sig=)[^&\s'\"]+", r"\1" + _MASK, text)
    text = re.sub(r"(?i)(AccountKey=)[^;\s'\"]+", r"\1" + _MASK, text)
    if settings is not None:
        for name in _SECRETS:
            value = getattr(settings, name)
            if value:
                text = text.replace(value, _MASK)
    return text


def first_line(exc: BaseException) -> str:
    """The first line of `exc`'s message (its type name when it has none), secrets masked:
    what a log line or a wrapped error says of a service error."""
    text = str(exc)
    return mask_secrets(text.splitlines()[0] if text else type(exc).__name__)


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
