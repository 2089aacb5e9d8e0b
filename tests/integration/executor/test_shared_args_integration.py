"""Large arguments shared by many calls are uploaded once per executor (content-addressed)."""

from __future__ import annotations

import re

import numpy as np
import pytest

N_TASKS = 50
MB5 = 5 * 1024 * 1024


def weighted(data, i):
    return float(data[i]) * 2 + len(data)


def uploaded_blobs(local_stack, ex) -> dict[str, int]:
    """The blobs the client uploaded under the job's prefix (name -> size)."""
    from azure.storage.blob import ContainerClient

    from azure_batch_executor.wire.layout import JobLayout

    client = ContainerClient.from_connection_string(
        local_stack.storage_connection_string, JobLayout(ex.job_id).container)  # the job's own
    with client:
        blobs = {b.name: b.size for b in client.list_blobs(name_starts_with=ex.job_id + "/")}
    return {name: size for name, size in blobs.items()
            if not re.search(r"_(outputs\.pickle|stdout\.txt|stderr\.txt)$", name)}


def _check_one_shared_blob(local_stack, ex) -> None:
    blobs = uploaded_blobs(local_stack, ex)
    shared = [n for n in blobs if re.search(r"/shared_[0-9a-f]{64}\.pickle$", n)]
    assert len(shared) == 1 and blobs[shared[0]] >= MB5
    assert not [n for n in blobs if n.endswith("_inputs.pickle")]  # all specs inline
    assert sum(blobs.values()) <= 1.2 * MB5


@pytest.mark.parametrize("how", ["submit", "map"])
def test_fifty_tasks_share_one_5mb_array(local_stack, make_batch_executor, how) -> None:
    data = np.arange(MB5 // 8, dtype=np.float64)
    ex = make_batch_executor(max_workers=4)
    expected = [weighted(data, i) for i in range(N_TASKS)]
    if how == "submit":
        futures = [ex.submit(weighted, data, i) for i in range(N_TASKS)]
        results = [f.result(timeout=300) for f in futures]
    else:
        results = list(ex.map(weighted, [data] * N_TASKS, range(N_TASKS), timeout=300))
    assert results == expected
    _check_one_shared_blob(local_stack, ex)


def test_equal_copies_share_one_blob(local_stack, make_batch_executor) -> None:
    data = np.arange(MB5 // 8, dtype=np.float64)
    ex = make_batch_executor(max_workers=4)
    futures = [ex.submit(weighted, data.copy(), i) for i in range(5)]
    assert [f.result(timeout=300) for f in futures] == [weighted(data, i) for i in range(5)]
    _check_one_shared_blob(local_stack, ex)
