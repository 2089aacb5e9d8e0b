"""The environment the nodes run the worker in, made on the client: a content-addressed lock.

Role: `make_lock(settings)` turns the `environment` setting into an `EnvironmentLock`:

- ``"auto"``: the client's Python version and every distribution installed here, at its
  version (``importlib.metadata``). The user's local and editable projects (PEP 610
  ``direct_url.json`` with a ``file:`` URL) are built into wheels here and shipped; this
  package itself when it runs from a source tree (the worker does not need it), pip,
  setuptools and wheel, and distributions whose wheel tags name only Windows or macOS
  are left out, with one warning line naming them.
- requirement strings (and paths of local project directories, built into wheels
  here), a ``requirements.txt``, a ``pyproject.toml`` (its
  ``[project].dependencies``) or a ``uv.lock`` (its pinned packages): those, plus
  cloudpickle pinned to the client's (the worker needs it).
- ``"none"``: no lock; the pool's image is used as it is.

`EnvironmentLock.env_id` is a sha256 of everything that makes the environment (Python
version, requirements, wheels, indexes): equal locks share one environment on a node.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata as metadata
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import cloudpickle

from ..config import Settings
from ..errors import ConfigurationError

log = logging.getLogger(__name__)

OWN_DISTRIBUTION = "azure-batch-executor"
_NOT_NEEDED = frozenset({"pip", "setuptools", "wheel", "distribute"})


@dataclasses.dataclass(frozen=True)
class EnvironmentLock:
    """What a node installs: `requirements` (requirements.txt text, pinned where known),
    `wheels` (file name -> bytes, installed from their blobs), the Python version, and
    the indexes. `env_id` names it."""

    python_version: str
    requirements: str
    wheels: tuple[tuple[str, bytes], ...] = ()
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    left_out: tuple[str, ...] = ()

    @property
    def env_id(self) -> str:
        digest = hashlib.sha256()
        for part in (self.python_version, self.requirements, self.index_url or "",
                     *self.extra_index_urls):
            digest.update(part.encode() + b"\0")
        for name, data in self.wheels:
            digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
        return digest.hexdigest()[:20]


def make_lock(settings: Settings, distributions: Iterable[Any] | None = None
              ) -> EnvironmentLock | None:
    """The lock for `settings.environment` (None for "none"). `distributions`: what
    ``importlib.metadata.distributions()`` gives (a test passes its own)."""
    env = settings.environment
    if env is None:  # the default: replicate the client, unless the nodes have it already
        env = "none" if settings.container_image or settings.python_command else "auto"
    python = settings.python_version or "{}.{}.{}".format(*sys.version_info[:3])
    if env == "none":
        return None
    if env == "auto":
        requirements, built, left_out = _installed(
            metadata.distributions() if distributions is None else distributions)
        if left_out:
            log.warning("environment=\"auto\": left out of the nodes' environment (they "
                        "cannot install on a Linux node, or the worker does not need "
                        "them): %s", ", ".join(left_out))
        return EnvironmentLock(python, _text(requirements), tuple(built), settings.index_url,
                               tuple(settings.extra_index_urls), tuple(left_out))
    lines: list[str] = []
    wheels: list[tuple[str, bytes]] = []
    for item in (env if isinstance(env, tuple) else _read_file(Path(os.fspath(env)))):
        project = _project_dir(item)
        if project is not None:  # a local project: a wheel built here
            wheels.append(_build_wheel(project.name, project))
        else:
            lines.append(str(item))
    if not any(re.match(r"^cloudpickle\b", line.strip(), re.I) for line in lines):
        lines.append(f"cloudpickle=={cloudpickle.__version__}")
    return EnvironmentLock(python, _text(lines), tuple(wheels), settings.index_url,
                           tuple(settings.extra_index_urls))


def _project_dir(item: Any) -> Path | None:
    """The directory of a local project named in a requirements list, else None."""
    if isinstance(item, os.PathLike) or (isinstance(item, str)
                                         and item.startswith((".", "/", "~"))):
        path = Path(os.fspath(item)).expanduser()
        return path.resolve() if path.is_dir() else None
    return None


def _text(lines: Iterable[str]) -> str:
    return "".join(line.rstrip() + "\n" for line in lines)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed(distributions: Iterable[Any]
               ) -> tuple[list[str], list[tuple[str, bytes]], list[str]]:
    """(pinned requirements, wheels of local projects, names left out) of `distributions`."""
    pins: dict[str, str] = {}
    wheels: list[tuple[str, bytes]] = []
    left_out: list[str] = []
    for dist in distributions:
        name = dist.metadata["Name"]
        if not name:
            continue
        key = _canonical(name)
        if key in pins or key in _NOT_NEEDED:
            continue
        local = _local_project(dist)
        if key == OWN_DISTRIBUTION:  # the worker does not need this package on the node
            if isinstance(local, Path) and local.is_dir():
                left_out.append(f"{name} (this package, from a source tree)")
            continue
        if _platform_only(dist):
            left_out.append(f"{name} (built for {sys.platform} only)")
            continue
        pins[key] = ""
        if isinstance(local, Path) and local.is_dir():  # a local project: built here
            wheels.append(_build_wheel(name, local))
        elif isinstance(local, Path):  # installed from a local wheel: that wheel, shipped
            wheels.append((local.name, local.read_bytes()))
        elif local is not None:  # a local file that is gone: no index has it either
            left_out.append(f"{name} (installed from {local}, which no longer exists)")
        else:
            pins[key] = f"{name}=={dist.version}"
    return sorted(p for p in pins.values() if p), wheels, left_out


def _local_project(dist: Any) -> Path | str | None:
    """Where a distribution installed from a local path came from (PEP 610
    ``direct_url.json``): its source directory, or the wheel file it was installed from;
    the path as text when it no longer exists; None when it came from an index."""
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    try:
        info = json.loads(text)
    except ValueError:
        return None
    url = info.get("url", "")
    if not url.startswith("file:"):
        return None
    path = Path(unquote(urlsplit(url).path))
    if path.is_dir() or (path.is_file() and path.suffix == ".whl"):
        return path
    return str(path)


def _platform_only(dist: Any) -> bool:
    """True when the distribution's wheel was built for Windows or macOS only."""
    text = dist.read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip() for line in text.splitlines()
            if line.startswith("Tag:")]
    platforms = {tag.rsplit("-", 1)[-1] for tag in tags}
    return bool(platforms) and all(p.startswith(("win", "macosx")) for p in platforms)


