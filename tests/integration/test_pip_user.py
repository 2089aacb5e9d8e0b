"""A pip user, with no repository and no `make`, gets a working local stack.

The package is built with `python -m build` (an sdist, checked for what it ships, and a
wheel), and the wheel installed with numpy into a fresh virtualenv;
the README's example then runs from an empty directory, with an empty home (no
Azurite, no caches): Azurite is installed by itself with npm, the nodes are bare and
prepare the venv's environment with uv, and the example prints the same sum twice.
It needs the package indexes (PyPI, npm) this machine reaches, and a few minutes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from azure_batch_executor.config import ENV_NAMES

ROOT = Path(__file__).resolve().parents[2]
README_EXAMPLE = re.search(r"```python\n(import numpy as np.*?)```",
                           (ROOT / "README.md").read_text(), re.S)


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert done.returncode == 0, f"{cmd[:3]}...:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed (Node.js 20+)")
def test_the_readme_example_runs_after_pip_install_alone(tmp_path: Path) -> None:
    assert README_EXAMPLE is not None, "the README's example moved"
    dist, venv, home, work = (tmp_path / n for n in ("dist", "venv", "home", "work"))
    for d in (dist, home, work):
        d.mkdir()
    _run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(dist), str(ROOT)],
         timeout=900)
    sdist = next(dist.glob("azure_batch_executor-*.tar.gz"))
    with tarfile.open(sdist) as tar:  # what a build from the sdist needs, and ships
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "azure_batch_executor/wire/worker.py",
            "azure_batch_executor/nodeenv/prepare.py", "azure_batch_executor/py.typed"} <= names
    _run([sys.executable, "-m", "venv", str(venv)], timeout=120)
    wheel = next(dist.glob("azure_batch_executor-*.whl"))
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel), "numpy"],
         timeout=900)
    (work / "example.py").write_text(README_EXAMPLE.group(1))
    env = {k: v for k, v in os.environ.items()
           if k not in ENV_NAMES.values() and not k.startswith(("AZURE_BATCH_EXECUTOR_",
                                                                "REGISTRY_", "XDG_"))}
    env.update(HOME=str(home), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    env.pop("PYTHONPATH", None)
    done = _run([str(venv / "bin" / "python"), "example.py"], cwd=work, env=env, timeout=900)
    serial, distributed = done.stdout.split()
    assert float(serial) == float(distributed)
    assert "installing Azurite" in done.stderr  # once, by itself
    assert "on the local stack" in done.stderr
