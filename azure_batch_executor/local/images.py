"""Node images of the local stack: which `python3` the emulator's nodes run.

Role: turn a node image name into the directories the Batch emulator puts first on its
nodes' `PATH` (`BatchEmulator(path_prefix=..., container_path_prefix=...)`):

- ``client`` (the default): the directory of the running interpreter, so `python3` on a
  node is the client's own interpreter with every package it has. It stands in for an
  image built from the client's environment, what a ``container_image`` pool runs
  (``azure-batch-executor dockerfile``).
- ``bare``: a stock Batch VM image (Ubuntu with python3 and nothing else): a virtual
  environment made from the host's interpreter without its site-packages and without
  pip, so `python3` on a node imports the standard library only. Its Python version is
  the host's. It is made once per interpreter and cached under the user's cache
  directory (``$XDG_CACHE_HOME``, default ``~/.cache``,
  ``azure-batch-executor/node-images/``). Commands run "in a container" (tasks with
  ``containerSettings``) still get the client image: that is what their image holds.

Imports: the standard library only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import venv
from pathlib import Path

NODE_IMAGES = ("client", "bare")


def client_image_path() -> tuple[str, ...]:
    """`PATH` entries of the client image: the running interpreter's directory."""
    return (str(Path(sys.executable).parent),)


def image_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "azure-batch-executor" / "node-images"


def bare_venv(cache_dir: Path | None = None) -> Path:
    """The bare image's virtual environment, made on first use (atomically: a copy made
    by another process at the same time is as good as ours)."""
    base = getattr(sys, "_base_executable", sys.executable)  # not the venv we may run in
    key = hashlib.sha256(f"{os.path.realpath(base)}\n{sys.version}".encode()).hexdigest()[:12]
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    target = (cache_dir or image_cache_dir()) / f"bare-py{version}-{key}"
    if (target / "bin" / "python3").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".bare-", dir=target.parent))
    try:
        # = `python -m venv --without-pip` (no --system-site-packages): a fresh sys.path
        venv.EnvBuilder(system_site_packages=False, with_pip=False, symlinks=True,
                        clear=True).create(work / "venv")
        try:
            os.rename(work / "venv", target)
        except OSError:  # made meanwhile by another process
            if not (target / "bin" / "python3").exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def bare_image_path(cache_dir: Path | None = None) -> tuple[str, ...]:
    """`PATH` entries of the bare image: its `bin` (`python3`, `python`)."""
    return (str(bare_venv(cache_dir) / "bin"),)


def image_paths(node_image: str, cache_dir: Path | None = None
                ) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """(path_prefix, container_path_prefix) of a `BatchEmulator` for `node_image`."""
    if node_image == "client":
        return client_image_path(), None
    if node_image == "bare":
        return bare_image_path(cache_dir), client_image_path()
    raise ValueError(f"node_image must be one of {', '.join(NODE_IMAGES)}, not {node_image!r}")
