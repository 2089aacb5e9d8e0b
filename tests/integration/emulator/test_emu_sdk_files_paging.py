"""Task/node files and list paging through the official SDK."""

from __future__ import annotations

import azure.batch.models as m
import pytest
from azure.batch import BatchClient
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from emu_sdk_kit import make_job, make_pool, wait_completed

from azure_batch_executor.emulator import BatchEmulator

WRITE = ("python3 -c \"import os; os.makedirs('sub', exist_ok=True); "
         "open('out.txt','w').write('hello world'); open('sub/deep.bin','wb').write(b'xyz'); "
         "print('to stdout')\"")


def test_task_files(client: BatchClient) -> None:
    make_pool(client, "p1")
    make_job(client, "j1", "p1")
    client.create_task("j1", m.BatchTaskCreateOptions(id="t1", command_line=WRITE))
    task = wait_completed(client, "j1", "t1")
    assert task.execution_info.result == "success", task.execution_info.failure_info
    top = {f.name: f for f in client.list_task_files("j1", "t1")}
    assert {"stdout.txt", "stderr.txt", "wd"} <= set(top)
    assert top["wd"].is_directory and top["stdout.txt"].properties.content_length == 10
    names = {f.name for f in client.list_task_files("j1", "t1", recursive=True)}
    assert {"wd/out.txt", "wd/sub", "wd/sub/deep.bin"} <= names
    only_wd = {f.name for f in client.list_task_files("j1", "t1", recursive=True,
                                                      filter="startswith(name,'wd/')")}
    assert only_wd == {"wd/out.txt", "wd/sub", "wd/sub/deep.bin"}

    assert b"".join(client.download_task_file("j1", "t1", "wd/out.txt")) == b"hello world"
    part = b"".join(client.download_task_file("j1", "t1", "wd/out.txt", ocp_range="bytes=6-10"))
    assert part == b"world"
    props = client.get_task_file_properties("j1", "t1", "wd/sub/deep.bin")
    assert props.content_length == 3 and props.is_directory in (False, "false")
    assert props.file_mode and props.url.endswith("wd%2Fsub%2Fdeep.bin")

    with pytest.raises(ResourceNotFoundError) as missing:
        b"".join(client.download_task_file("j1", "t1", "wd/nope.txt"))
    assert missing.value.status_code == 404  # streamed: the SDK does not parse the body
    with pytest.raises(HttpResponseError) as bad_range:
        b"".join(client.download_task_file("j1", "t1", "wd/out.txt", ocp_range="bytes=99-100"))
    assert bad_range.value.status_code == 416

    client.delete_task_file("j1", "t1", "wd/out.txt")
    with pytest.raises(ResourceNotFoundError):
        client.get_task_file_properties("j1", "t1", "wd/out.txt")
    with pytest.raises(ResourceExistsError):
        client.delete_task_file("j1", "t1", "wd/sub")
    client.delete_task_file("j1", "t1", "wd/sub", recursive=True)

    node = task.node_info.node_id
    node_files = {f.name for f in client.list_node_files("p1", node, recursive=True)}
    assert "workitems/j1/job-1/t1/stdout.txt" in node_files
    assert "shared" in node_files
    stdout = "workitems/j1/job-1/t1/stdout.txt"
    assert client.get_node_file_properties("p1", node, stdout).content_length == 10
    assert b"".join(client.download_node_file("p1", node, stdout)) == b"to stdout\n"
    client.delete_node_file("p1", node, stdout)
    with pytest.raises(ResourceNotFoundError):
        client.get_task_file_properties("j1", "t1", "stdout.txt")


def test_files_of_a_task_that_never_ran(client: BatchClient) -> None:
    make_job(client, "j1", "nowhere")
    client.create_task("j1", m.BatchTaskCreateOptions(id="t1", command_line="/bin/true"))
    with pytest.raises(ResourceExistsError) as info:
        list(client.list_task_files("j1", "t1"))
    assert info.value.error.code == "TaskFilesUnavailable"


def test_2500_tasks_in_pages_of_1000_with_a_state_filter(client: BatchClient,
                                                         emulator: BatchEmulator) -> None:
    make_job(client, "big", "no-such-pool")  # tasks stay active: nothing runs
    client.create_tasks("big", [m.BatchTaskCreateOptions(id=f"t{i:05d}", command_line="x")
                                for i in range(2500)], max_concurrency=2)
    client.terminate_task("big", "t00007")
    emulator.reset_request_counts()
    pages = client.list_tasks("big", filter="state eq 'active'", select=["id", "state"],
                              max_results=1000).by_page()
    sizes, ids = [], []
    for page in pages:
        items = list(page)
        sizes.append(len(items))
        ids.extend(t.id for t in items)
    assert sum(sizes) == 2499 and len(set(ids)) == 2499 and "t00007" not in ids
    assert max(sizes) <= 1000
    assert emulator.request_counts()[("GET", "list_tasks")] == len(sizes) == 3


def test_paging_survives_state_changes_between_pages(client: BatchClient) -> None:
    make_job(client, "j1", "nowhere")
    client.create_task_collection("j1", m.BatchTaskGroup(task_values=[
        m.BatchTaskCreateOptions(id=f"t{i:02d}", command_line="x") for i in range(30)]))
    pages = client.list_tasks("j1", filter="state eq 'active'", max_results=10).by_page()
    first = [t.id for t in next(pages)]
    for i in range(12):  # complete the first 12 tasks between pages
        client.terminate_task("j1", f"t{i:02d}")
    rest = [t.id for page in pages for t in page]
    assert first == [f"t{i:02d}" for i in range(10)]
    assert rest == [f"t{i:02d}" for i in range(12, 30)]
