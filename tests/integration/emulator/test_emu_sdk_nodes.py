"""Node lifecycle through the official SDK: boot states, start tasks, reboots, node images.

Commands that must hold a node in a state wait for a file the test creates in the node's
shared directory (`GATE`), so every step is observed by polling the SDK, not by sleeping.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import azure.batch.models as m
import pytest
from azure.batch import BatchClient
from emu_sdk_kit import (
    PATH_PREFIX,
    POLL,
    client_for,
    make_job,
    make_pool,
    wait_completed,
    wait_until,
)

from azure_batch_executor.emulator import BatchEmulator
from azure_batch_executor.local.images import bare_image_path

GATE = "/bin/sh -c 'while [ ! -e \"$AZ_BATCH_NODE_SHARED_DIR/go\" ]; do sleep 0.01; done'"
IMAGE = m.BatchVmImageReference(publisher="canonical", offer="0001-com-ubuntu-server-jammy",
                                sku="22_04-lts", version="latest")


def _vm() -> m.VirtualMachineConfiguration:
    return m.VirtualMachineConfiguration(image_reference=IMAGE,
                                         node_agent_sku_id="batch.node.ubuntu 22.04")


def _create_pool(client: BatchClient, pool_id: str, **kwargs: object) -> None:
    client.create_pool(m.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2s_v3", virtual_machine_configuration=_vm(),
        target_dedicated_nodes=1, **kwargs))


def _node(client: BatchClient, pool_id: str) -> m.BatchNode | None:
    return next(iter(client.list_nodes(pool_id)), None)


def _open_gate(emulator: BatchEmulator, pool_id: str, node_id: str) -> None:
    assert emulator.data_dir is not None
    (emulator.data_dir / pool_id / node_id / "shared" / "go").touch()


def _file(client: BatchClient, pool_id: str, node_id: str, path: str) -> bytes:
    return b"".join(client.download_node_file(pool_id, node_id, path))


@pytest.fixture
def files_url(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP server over `tmp_path/files` (resource files by httpUrl)."""
    root = tmp_path / "files"
    root.mkdir()
    (root / "tool.py").write_text("print('from the resource file')\n")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def slow_boot() -> Iterator[BatchEmulator]:
    emu = BatchEmulator(nodes=2, slots_per_node=2, path_prefix=PATH_PREFIX,
                        transition_delay=0.02, allocation_delay=0.4).start()
    yield emu
    emu.stop()


def test_nodes_boot_through_starting_and_the_start_task(slow_boot: BatchEmulator) -> None:
    client = client_for(slow_boot)
    _create_pool(client, "p1", start_task=m.BatchStartTask(command_line=GATE))
    seen: list[str] = []

    def state(want: str) -> bool:
        node = _node(client, "p1")
        if node is not None and (not seen or seen[-1] != node.state):
            seen.append(node.state)
        return node is not None and node.state == want

    wait_until(lambda: state("waitingforstarttask"), what="waitingforstarttask")
    node = _node(client, "p1")
    assert node is not None and node.start_task_info.state == "running"
    assert client.get_pool("p1").allocation_state == "steady"  # allocated, still booting
    _open_gate(slow_boot, "p1", node.id)
    wait_until(lambda: state("idle"), what="idle")
    assert seen[seen.index("starting"):] == ["starting", "waitingforstarttask", "idle"]
    node = _node(client, "p1")
    assert node is not None and node.start_task_info.result == "success"
    assert node.last_boot_time >= node.allocation_time
    client.close()


def test_without_wait_for_success_the_node_is_idle_while_the_start_task_runs(
        client: BatchClient, emulator: BatchEmulator) -> None:
    _create_pool(client, "p1", start_task=m.BatchStartTask(command_line=GATE,
                                                            wait_for_success=False))
    node = wait_until(lambda: (n := _node(client, "p1")) is not None and n.state == "idle" and n,
                      what="idle node")
    assert node.start_task_info.state == "running"
    make_job(client, "j1", "p1")
    client.create_task("j1", m.BatchTaskCreateOptions(id="t1", command_line="/bin/true"))
    assert wait_completed(client, "j1", "t1").execution_info.result == "success"
    _open_gate(emulator, "p1", node.id)
    wait_until(lambda: _node(client, "p1").start_task_info.state == "completed",  # type: ignore[union-attr]
               what="start task completion")


def test_failed_start_task_leaves_the_node_unusable_with_its_stderr(client: BatchClient) -> None:
    _create_pool(client, "p1", start_task=m.BatchStartTask(
        command_line="/bin/sh -c 'echo boom >&2; exit 3'", max_task_retry_count=1))
    node = wait_until(lambda: (n := _node(client, "p1")) is not None
                      and n.state == "starttaskfailed" and n, what="starttaskfailed")
    info = node.start_task_info
    assert (info.state, info.result, info.exit_code, info.retry_count) == (
        "completed", "failure", 3, 1)
    assert info.failure_info.code == "FailureExitCode" and info.last_retry_time is not None
    assert _file(client, "p1", node.id, "startup/stderr.txt") == b"boom\n"
    assert [n.id for n in client.list_nodes("p1", filter="state eq 'starttaskfailed'")] == [node.id]
    counts = next(iter(client.list_pool_node_counts())).dedicated
    assert counts.start_task_failed == 1 and counts.idle == 0
    make_job(client, "j1", "p1")
    client.create_task("j1", m.BatchTaskCreateOptions(id="t1", command_line="/bin/true"))
    assert client.get_task("j1", "t1").state == "active"  # never scheduled on that node
    assert _node(client, "p1").state == "starttaskfailed"  # type: ignore[union-attr]


