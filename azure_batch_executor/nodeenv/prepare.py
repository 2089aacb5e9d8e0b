"""Prepare a node's environment: the job preparation task, ``python3 abx_prepare.py``.

Role: shipped to the node as a resource file, like the worker, and run by Batch once per
node before the job's first task there (a job preparation task, ``waitForSuccess``). It
needs only what a stock Batch Linux image has: python3, no pip, no venv module.

1. If ``$AZ_BATCH_NODE_SHARED_DIR/abx/envs/<env id>`` is ready (an earlier job with the
   same lock made it), nothing to do. Concurrent preparations on one node wait on a file
   lock, so an environment is made once.
2. Bootstrap uv (`ABX_UV_VERSION`) from the package index: its wheel is a zip holding the
   ``uv`` binary; it is checked against the index's sha256 and kept in the shared
   directory for the next environments.
3. ``uv venv --python <the client's version>``: uv finds that Python on the node, or
   downloads it (``ABX_PYTHON_DOWNLOADS=never`` forbids that: the local stack uses the
   host's interpreters).
4. ``uv pip install`` the lock (``requirements.txt``) and the shipped wheels (``*.whl``),
   with uv's cache in the shared directory.
5. Mark the environment ready. The tasks run the worker with its ``bin/python``.

A failure prints ``abx-prepare: FAILED at <step>: <reason>`` on stderr and exits with the
step's code (3 bootstrap uv, 4 the interpreter, 5 the packages); the client reads that
and the stderr tail. Environment: ``ABX_ENV_ID``, ``ABX_PYTHON_VERSION``,
``ABX_INDEX_URL``, ``ABX_EXTRA_INDEX_URLS`` (space-separated), ``ABX_UV_VERSION``,
``ABX_PYTHON_DOWNLOADS``, ``ABX_CACHE_DIR`` (where uv and its cache live, if not in the
shared directory). It runs on the node: the standard library only.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import io
import json
import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import zipfile

DEFAULT_INDEX = "https://pypi.org/simple"
STEP_CODES = {"bootstrap uv": 3, "create the interpreter": 4, "install the packages": 5}


class Failed(Exception):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(reason)
        self.step = step


def say(text: str) -> None:
    print(f"abx-prepare: {text}", flush=True)


def root() -> str:
    shared = os.environ.get("AZ_BATCH_NODE_SHARED_DIR") or os.path.expanduser("~/.abx-node")
    return os.path.join(shared, "abx")


# ------------------------------------------------------------------------------ uv
def _index_files(index: str, project: str) -> list[tuple[str, str, str]]:
    """(file name, url, sha256) of `project`'s files on a PEP 503/691 simple index."""
    url = index.rstrip("/") + f"/{project}/"
    request = urllib.request.Request(url, headers={
        "Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        body = reply.read()
        kind = reply.headers.get("Content-Type", "")
    if "json" in kind:
        files = json.loads(body)["files"]
        return [(f["filename"], f["url"], f.get("hashes", {}).get("sha256", ""))
                for f in files]
    out = []
    for href, name in re.findall(r'<a[^>]+href="([^"]+)"[^>]*>([^<]+)</a>', body.decode()):
        link = urllib.parse.urljoin(url, href)
        digest = link.split("#sha256=", 1)[1] if "#sha256=" in link else ""
        out.append((name.strip(), link.split("#", 1)[0], digest))
    return out


def _wheel_for_this_node(files: list[tuple[str, str, str]], version: str
                         ) -> tuple[str, str, str]:
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    wanted = [f for f in files if f[0].startswith(f"uv-{version}-") and f[0].endswith(".whl")
              and machine in f[0] and "linux" in f[0]]
    manylinux = [f for f in wanted if "manylinux" in f[0]]
    chosen = (manylinux or wanted)
    if not chosen:
        raise Failed("bootstrap uv", f"the index has no uv {version} wheel for Linux "
                                     f"{machine}")
    return chosen[0]


def cache_root() -> str:
    """Where uv and its package cache are kept: the node's shared directory, or
    ``ABX_CACHE_DIR`` (the local stack's, which outlives one stack)."""
    return os.environ.get("ABX_CACHE_DIR") or root()


def bootstrap_uv(version: str, indexes: list[str]) -> str:
    """The path of uv `version` in the cache, downloaded if absent."""
    home = os.path.join(cache_root(), "uv", version)
    binary = os.path.join(home, "uv")
    if os.access(binary, os.X_OK):
        return binary
    os.makedirs(home, exist_ok=True)
    errors = []
    for index in indexes:
        try:
            name, url, digest = _wheel_for_this_node(_index_files(index, "uv"), version)
            with urllib.request.urlopen(url, timeout=300) as reply:
                data = reply.read()
        except Failed:
            raise
        except Exception as exc:  # noqa: BLE001 - try the next index, then report them all
            errors.append(f"{index}: {type(exc).__name__}: {exc}")
            continue
        if digest and hashlib.sha256(data).hexdigest() != digest:
            raise Failed("bootstrap uv", f"{name} from {index} does not match its sha256")
        with zipfile.ZipFile(io.BytesIO(data)) as wheel:
            member = next((m for m in wheel.namelist() if m.endswith(".data/scripts/uv")), "")
            if not member:
                raise Failed("bootstrap uv", f"{name} holds no uv binary")
            tmp = binary + f".{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(wheel.read(member))
        os.chmod(tmp, os.stat(tmp).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        os.replace(tmp, binary)
        say(f"uv {version} bootstrapped from {index} ({len(data) // 1024} KiB)")
        return binary
    raise Failed("bootstrap uv", "could not download uv from any package index ("
                 + "; ".join(errors) + "); check the nodes' outbound network or set "
                 "index_url to a mirror they reach")


# ------------------------------------------------------------------------------ steps
def _run(step: str, command: list[str], env: dict[str, str]) -> None:
    say(f"{step}: {' '.join(command)}")
    done = subprocess.run(command, env=env, stdout=sys.stdout, stderr=subprocess.PIPE,
                          text=True, check=False)
    if done.stderr:
        sys.stderr.write(done.stderr)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise Failed(step, f"`{command[1]} {command[2]}` exited with {done.returncode}:\n"
                           f"{tail}")


def prepare(env_id: str, python_version: str, indexes: list[str], uv_version: str,
            downloads: str, wd: str) -> str:
    """Make environment `env_id` (or find it made); return its interpreter."""
    envs = os.path.join(root(), "envs")
    os.makedirs(envs, exist_ok=True)
    target = os.path.join(envs, env_id)
    python = os.path.join(target, "bin", "python")
    ready = os.path.join(target, ".abx-ready")
    with open(os.path.join(envs, env_id + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one preparation per environment on this node
        if os.path.exists(ready):
            say(f"environment {env_id} is ready (made by an earlier job)")
            return python
        shutil.rmtree(target, ignore_errors=True)  # a failed earlier attempt
        uv = bootstrap_uv(uv_version, indexes)
        env = dict(os.environ, UV_CACHE_DIR=os.path.join(cache_root(), "uv-cache"),
                   UV_PYTHON_INSTALL_DIR=os.path.join(root(), "pythons"),
                   UV_PYTHON_DOWNLOADS=downloads, UV_NO_PROGRESS="1")
        env.pop("VIRTUAL_ENV", None)
        versions = [python_version]
        if python_version.count(".") == 2:  # the exact patch where available, else X.Y
            versions.append(python_version.rsplit(".", 1)[0])
        for n, version in enumerate(versions):
            try:
                _run("create the interpreter", [uv, "venv", "--python", version, "--quiet",
                                                target], env)
                break
            except Failed:
                if n == len(versions) - 1:
                    raise
        install = [uv, "pip", "install", "--python", python, "--index-url", indexes[0]]
        for extra in indexes[1:]:
            install += ["--extra-index-url", extra]
        install += ["-r", os.path.join(wd, "requirements.txt")]
        install += sorted(glob.glob(os.path.join(wd, "*.whl")))
        started = time.monotonic()
        _run("install the packages", install, env)
        with open(ready, "w") as f:
            f.write(f"{time.time()}\n")
        say(f"environment {env_id} made in {time.monotonic() - started:.1f} s")
    return python


def main() -> int:
    env_id = os.environ["ABX_ENV_ID"]
    indexes = [os.environ.get("ABX_INDEX_URL") or DEFAULT_INDEX]
    indexes += os.environ.get("ABX_EXTRA_INDEX_URLS", "").split()
    try:
        prepare(env_id, os.environ["ABX_PYTHON_VERSION"], indexes,
                os.environ["ABX_UV_VERSION"],
                os.environ.get("ABX_PYTHON_DOWNLOADS", "automatic"), os.getcwd())
    except Failed as exc:
        sys.stderr.write(f"abx-prepare: FAILED at {exc.step}: {exc}\n")
        return STEP_CODES.get(exc.step, 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
