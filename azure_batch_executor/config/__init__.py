"""Settings: what the executor was asked to use, resolved and checked before any request.

Role: one frozen dataclass, `Settings`, resolved per field from the keyword
argument, else the environment (the seed's variable names), else a default.
With no Batch account configured at all the settings say ``local=True`` and the
executor fills in the local stack. Half a configuration is a `ConfigurationError`
naming the variable or argument to set. Secrets never appear in a repr.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .. import constants as C
from .text import MASK, SECRETS, first_line, human_duration, iso_duration, mask_secrets
from .validation import validate

__all__ = ["ENV_NAMES", "SETTING_ENV_NAMES", "Settings", "first_line", "human_duration",
           "iso_duration", "mask_secrets", "nested_task"]


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
    # Tasks added to Batch's queue beyond max_workers, so that a slot that frees starts its
    # next task at once (None: 3 per worker; 0: add a task only when a slot is free)
    queue_depth: int | None = None
    # map(chunksize=None): chunks sized so that a task runs about this many seconds (None:
    # 1 s on the local stack, 30 s on Azure, where a task's fixed cost is seconds)
    chunk_target: float | None = None
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
            if f.name in SECRETS and value is not None:
                parts.append(f"{f.name}={MASK!r}")
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

    def _any_account(self) -> bool:
        return any(getattr(self, name) for name in ENV_NAMES)

    def _validate(self, names: Mapping[str, str]) -> None:
        validate(self, names)

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