def _build_wheel(name: str, source: Path) -> tuple[str, bytes]:
    """A wheel of the local project at `source`, built here with pip (no dependencies:
    they are pinned in the lock already)."""
    with tempfile.TemporaryDirectory(prefix="abx-wheel-") as out:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", out,
             str(source)], capture_output=True, text=True, timeout=600)
        built = sorted(Path(out).glob("*.whl"))
        if done.returncode != 0 or not built:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-10:])
            raise ConfigurationError(
                f"environment=\"auto\": the local project {name} ({source}) could not be "
                f"built into a wheel for the nodes:\n{tail}\nFix its build, or give "
                "environment= a requirements list without it")
        return built[0].name, built[0].read_bytes()


def _read_file(path: Path) -> list[str]:
    """The requirement lines of a requirements.txt, pyproject.toml or uv.lock."""
    if path.name == "pyproject.toml":
        project = _toml(path).get("project", {})
        return [str(dep) for dep in project.get("dependencies", [])]
    if path.name == "uv.lock":
        lines = []
        for package in _toml(path).get("package", []):
            source = package.get("source", {})
            if "registry" in source and package.get("version"):
                lines.append(f"{package['name']}=={package['version']}")
        return lines
    return [line for line in path.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise ConfigurationError(
            f"environment={str(path)!r}: reading {path.name} needs Python 3.11+; give a "
            "requirements.txt instead") from None
    with open(path, "rb") as f:
        data: dict[str, Any] = tomllib.load(f)
    return data
