"""What a user sees on the console: one line by default, no Azure SDK HTTP dumps at INFO.

Each test runs a small script in a fresh interpreter (logging is process-wide state,
so pytest's own handlers must not be there): a 4-task map on the local stack the
script starts for itself, with no Azure variables in its environment.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from azure_batch_executor.config import ENV_NAMES

ROOT = Path(__file__).resolve().parents[3]
RESULTS = ["0", "1", "4", "9"]
ANNOUNCED = re.compile(
    r"AzureBatchExecutor: job \S+ on the local stack \(no Azure Batch account configured\), "
    r"pool \S+, max_workers=4$")
HTTP_DUMP = re.compile(r"Request URL:|Request method:|Response status:|Request headers:")

SCRIPT = """\
import logging
{setup}
from azure_batch_executor import AzureBatchExecutor


def square(x):
    return x * x


if __name__ == "__main__":
    with AzureBatchExecutor(max_workers=4) as ex:
        for result in ex.map(square, range(4)):
            print(result, flush=True)
"""


def _run(tmp_path: Path, setup: str = "") -> tuple[list[str], list[str]]:
    """(stdout lines, stderr lines) of the script with `setup` before the import."""
    script = tmp_path / "four_tasks.py"
    script.write_text(SCRIPT.format(setup=setup))
    env = {k: v for k, v in os.environ.items()
           if k not in ENV_NAMES.values() and not k.startswith("REGISTRY_")}
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name, ""), "127.0.0.1", "localhost"]))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=180, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines(), done.stderr.splitlines()


def test_no_logging_configured_prints_the_results_and_one_line(tmp_path: Path) -> None:
    out, err = _run(tmp_path)
    assert out == RESULTS
    assert len(err) == 1, err
    assert ANNOUNCED.fullmatch(err[0]), err[0]


def test_basic_config_info_shows_the_package_lines_without_http_dumps(tmp_path: Path) -> None:
    out, err = _run(tmp_path, "logging.basicConfig(level=logging.INFO)")
    assert out == RESULTS
    announced = [line for line in err
                 if line.startswith("INFO:azure_batch_executor.engine.executor:")]
    assert len(announced) == 1, err
    assert ANNOUNCED.fullmatch(announced[0].split(":", 2)[2]), announced
    assert not [line for line in err if HTTP_DUMP.search(line) or ":azure." in line], err
    assert all(line.startswith("INFO:azure_batch_executor.") for line in err), err


@pytest.mark.parametrize("logger", ["azure", "azure.core.pipeline.policies.http_logging_policy"])
def test_a_level_the_user_set_on_azure_loggers_is_kept(tmp_path: Path, logger: str) -> None:
    out, err = _run(tmp_path, f"logging.basicConfig(level=logging.INFO)\n"
                              f"logging.getLogger({logger!r}).setLevel(logging.INFO)")
    assert out == RESULTS
    assert any(line.startswith("INFO:azure.core.pipeline.policies.http_logging_policy:")
               for line in err), err[:20]
    assert any(HTTP_DUMP.search(line) for line in err), err[:20]
