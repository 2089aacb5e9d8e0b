"""Preparing a node environment of numpy + pandas + scikit-learn: uv (our job preparation
script) cold and warm, against pip into a fresh venv, side by side in one run.

    .venv/bin/python -m benchmarks.bench_environment

- uv cold: `nodeenv/prepare.py` as a job preparation task runs it, with an empty uv
  cache and no uv binary yet (it bootstraps uv from the index first).
- uv warm, second job: the same lock again on the same node (the environment is there).
- uv warm cache, new environment: a lock that differs by one line, packages cached.
- pip cold: `python -m venv` + `pip install --no-cache-dir -r requirements.txt`.
Sizes are the environments' site-packages. Needs the package index (this machine's PyPI).
Issue 12's targets: warm <= 2 s; cold >= 3x faster than pip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREPARE = ROOT / "azure_batch_executor" / "nodeenv" / "prepare.py"
UV_VERSION = "0.13.8"
LOCK = ["numpy==2.4.6", "pandas", "scikit-learn==1.9.1", "cloudpickle==3.1.3"]


def _size(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def uv_prepare(shared: Path, cache: Path, env_id: str, lock: list[str]) -> float:
    wd = shared.parent / f"wd-{env_id}"
    wd.mkdir(parents=True, exist_ok=True)
    (wd / "requirements.txt").write_text("\n".join(lock) + "\n")
    env = dict(os.environ, AZ_BATCH_NODE_SHARED_DIR=str(shared), ABX_ENV_ID=env_id,
               ABX_PYTHON_VERSION="{}.{}.{}".format(*sys.version_info[:3]),
               ABX_UV_VERSION=UV_VERSION, ABX_PYTHON_DOWNLOADS="never",
               ABX_CACHE_DIR=str(cache))
    start = time.perf_counter()
    subprocess.run([sys.executable, str(PREPARE)], cwd=wd, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def pip_install(where: Path, lock: list[str]) -> float:
    where.mkdir(parents=True, exist_ok=True)
    (where / "requirements.txt").write_text("\n".join(lock) + "\n")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(where / "venv")], check=True)
    subprocess.run([str(where / "venv" / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--no-cache-dir", "-r", str(where / "requirements.txt")], check=True,
                   env=dict(os.environ, PIP_FIND_LINKS="", PIP_CONSTRAINT=""))
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="abx-bench-env-") as tmp:
        base = Path(tmp)
        shared, cache = base / "node" / "shared", base / "cache"
        cold = uv_prepare(shared, cache, "bench-a", LOCK)
        env_dir = shared / "abx" / "envs" / "bench-a"
        warm = uv_prepare(shared, cache, "bench-a", LOCK)
        new_env = uv_prepare(shared, cache, "bench-b", [*LOCK, "threadpoolctl==3.6.0"])
        pip = pip_install(base / "pip", LOCK)
        print(f"lock: {', '.join(LOCK)}")
        print(f"uv cold (bootstrap uv, empty cache): {cold:6.2f} s, environment "
              f"{_size(env_dir):.0f} MiB")
        print(f"uv warm, second job, same lock:      {warm:6.2f} s")
        print(f"uv warm cache, a new environment:    {new_env:6.2f} s")
        print(f"pip cold (venv + pip install):       {pip:6.2f} s, environment "
              f"{_size(base / 'pip' / 'venv'):.0f} MiB")
        print(f"cold: uv is {pip / cold:.1f}x faster than pip")
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
