"""The official clients still in use, unchanged, against the emulator in strict mode.

Each client runs its driver script in a subprocess (its own virtualenv or node): pools,
jobs, tasks, a task collection of more than 100 tasks, listings with `$filter`,
`$select` and paging, task counts, task and node files, and every delete. Every step
must succeed; the operations each client reached are printed (`-s`, or in the report
on failure) and checked against the ones it is meant to cover.
"""

from __future__ import annotations

from pathlib import Path

from compat_kit import HERE, covered_routes, failures, run_driver, signed

from azure_batch_executor.emulator import BatchEmulator, versions

POOLS = {"create_pool", "get_pool", "pool_exists", "list_pools", "update_pool",
         "resize_pool", "stop_pool_resize", "delete_pool", "list_pool_node_counts",
         "list_nodes", "get_node"}
JOBS = {"create_job", "get_job", "update_job", "replace_job", "list_jobs", "disable_job",
        "enable_job", "terminate_job", "delete_job", "get_job_task_counts"}
TASKS = {"create_task", "create_task_collection", "list_tasks", "get_task", "replace_task",
         "delete_task", "terminate_task", "reactivate_task", "list_subtasks"}
FILES = {"list_task_files", "download_task_file", "get_task_file_properties",
         "delete_task_file", "list_node_files", "download_node_file",
         "get_node_file_properties", "delete_node_file"}
SDK_ROUTES = POOLS | JOBS | TASKS | FILES


def _run(emulator: BatchEmulator, argv: list[str], expected_routes: set[str]) -> None:
    result = run_driver([*argv, emulator.url, emulator.account_name, emulator.account_key])
    routes = covered_routes(emulator)
    print(f"\n{result['client']}: {len(result['steps'])} steps, {len(routes)} operations: "
          f"{', '.join(sorted(routes))}")
    assert not failures(result), "\n".join(failures(result))
    assert expected_routes <= routes, f"not reached: {sorted(expected_routes - routes)}"


def test_azure_batch_14(emulator: BatchEmulator, azure_batch_14: Path) -> None:
    _run(emulator, [str(azure_batch_14), str(HERE / "drive_azure_batch_14.py")], SDK_ROUTES)


def test_azure_batch_js(emulator: BatchEmulator, node_batch: str) -> None:
    _run(emulator, [node_batch, str(HERE / "drive_azure_batch_js.js")], SDK_ROUTES)


def test_az_cli(emulator: BatchEmulator, az_cli: Path, tmp_path: Path) -> None:
    result = run_driver([str(az_cli), str(HERE / "drive_az_cli.py"), emulator.url,
                         emulator.account_name, emulator.account_key, str(tmp_path)])
    routes = covered_routes(emulator)
    print(f"\n{result['client']}: {len(result['steps'])} steps, {len(routes)} operations: "
          f"{', '.join(sorted(routes))}")
    assert not failures(result), "\n".join(failures(result))
    assert {"create_pool", "create_job", "create_task_collection", "list_tasks",
            "get_job_task_counts", "delete_task_file", "delete_job", "delete_pool"} <= routes


def test_every_listed_version_is_served_and_others_are_refused(emulator: BatchEmulator
                                                                ) -> None:
    for version in versions.SUPPORTED:
        status, _, _ = signed(emulator, "GET", f"/pools?api-version={version}")
        assert status == 200, version
    status, _, body = signed(emulator, "GET", "/pools?api-version=2021-06-01.14.0")
    assert status == 400 and body["code"] == "UnsupportedRequestVersion"
    assert "2022-10-01.16.0" in body["message"]["value"]
    assert "--loose" in body["message"]["value"]
