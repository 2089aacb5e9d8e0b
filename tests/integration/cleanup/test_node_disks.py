"""Node disks (issue 13, item 6): a large shared argument is downloaded once per node, into
the node's shared directory, and every task definition carries a retention time.

The local stack's pool has two nodes of two slots; the tasks tell which node ran them and
the usage record counts the downloads the workers reported.
"""

from __future__ import annotations

import datetime as dt
import os

from azure_batch_executor import constants as C

N_TASKS = 12


def where_and_size(data: bytes, i: int) -> tuple[str, int, int, list[str]]:
    objects = os.path.join(os.environ["AZ_BATCH_NODE_SHARED_DIR"], *C.NODE_OBJECTS_DIR.split("/"))
    return (os.environ["AZ_BATCH_NODE_ID"], len(data), i,
            sorted(n for n in os.listdir(objects) if not n.endswith(".lock")))


def test_a_shared_argument_is_downloaded_once_per_node(make_batch_executor) -> None:
    data = os.urandom(1_000_000)  # a fresh object: no node has it yet
    ex = make_batch_executor(max_workers=4)
    futures = [ex.submit(where_and_size, data, i) for i in range(N_TASKS)]
    results = [f.result(timeout=300) for f in futures]
    assert [(size, i) for _, size, i, _ in results] == [(len(data), i) for i in range(N_TASKS)]
    nodes = {node for node, _, _, _ in results}
    (digest,) = ex._ctx.queue.objects  # the one object the executor uploaded
    assert all(digest in listing for _, _, _, listing in results)  # from the node's directory
    ex.shutdown()
    u = ex.usage()
    assert u.tasks == N_TASKS and u.nodes == len(nodes)
    assert u.node_downloads == len(nodes)  # once per node, not once per task
    assert 1_000_000 * len(nodes) <= u.node_download_bytes <= 1_001_000 * len(nodes)
    # the client uploaded it once: the task data is that object and twelve small specs
    assert 1_000_000 <= u.bytes_uploaded < 1_001_000


def test_every_task_definition_sets_a_retention_time(make_batch_executor, batch_client) -> None:
    ex = make_batch_executor(max_workers=2, keep_job=True, task_retention=600)
    assert list(ex.map(pow, [2, 3], [2, 2], timeout=300)) == [4, 9]
    assert ex.submit(pow, 2, 5).result(timeout=300) == 32
    ex.shutdown()
    tasks = list(batch_client.list_tasks(ex.job_id, select=["id", "constraints"]))
    assert len(tasks) == 3
    assert {t.constraints.retention_time for t in tasks} == {dt.timedelta(minutes=10)}
