"""The layers hold: `lint-imports` (import-linter, contracts in pyproject.toml) passes on
the package and fails when a lower layer imports a higher one; the worker, which runs on
the node, imports only the standard library and cloudpickle (a rule import-linter cannot
state: it sees no standard library)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "azure_batch_executor"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
WORKER_ALLOWED = set(sys.stdlib_module_names) | {"cloudpickle", "__future__"}

needs_linter = pytest.mark.skipif(not LINT_IMPORTS.exists(),
                                  reason="import-linter is not installed (the dev extra)")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True,
                          text=True, timeout=120, env={"PATH": "", "PYTHONPATH": str(root)})


@needs_linter
def test_the_contracts_hold() -> None:
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


@needs_linter
@pytest.mark.parametrize(("module", "bad_import", "contract"), [
    ("wire/layout.py", "from ..engine import executor", "Client layers"),
    ("cloud/taskdef.py", "from .. import reusable", "Client layers"),
    ("engine/state.py", "from . import manager", "Engine"),
    ("emulator/urls.py", "from .. import config", "emulator imports nothing"),
    ("wire/codec.py", "import azure.core", "Only the Azure side"),
])
def test_a_lower_layer_importing_a_higher_one_breaks_a_contract(
        tmp_path: Path, module: str, bad_import: str, contract: str) -> None:
    shutil.copytree(PACKAGE, tmp_path / "azure_batch_executor",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "azure_batch_executor" / module
    target.write_text(target.read_text() + f"\n{bad_import}  # noqa\n")
    done = _lint(tmp_path)
    assert done.returncode != 0
    broken = done.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken.replace("\n", " "), done.stdout[-3000:]


def test_worker_imports_stdlib_and_cloudpickle_only() -> None:
    tree = ast.parse((PACKAGE / "wire" / "worker.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, "worker.py may not import package modules (it runs on the node)"
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            assert name.split(".")[0] in WORKER_ALLOWED, f"worker.py imports {name}"
