"""What a task process sees on a node (docs/dev/emulator-rest.md): directories, environment.

Role: build the node directory layout and the complete process environment of a task,
start task, job preparation or release task, and wrap both into the runner's `RunSpec`;
each kind gets the `AZ_BATCH_*` variables the service gives it (the availability column
of learn.microsoft.com/azure/batch/batch-compute-node-environment-variables; layout:
learn.microsoft.com/azure/batch/files-and-directories). Merge order: base environment ->
job `commonEnvironmentSettings` -> task `environmentSettings` -> the service's
`AZ_BATCH_*` values (service wins); `HOME`/`PWD` = wd; `PATH` gets the shared dir and wd
appended. The base environment is the emulator process's environment without what only
the client has (`PYTHONPATH`, `PYTHONSTARTUP`), with `path_prefix` in front of `PATH`.

Imports: the standard library, `..runner` (data classes) and sibling model modules.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..runner import RunSpec
from .base import name_value_list
from .tasks import Task

CLIENT_ONLY_VARIABLES = ("PYTHONPATH", "PYTHONSTARTUP")
RESERVED_DISK_BYTES = "1000000000"


def base_environment(path_prefix: Sequence[str] = (),
                     environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    for name in CLIENT_ONLY_VARIABLES:
        env.pop(name, None)
    path = [str(p) for p in path_prefix] + [p for p in env.get("PATH", "").split(os.pathsep) if p]
    env["PATH"] = os.pathsep.join(dict.fromkeys(path))
    return env


def node_dirs(root: Path) -> dict[str, Path]:
    return {
        "root": root,
        "shared": root / "shared",
        "startup": root / "startup",
        "mounts": root / "fsmounts",
        "workitems": root / "workitems",
    }


def make_node_dirs(root: Path) -> None:
    dirs = node_dirs(root)
    for key in ("shared", "startup", "mounts", "workitems"):
        dirs[key].mkdir(parents=True, exist_ok=True)


def _identity(user_identity: dict[str, Any] | None) -> tuple[str, str]:
    ui = user_identity or {}
    if ui.get("username"):
        return str(ui["username"]), str(ui["username"])
    auto = ui.get("autoUser") or {}
    scope = str(auto.get("scope", "pool")).lower()
    level = str(auto.get("elevationLevel", "nonadmin")).lower()
    identity = ("Pool" if scope == "pool" else "Task") + ("Admin" if level == "admin"
                                                          else "NonAdmin")
    return "_azbatch", identity


def _node_values(account: tuple[str, str], pool_id: str, node_id: str, dedicated: bool,
                 root: Path) -> dict[str, str]:
    dirs = node_dirs(root)
    return {
        "AZ_BATCH_ACCOUNT_NAME": account[0],
        "AZ_BATCH_ACCOUNT_URL": account[1],
        "AZ_BATCH_POOL_ID": pool_id,
        "AZ_BATCH_NODE_ID": node_id,
        "AZ_BATCH_NODE_IS_DEDICATED": "true" if dedicated else "false",
        "AZ_BATCH_NODE_ROOT_DIR": str(root),
        "AZ_BATCH_NODE_SHARED_DIR": str(dirs["shared"]),
        "AZ_BATCH_NODE_STARTUP_DIR": str(dirs["startup"]),
        "AZ_BATCH_NODE_STARTUP_WORKING_DIR": str(dirs["startup"] / "wd"),
        "AZ_BATCH_NODE_MOUNTS_DIR": str(dirs["mounts"]),
        "AZ_BATCH_RESERVED_EPHEMERAL_DISK_SPACE_BYTES": RESERVED_DISK_BYTES,
    }


def _finish(env: dict[str, str], service: dict[str, str], wd: Path, shared: Path) -> dict[str, str]:
    env.update(service)
    env["HOME"] = env["PWD"] = str(wd)
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p]
    env["PATH"] = os.pathsep.join([*path, str(shared), str(wd)])
    return env


def task_dir(root: Path, job_id: str, task_id: str) -> Path:
    return root / "workitems" / job_id / "job-1" / task_id


def _prep_dirs(root: Path, job_id: str, job_prep_id: str | None) -> dict[str, str]:
    """AZ_BATCH_JOB_PREP_DIR / _WORKING_DIR: every task of a job with a preparation task
    except the start and preparation tasks (learn.microsoft.com/azure/batch/
    batch-compute-node-environment-variables)."""
    if job_prep_id is None:
        return {}
    directory = task_dir(root, job_id, job_prep_id)
    return {"AZ_BATCH_JOB_PREP_DIR": str(directory),
            "AZ_BATCH_JOB_PREP_WORKING_DIR": str(directory / "wd")}


def task_run_spec(*, run_id: str, base_env: Mapping[str, str], account: tuple[str, str],
                  pool_id: str, node_id: str, dedicated: bool, root: Path,
                  job_common_env: list[dict[str, Any]], task: Task,
                  job_prep_id: str | None = None) -> RunSpec:
    directory = task_dir(root, task.job_id, task.id)
    wd = directory / "wd"
    user, identity = _identity(task.spec.get("userIdentity"))
    env = dict(base_env)
    env.update(name_value_list(job_common_env))
    env.update(name_value_list(task.spec.get("environmentSettings")))
    service = _node_values(account, pool_id, node_id, dedicated, root)
    service.update({
        "AZ_BATCH_JOB_ID": task.job_id,
        "AZ_BATCH_TASK_ID": task.id,
        "AZ_BATCH_TASK_DIR": str(directory),
        "AZ_BATCH_TASK_WORKING_DIR": str(wd),
        "AZ_BATCH_CERTIFICATES_DIR": str(directory / "certs"),
        "AZ_BATCH_TASK_USER": user,
        "AZ_BATCH_TASK_USER_IDENTITY": identity,
        "AZ_BATCH_TASK_RESERVED_EPHEMERAL_DISK_SPACE_BYTES": RESERVED_DISK_BYTES,
        **_prep_dirs(root, task.job_id, job_prep_id),
    })
    return RunSpec(
        run_id=run_id,
        command_line=task.command_line,
        task_dir=directory,
        env=_finish(env, service, wd, node_dirs(root)["shared"]),
        resource_files=list(task.spec.get("resourceFiles") or []),
        output_files=list(task.spec.get("outputFiles") or []),
        max_wall_clock_seconds=task.max_wall_clock,
    )


def start_task_run_spec(*, run_id: str, base_env: Mapping[str, str], account: tuple[str, str],
                        pool_id: str, node_id: str, dedicated: bool, root: Path,
                        start_task: dict[str, Any]) -> RunSpec:
    directory = node_dirs(root)["startup"]
    wd = directory / "wd"
    user, identity = _identity(start_task.get("userIdentity"))
    env = dict(base_env)
    env.update(name_value_list(start_task.get("environmentSettings")))
    service = _node_values(account, pool_id, node_id, dedicated, root)
    service.update({"AZ_BATCH_TASK_DIR": str(directory), "AZ_BATCH_TASK_WORKING_DIR": str(wd),
                    "AZ_BATCH_TASK_USER": user, "AZ_BATCH_TASK_USER_IDENTITY": identity})
    return RunSpec(
        run_id=run_id,
        command_line=str(start_task["commandLine"]),
        task_dir=directory,
        env=_finish(env, service, wd, node_dirs(root)["shared"]),
        resource_files=list(start_task.get("resourceFiles") or []),
    )


def job_task_run_spec(*, kind: str, run_id: str, base_env: Mapping[str, str],
                      account: tuple[str, str], pool_id: str, node_id: str, dedicated: bool,
                      root: Path, job_id: str, job_common_env: list[dict[str, Any]],
                      task_spec: dict[str, Any], task_id: str, job_prep_id: str,
                      max_wall_clock: float | None) -> RunSpec:
    """A job preparation (`kind` "prep") or release ("release") task: a task of the job in
    `<job dir>/<its id>`, with the job's common environment; the release task also sees
    the preparation task's directories."""
    directory = task_dir(root, job_id, task_id)
    wd = directory / "wd"
    user, identity = _identity(task_spec.get("userIdentity"))
    env = dict(base_env)
    env.update(name_value_list(job_common_env))
    env.update(name_value_list(task_spec.get("environmentSettings")))
    service = _node_values(account, pool_id, node_id, dedicated, root)
    service.update({
        "AZ_BATCH_JOB_ID": job_id,
        "AZ_BATCH_TASK_ID": task_id,
        "AZ_BATCH_TASK_DIR": str(directory),
        "AZ_BATCH_TASK_WORKING_DIR": str(wd),
        "AZ_BATCH_CERTIFICATES_DIR": str(directory / "certs"),
        "AZ_BATCH_TASK_USER": user,
        "AZ_BATCH_TASK_USER_IDENTITY": identity,
        "AZ_BATCH_TASK_RESERVED_EPHEMERAL_DISK_SPACE_BYTES": RESERVED_DISK_BYTES,
    })
    if kind == "release":
        service.update(_prep_dirs(root, job_id, job_prep_id))
    return RunSpec(
        run_id=run_id,
        command_line=str(task_spec["commandLine"]),
        task_dir=directory,
        env=_finish(env, service, wd, node_dirs(root)["shared"]),
        resource_files=list(task_spec.get("resourceFiles") or []),
        max_wall_clock_seconds=max_wall_clock,
    )