def test_start_task_environment_directories_identity_and_no_shell(
        client: BatchClient, files_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    script = ("import os, sys; e = os.environ; print(sys.argv[1]); "
              "print(e['GREETING'], e['AZ_BATCH_TASK_USER_IDENTITY'], os.getcwd() == "
              "e['AZ_BATCH_TASK_WORKING_DIR'] == e['AZ_BATCH_NODE_STARTUP_DIR'] + '/wd', "
              "'AZ_BATCH_TASK_ID' in e, 'AZ_BATCH_JOB_ID' in e, "
              "os.path.isdir(e['AZ_BATCH_NODE_SHARED_DIR']))")
    start = m.BatchStartTask(
        command_line=f'python3 -c "{script}" $HOME',
        environment_settings=[m.EnvironmentSetting(name="GREETING", value="hi")],
        user_identity=m.UserIdentity(auto_user=m.AutoUserSpecification(
            scope="pool", elevation_level="admin")))
    make_pool(client, "p1", start_task=start)
    node = _node(client, "p1")
    assert node is not None
    out = _file(client, "p1", node.id, "startup/stdout.txt").decode().splitlines()
    assert out == ["$HOME", "hi PoolAdmin True False False True"]  # $HOME: no shell

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # the node's downloads
    make_pool(client, "p2", start_task=m.BatchStartTask(
        command_line="python3 tool.py",
        resource_files=[m.ResourceFile(http_url=f"{files_url}/tool.py", file_path="tool.py")]))
    node = _node(client, "p2")
    assert node is not None and node.start_task_info.result == "success"
    assert _file(client, "p2", node.id, "startup/wd/tool.py").startswith(b"print(")
    assert _file(client, "p2", node.id, "startup/stdout.txt") == b"from the resource file\n"


def test_reboot_reruns_the_start_task_and_requeues_running_tasks(
        client: BatchClient, emulator: BatchEmulator) -> None:
    make_pool(client, "p1", start_task=m.BatchStartTask(
        command_line="/bin/sh -c 'echo boot >> \"$AZ_BATCH_NODE_SHARED_DIR/boots\"'"))
    node = _node(client, "p1")
    assert node is not None
    make_job(client, "j1", "p1")
    client.create_task("j1", m.BatchTaskCreateOptions(id="t1", command_line=GATE))
    wait_until(lambda: client.get_task("j1", "t1").state == "running", what="running task")
    client.begin_reboot_node("p1", node.id, {"nodeRebootOption": "requeue"},
                             polling_interval=POLL).result()
    task = client.get_task("j1", "t1")
    assert task.execution_info.requeue_count == 1
    wait_until(lambda: _node(client, "p1").state in ("idle", "running"),  # type: ignore[union-attr]
               what="node back")
    assert _file(client, "p1", node.id, "shared/boots") == b"boot\nboot\n"
    assert _node(client, "p1").last_boot_time > node.last_boot_time  # type: ignore[union-attr]
    _open_gate(emulator, "p1", node.id)
    assert wait_completed(client, "j1", "t1").execution_info.result == "success"


def test_reboot_is_refused_unless_idle_or_running(client: BatchClient) -> None:
    from azure.core.exceptions import HttpResponseError, ResourceExistsError

    _create_pool(client, "p1", start_task=m.BatchStartTask(command_line="/bin/false"))
    node = wait_until(lambda: (n := _node(client, "p1")) is not None
                      and n.state == "starttaskfailed" and n, what="starttaskfailed")
    with pytest.raises(ResourceExistsError) as info:
        client.begin_reboot_node("p1", node.id, {"nodeRebootOption": "requeue"})
    assert info.value.error.code == "OperationInvalidForCurrentState"
    with pytest.raises(HttpResponseError) as bad:
        client.begin_reboot_node("p1", node.id, {"nodeRebootOption": "later"})
    assert bad.value.status_code == 400


def test_bare_image_has_the_host_python_and_no_packages(tmp_path: Path) -> None:
    bare = bare_image_path(tmp_path / "images")
    with BatchEmulator(nodes=1, slots_per_node=1, path_prefix=bare,
                       container_path_prefix=PATH_PREFIX, transition_delay=0.02) as emu:
        client = client_for(emu)
        make_pool(client, "p1")
        make_job(client, "j1", "p1")
        probe = ("import importlib.util as u, sys; "
                 "print(sys.version_info[:2], u.find_spec('azure') is None, sys.prefix)")
        client.create_task("j1", m.BatchTaskCreateOptions(
            id="t1", command_line=f'python3 -c "{probe}"'))
        task = wait_completed(client, "j1", "t1")
        assert task.execution_info.result == "success"
        out = b"".join(client.download_task_file("j1", "t1", "stdout.txt")).decode().split()
        assert " ".join(out[:2]) == str(tuple(sys.version_info[:2]))
        assert out[2] == "True" and out[3] == str(Path(bare[0]).parent)
        client.close()
