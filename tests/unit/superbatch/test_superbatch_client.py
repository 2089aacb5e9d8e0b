"""The SuperBatch client's own logic on fakes: its errors name the fix, collections, outputs."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import pytest

from azure_batch_executor import constants, superbatch
from azure_batch_executor.errors import ConfigurationError

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "superbatch"


# ------------------------------------------------------------------ configuration
@pytest.mark.parametrize("missing", ["BATCH_ACCOUNT_KEY", "BATCH_ACCOUNT_NAME"])
def test_half_a_batch_account_names_the_missing_variable(fakes, make_client, monkeypatch,
                                                         missing) -> None:
    monkeypatch.delenv(missing)
    with pytest.raises(ConfigurationError) as info:
        make_client()
    message = str(info.value)
    assert f"set {missing} or pass {missing}=" in message
    assert "batch_account" not in message  # worded with the seed's names, not the executor's


def test_no_batch_url_names_the_variable(fakes, make_client, monkeypatch) -> None:
    monkeypatch.delenv("BATCH_ACCOUNT_URL")
    fix = "set BATCH_ACCOUNT_URL or pass BATCH_ACCOUNT_URL="
    with pytest.raises(ConfigurationError, match=fix):
        make_client()


def test_batch_without_storage_names_the_variables(fakes, make_client, monkeypatch) -> None:
    monkeypatch.delenv("STORAGE_ACCOUNT_KEY")
    monkeypatch.delenv("STORAGE_ACCOUNT_CONNECTION_STRING")
    with pytest.raises(ConfigurationError) as info:
        make_client()
    assert "STORAGE_ACCOUNT_CONNECTION_STRING" in str(info.value)
    assert "storage_connection_string=" not in str(info.value)


def test_storage_key_alone_names_the_connection_string(fakes, make_client, monkeypatch) -> None:
    monkeypatch.delenv("STORAGE_ACCOUNT_CONNECTION_STRING")
    with pytest.raises(ConfigurationError, match="STORAGE_ACCOUNT_CONNECTION_STRING"):
        make_client()


def test_half_a_registry_names_the_missing_variable(fakes, make_client, monkeypatch) -> None:
    monkeypatch.setenv("REGISTRY_SERVER", "myownprivateregistry.azurecr.io")
    monkeypatch.setenv("REGISTRY_USERNAME", "myownprivateregistry")
    fix = "set REGISTRY_PASSWORD or pass REGISTRY_PASSWORD="
    with pytest.raises(ConfigurationError, match=fix):
        make_client()


def test_seed_quotes_are_stripped_from_the_environment(fakes, make_client, monkeypatch) -> None:
    # the seed's bash recipe exports `az ... --query` output, quotes included
    key = os.environ["BATCH_ACCOUNT_KEY"]
    monkeypatch.setenv("BATCH_ACCOUNT_URL", '"https://fake.westeurope.batch.azure.com"')
    monkeypatch.setenv("BATCH_ACCOUNT_KEY", f'"{key}"')
    c = make_client()
    assert c.settings.batch_account_url == "https://fake.westeurope.batch.azure.com"
    assert c.settings.batch_account_key == key


def test_bad_names_use_the_seed_argument_names(fakes, make_client) -> None:
    with pytest.raises(ConfigurationError, match="BLOB_CONTAINER_NAME='Not_Valid'"):
        make_client(BLOB_CONTAINER_NAME="Not_Valid")
    with pytest.raises(ConfigurationError, match="JOB_ID='has space'"):
        make_client(JOB_ID="has space")


# ------------------------------------------------------------------ building tasks
def test_nonexistent_resource_file_names_the_path_and_the_fix(make_client, tmp_path) -> None:
    c = make_client()
    with pytest.raises(FileNotFoundError) as info:
        c.build_resource_file("iter_0_inputs.pickle", "inputs.pickle")
    message = str(info.value)
    assert str(tmp_path / "iter_0_inputs.pickle") in message
    assert f"BATCH_DIRECTORY={str(tmp_path)!r}" in message
    assert "joblib.dump(obj, os.path.join(BATCH_DIRECTORY, 'iter_0_inputs.pickle'))" in message


def test_resource_file_is_uploaded_under_the_job_prefix(fakes, make_client, tmp_path) -> None:
    (tmp_path / "config.pickle").write_bytes(b"global")
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "config.pickle").write_bytes(b"another file, same name")
    c = make_client()
    r = c.build_resource_file("config.pickle", "config.pickle")
    assert r.blob_name == "superbatchtest20240101000000/config.pickle"
    assert r.file_path == "config.pickle" and "sp=r" in r.http_url
    assert fakes.store.blobs[r.blob_name] == b"global"
    again = c.build_resource_file(str(other / "config.pickle"), "config2.pickle")
    assert again.blob_name != r.blob_name  # two files never share a blob
    assert fakes.store.blobs[again.blob_name] == b"another file, same name"


def test_add_task_without_a_command_line_names_the_argument(make_client) -> None:
    c = make_client(COMMAND_LINE=None)
    with pytest.raises(ConfigurationError, match="pass COMMAND_LINE= to client"):
        c.add_task([], [])


def test_output_local_name_must_stay_in_batch_directory(make_client) -> None:
    c = make_client()
    with pytest.raises(ValueError, match="relative path inside BATCH_DIRECTORY"):
        c.build_output_file("outputs.pickle", "/tmp/elsewhere.pickle")
    with pytest.raises(ValueError, match="relative path inside BATCH_DIRECTORY"):
        c.build_output_file("outputs.pickle", "../up.pickle")


def test_add_task_refuses_other_objects(make_client) -> None:
    c = make_client()
    with pytest.raises(TypeError, match="build_resource_file"):
        c.add_task(["config.pickle"], [])  # type: ignore[list-item]


# ------------------------------------------------------------------ run()
def _add_tasks(c: superbatch.client, n: int, command: str | None = None) -> None:
    for i in range(n):
        out = c.build_output_file("outputs.pickle", f"iter_{i}_outputs.pickle")
        c.add_task([], [out], command_line=command)


def test_run_sends_collections_of_at_most_100_and_downloads(fakes, make_client, tmp_path,
                                                            capsys) -> None:
    c = make_client()
    _add_tasks(c, 250)
    c.run()
    assert fakes.batch is not None
    assert fakes.batch.collections == [100, 100, 50]
    assert fakes.batch.ensure_pool_calls == 1  # the pool did not exist: created
    assert (tmp_path / "iter_249_outputs.pickle").read_bytes() == b"task-000249"
    assert fakes.batch.jobs == {c.job_id: "terminated"}
    err = capsys.readouterr().err
    assert f"superbatch: job {c.job_id}: 250/250 tasks done, 0 failed" in err
    assert len(err.strip().splitlines()) <= 3  # a progress line, not a log of every task


def test_existing_pool_is_used_as_is(fakes, make_client, caplog) -> None:
    fakes.pool_exists = True
    c = make_client()
    _add_tasks(c, 1)
    with caplog.at_level(logging.INFO, logger="azure_batch_executor.superbatch"):
        c.run()
    assert fakes.batch is not None and fakes.batch.ensure_pool_calls == 0
    assert "pool superbatchtest exists: used as it is" in caplog.text


def test_new_pool_without_nodes_names_the_arguments(fakes, make_client) -> None:
    c = make_client(POOL_NODE_COUNT=0, POOL_LOW_PRIORITY_NODE_COUNT=0)
    _add_tasks(c, 1)
    with pytest.raises(ConfigurationError, match="POOL_NODE_COUNT=0, POOL_LOW_PRIORITY_NODE_C"):
        c.run()


def test_failed_tasks_are_listed_with_stderr_tails(fakes, make_client, tmp_path) -> None:
    c = make_client()
    _add_tasks(c, 2)
    c.add_task([], [c.build_output_file("outputs.pickle", "iter_2_outputs.pickle")],
               command_line="python3 worker.py --fail")
    c.add_task([], [c.build_output_file("outputs.pickle", "iter_3_outputs.pickle")],
               command_line="python3 worker.py --no-output")
    with pytest.raises(superbatch.TasksFailedError) as info:
        c.run()
    err = info.value
    message = str(err)
    assert message.startswith(f"2 of 4 tasks of job {c.job_id} failed")
    assert (f"task task-000002 of job {c.job_id} failed: exit code 3; Batch failure "
            "FailureExitCode") in message
    assert "  | ValueError: bad seed 12" in message
    assert (f"task task-000003 of job {c.job_id} failed: exit code 0; it succeeded but wrote "
            "no 'outputs.pickle'") in message
    assert "rerun with a new JOB_ID" in message
    assert [f.task_id for f in err.failures] == ["task-000002", "task-000003"]
    assert err.failures[0].exit_code == 3
    assert "ValueError: bad seed 12" in err.failures[0].stderr_tail
    assert "sig=c2VjcmV0" not in message
    # the good tasks' outputs were downloaded before the error
    assert (tmp_path / "iter_1_outputs.pickle").read_bytes() == b"task-000001"


def test_run_needs_tasks_and_runs_once(make_client) -> None:
    c = make_client()
    with pytest.raises(ValueError, match="no tasks; add them with add_task"):
        c.run()
    _add_tasks(c, 1)
    c.run()
    with pytest.raises(RuntimeError, match="already called"):
        c.run()
    with pytest.raises(RuntimeError, match="already called"):
        _add_tasks(c, 1)


def test_example_constants_are_the_packages() -> None:
    spec = importlib.util.spec_from_file_location("sb_constants", EXAMPLE / "constants.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("GLOBAL_CONFIG_FILE", "WORKER_INPUTS_FILE", "WORKER_OUTPUTS_FILE",
                 "LOCAL_INPUTS_PATTERN", "LOCAL_OUTPUTS_PATTERN"):
        assert getattr(module, name) == getattr(constants, name), name
