"""Imports inside the package go one way (house rule 3).

leaves (constants, _logs, _output, _tracebacks, errors, config, layout, _pickling,
_wire, _retry, taskdef)
<- I/O (storage, batch, local) <- shared state (accounts, _context)
<- _dispatch <- _poller <- executor <- adapters (reusable, superbatch, images,
azure_setup) <- joblib_backend <- cli <- __init__. RANKS below is the table.
`worker.py` imports only the stdlib and cloudpickle; the emulator imports
nothing from the rest of the package and no Azure SDK.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "azure_batch_executor"

# rank: a module may import package modules of strictly lower rank only.
RANKS = {
    "constants": 0,
    "worker": 0,  # runs on the node; its own test below keeps it on stdlib + cloudpickle
    "_logs": 0,
    "_output": 0,
    "_tracebacks": 0,
    "errors": 1,
    "config": 2,
    "layout": 3,
    "_shipping": 3,
    "_pickling": 3,
    "_wire": 4,
    "_retry": 4,
    "taskdef": 4,
    "storage": 5,
    "batch": 5,
    "local": 5,
    "accounts": 6,
    "_context": 6,
    "_dispatch": 7,
    "_poller": 8,
    "executor": 9,
    "_superbatch_collect": 9,
    "reusable": 10,
    "joblib_backend": 11,
    "superbatch": 10,
    "images": 10,
    "azure_setup": 10,
    "cli": 12,
    "__init__": 13,
    "__main__": 14,
}
WORKER_ALLOWED = set(sys.stdlib_module_names) | {"cloudpickle", "__future__"}


def _modules() -> list[Path]:
    """Package modules ranked in layers (worker.py has its own, stricter test)."""
    return sorted(p for p in PACKAGE.glob("*.py") if p.stem != "worker")


def _imports(path: Path) -> list[tuple[str, int]]:
    """(absolute dotted name, level) for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level and not base:
                found.extend((alias.name, node.level) for alias in node.names)
            else:
                found.append((base, node.level))
    return found


def _package_target(name: str, level: int) -> str | None:
    """The top-level package module an import refers to, or None if external."""
    if level == 1:
        return name.split(".")[0]
    if level == 0 and name.startswith("azure_batch_executor."):
        return name.split(".")[1]
    if level == 0 and name == "azure_batch_executor":
        return "__init__"
    return None


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_package_imports_point_down(path: Path) -> None:
    module = path.stem
    assert module in RANKS, f"add {module}.py to RANKS in this test, at its layer"
    for name, level in _imports(path):
        target = _package_target(name, level)
        if target is None:
            continue
        if target == "emulator":
            assert module in {"local", "cli", "__main__"}, f"{module} may not import the emulator"
            continue
        assert target in RANKS, f"{module} imports unknown package module {target}"
        assert RANKS[target] < RANKS[module], (
            f"{module} (layer {RANKS[module]}) imports {target} (layer {RANKS[target]}): "
            "imports must point down the layers"
        )


def test_worker_imports_stdlib_and_cloudpickle_only() -> None:
    path = PACKAGE / "worker.py"
    for name, level in _imports(path):
        assert level == 0, "worker.py may not import package modules (it runs on the node)"
        assert name.split(".")[0] in WORKER_ALLOWED, f"worker.py imports {name}"


def test_emulator_imports_nothing_from_the_client() -> None:
    for path in sorted((PACKAGE / "emulator").rglob("*.py")):
        for name, level in _imports(path):
            depth = len(path.relative_to(PACKAGE / "emulator").parts)  # 1 = emulator/x.py
            assert level <= depth, f"{path.name} reaches outside the emulator package"
            if level == 0:
                top = name.split(".")[0]
                assert top != "azure_batch_executor" or name.startswith(
                    "azure_batch_executor.emulator"
                ), f"{path.name} imports {name}"
                assert top != "azure", f"{path.name} imports the Azure SDK ({name})"
