"""Node environments on bare nodes (issue 12): a job preparation task running uv installs
the lock once per node and environment; the worker runs with that interpreter."""

from __future__ import annotations

import sys
from concurrent.futures import wait
from pathlib import Path
from typing import Any

import pytest

from azure_batch_executor import AzureBatchExecutor, EnvironmentPreparationError

TIMEOUT = 180.0


def probe() -> tuple[str, str]:
    import tenacity  # installed on the client, absent from a bare node

    return sys.prefix, tenacity.__name__


def probe_project() -> str:
    import abx_tinyproj  # a local project, shipped as a wheel

    return abx_tinyproj.hello()


def _prep_outputs(batch_client: Any, job_id: str) -> list[str]:
    """The stdout of the job's preparation task on each node that ran it."""
    out = []
    for entry in batch_client.list_job_preparation_and_release_task_status(job_id):
        info = entry.job_preparation_task_execution_info
        path = f"{info.task_root_directory}/stdout.txt"
        out.append(b"".join(batch_client.download_node_file(entry.pool_id, entry.node_id, path))
                   .decode())
    return out


def test_a_package_the_bare_node_lacks_runs_in_the_prepared_environment(
        bare_settings: dict[str, Any], batch_client: Any) -> None:
    with AzureBatchExecutor(max_workers=4, environment=["tenacity==9.0.0"],
                            **bare_settings) as ex:
        prefixes = {f.result(TIMEOUT) for f in [ex.submit(probe) for _ in range(4)]}
        first_job = ex.job_id
    assert all(name == "tenacity" for _, name in prefixes)
    assert all("/shared/abx/envs/" in prefix for prefix, _ in prefixes)
    assert sys.prefix not in {prefix for prefix, _ in prefixes}  # not the client's
    made = _prep_outputs(batch_client, first_job)
    assert made and all("environment" in text for text in made)
    # a second job with the same lock: every node reuses what the first one made
    with AzureBatchExecutor(max_workers=4, environment=["tenacity==9.0.0"],
                            **bare_settings) as ex:
        again = {f.result(TIMEOUT) for f in [ex.submit(probe) for _ in range(4)]}
        second_job = ex.job_id
    assert again <= prefixes
    reused = _prep_outputs(batch_client, second_job)
    assert reused and all("made by an earlier job" in text for text in reused)


def test_a_changed_lock_makes_a_new_environment(bare_settings: dict[str, Any]) -> None:
    with AzureBatchExecutor(max_workers=2, environment=["tenacity==9.0.0"],
                            **bare_settings) as ex:
        old = ex.submit(probe).result(TIMEOUT)[0]
    with AzureBatchExecutor(max_workers=2, environment=["tenacity==9.1.2"],
                            **bare_settings) as ex:
        new = ex.submit(probe).result(TIMEOUT)[0]
    assert old != new


def test_a_requirement_that_does_not_resolve_fails_every_future_with_the_reason(
        bare_settings: dict[str, Any]) -> None:
    ex = AzureBatchExecutor(max_workers=2, environment=["abx-no-such-package-anywhere==1.0"],
                            **bare_settings)
    try:
        futures = [ex.submit(pow, 2, n) for n in range(3)]
        _, not_done = wait(futures, timeout=TIMEOUT)
        assert not not_done, "the futures of a job whose environment fails must resolve"
        for future in futures:
            error = future.exception()
            assert isinstance(error, EnvironmentPreparationError)
            assert error.step == "install the packages"
            assert "abx-no-such-package-anywhere" in str(error)
            assert "Fix:" in str(error)
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def test_a_local_project_is_shipped_as_a_wheel(bare_settings: dict[str, Any],
                                               tmp_path: Path) -> None:
    project = tmp_path / "tinyproj"
    (project / "abx_tinyproj").mkdir(parents=True)
    (project / "abx_tinyproj" / "__init__.py").write_text(
        "def hello():\n    return 'hello from a wheel'\n")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = '
        '"setuptools.build_meta"\n\n[project]\nname = "abx-tinyproj"\nversion = "0.1"\n')
    with AzureBatchExecutor(max_workers=2, environment=[str(project)],
                            **bare_settings) as ex:
        assert ex.submit(probe_project).result(TIMEOUT) == "hello from a wheel"


@pytest.mark.parametrize(("environment", "match"), [
    (42, "environment=42"),
    ("/no/such/requirements.txt", "no such file"),
    (["numpy >>= 1"], "not a requirement"),
])
def test_bad_environments_fail_at_construction_naming_the_argument(
        bare_settings: dict[str, Any], environment: Any, match: str) -> None:
    from azure_batch_executor import ConfigurationError

    with pytest.raises(ConfigurationError, match=match):
        AzureBatchExecutor(environment=environment, **bare_settings)


def test_an_index_url_that_is_not_a_url_fails_at_construction(
        bare_settings: dict[str, Any]) -> None:
    from azure_batch_executor import ConfigurationError

    with pytest.raises(ConfigurationError, match="index_url"):
        AzureBatchExecutor(index_url="pypi.org/simple", **bare_settings)
