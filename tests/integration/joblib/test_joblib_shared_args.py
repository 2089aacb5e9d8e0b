"""joblib batches that share one large array upload it once (content-addressed blob)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from joblib import Parallel, delayed, parallel_config

from azure_batch_executor import reusable

MB5 = 5 * 1024 * 1024


def pick(data: Any, i: int) -> float:
    return float(data[i]) + len(data)


def client_blobs(local_stack: Any, ex: Any) -> dict[str, int]:
    from azure.storage.blob import ContainerClient

    from azure_batch_executor.wire.layout import JobLayout

    client = ContainerClient.from_connection_string(
        local_stack.storage_connection_string, JobLayout(ex.job_id).container)  # the job's own
    with client:
        return {b.name: b.size for b in client.list_blobs(name_starts_with=ex.job_id + "/")
                if not re.search(r"_(outputs\.pickle|stdout\.txt|stderr\.txt)$", b.name)}


def test_fifty_joblib_calls_share_one_5mb_array(local_stack: Any) -> None:
    data = np.random.default_rng().random(MB5 // 8)  # new content: a new shared blob
    with parallel_config(backend="azure_batch", n_jobs=4):
        Parallel()(delayed(pick)(np.ones(3), 0) for _ in range(2))  # the executor is up
        ex = reusable.current_executor()
        assert ex is not None
        before = client_blobs(local_stack, ex)
        out = Parallel(batch_size=1)(delayed(pick)(data, i) for i in range(50))
        assert reusable.current_executor() is ex
    assert out == [pick(data, i) for i in range(50)]
    new = {n: s for n, s in client_blobs(local_stack, ex).items() if n not in before}
    assert [re.search(r"/shared_[0-9a-f]{64}\.pickle$", n) is not None for n in new] == [True]
    assert sum(new.values()) <= 1.2 * MB5
