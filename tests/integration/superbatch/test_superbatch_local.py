"""The SuperBatch walkthrough and the client's failure report, on the local stack."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from azure_batch_executor import superbatch
from azure_batch_executor.config import ENV_NAMES

SEED_VARS = {*ENV_NAMES.values(), "REGISTRY_SERVER", "REGISTRY_USERNAME", "REGISTRY_PASSWORD"}
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "superbatch"


def test_walkthrough_controller_sum_equals_serial_loop(tmp_path) -> None:
    """`python controller.py`, as the seed's user runs it, with no Azure variables set."""
    env = {k: v for k, v in os.environ.items() if k not in SEED_VARS}
    env["HOME"] = str(tmp_path)  # BATCH_DIRECTORY is ~/temp/super-batch-test
    done = subprocess.run([sys.executable, "controller.py"], cwd=EXAMPLE, env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    batch = done.stdout.split("batch sum:")[1].split()[0]
    serial = done.stdout.split("serial sum:")[1].split()[0]
    assert batch == serial
    assert float(batch) > 0
    assert "4/4 tasks done, 0 failed" in done.stderr
    outputs = tmp_path / "temp" / "super-batch-test"
    assert sorted(p.name for p in outputs.glob("iter_*_outputs.pickle")) == [
        f"iter_{i}_outputs.pickle" for i in range(4)]


FAIL = ("import sys; sys.stderr.write('worker blew up on seed 12\\n'); "
        "raise SystemExit(3)")
COPY = "open('out.txt', 'w').write(open('in.txt').read().upper())"


def test_failing_worker_is_listed_with_its_stderr_tail(make_client, tmp_path, capsys) -> None:
    (tmp_path / "in.txt").write_text("hello")
    c = make_client()
    resource = c.build_resource_file("in.txt", "in.txt")
    c.add_task([resource], [c.build_output_file("out.txt", "good/out.txt")],
               command_line=f'python3 -c "{COPY}"')
    c.add_task([resource], [c.build_output_file("out.txt", "bad/out.txt")],
               command_line=f'python3 -c "{FAIL}"')
    with pytest.raises(superbatch.TasksFailedError) as info:
        c.run()
    message = str(info.value)
    assert message.startswith(f"1 of 2 tasks of job {c.job_id} failed")
    assert f"task task-000001 of job {c.job_id} failed: exit code 3" in message
    assert "  | worker blew up on seed 12" in message
    assert "task-000000" not in message
    assert [f.task_id for f in info.value.failures] == ["task-000001"]
    # the good task's output was downloaded, the failed one's never uploaded
    assert (tmp_path / "good" / "out.txt").read_text() == "HELLO"
    assert not (tmp_path / "bad" / "out.txt").exists()
    assert "2/2 tasks done, 1 failed" in capsys.readouterr().err


def test_existing_pool_is_used_as_is_and_docker_image_ignored(make_client, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="azure_batch_executor.superbatch"):
        for _ in range(2):  # the second run finds the first run's pool
            c = make_client(POOL_ID="superbatch-reused")
            c.add_task([], [], command_line='python3 -c "pass"')
            c.run()
    assert "DOCKER_IMAGE='myusername/sum-of-powers:v1' is ignored on the local stack" in (
        caplog.text)
    assert caplog.text.count("pool superbatch-reused exists: used as it is") == 1
