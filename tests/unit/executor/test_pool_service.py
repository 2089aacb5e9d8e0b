"""`batch.BatchService`'s pool side against the fake SDK client (issue 13): quotas are
clear errors after a bounded number of requests, a pool another client creates meanwhile
is used, the body of a created pool, and what an existing autoscale pool offers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError
from support.batch_sdk_fake import FAKE_SETTINGS, FakeBatchClient, http_error
from support.memory_store import MemoryBlobStore

from azure_batch_executor.cloud.batch import BatchService
from azure_batch_executor.cloud.ports import EnsuredPool
from azure_batch_executor.cloud.retry import RequestStats, RetryPolicy
from azure_batch_executor.config import Settings
from azure_batch_executor.errors import ConfigurationError, QuotaError

Make = Callable[..., tuple[BatchService, FakeBatchClient, RequestStats]]


@pytest.fixture
def service() -> Iterator[Make]:
    clients: list[FakeBatchClient] = []

    def make(**kw: Any) -> tuple[BatchService, FakeBatchClient, RequestStats]:
        settings = Settings.resolve(env={}, **{**FAKE_SETTINGS, **kw})
        stats = RequestStats()
        client = FakeBatchClient(MemoryBlobStore(stats))
        clients.append(client)
        batch = BatchService(settings, stats, RetryPolicy(attempts=2, initial=0.01, cap=0.01),
                             client=client)
        return batch, client, stats

    yield make
    for client in clients:
        client.shutdown()


def refuse(code: str) -> Callable[..., None]:
    def create_pool(pool: dict) -> None:
        raise http_error(ResourceExistsError, 409, code)
    return create_pool


def test_the_pool_quota_is_a_quota_error_after_one_read_and_one_create(service) -> None:
    batch, client, stats = service()
    client.create_pool = refuse("PoolQuotaReached")  # type: ignore[method-assign]
    with pytest.raises(QuotaError) as info:
        batch.ensure_pool()
    assert info.value.code == "PoolQuotaReached" and info.value.account == "fake"
    message = str(info.value)
    assert message.startswith("the Batch account fake has reached its quota of pools "
                              "(PoolQuotaReached: PoolQuotaReached (injected)), so pool "
                              "azure-batch-executor could not be created;")
    assert "az batch account show -n fake -g RESOURCE_GROUP --query poolQuota" in message
    assert "Request quota increase" in message and "az batch pool delete" in message
    counts = stats.snapshot()
    assert (counts["batch.get_pool"], counts["batch.create_pool"]) == (1, 1)


def test_a_pool_being_deleted_names_the_wait(service) -> None:
    batch, client, _ = service()
    client.create_pool = refuse("PoolBeingDeleted")  # type: ignore[method-assign]
    with pytest.raises(ConfigurationError, match=r"is being deleted .* pass another pool_id"):
        batch.ensure_pool()


def test_a_pool_created_meanwhile_by_another_client_is_used_as_it_is(service) -> None:
    batch, client, stats = service()
    real_create = client.create_pool

    def race(pool: dict) -> None:  # another executor creates it first
        real_create(dict(pool, id=pool["id"]))
        raise http_error(ResourceExistsError, 409, "PoolExists")

    client.create_pool = race  # type: ignore[method-assign]
    assert batch.ensure_pool() == EnsuredPool(capacity=1, created=False)
    assert stats.snapshot()["batch.get_pool"] == 2


def test_a_pool_that_keeps_vanishing_ends_after_a_few_tries(service) -> None:
    batch, client, stats = service()
    client.create_pool = refuse("PoolExists")  # type: ignore[method-assign]
    with pytest.raises(ConfigurationError, match="refused as existing 3 times"):
        batch.ensure_pool()
    assert stats.snapshot()["batch.create_pool"] == 3


def test_the_job_quota_is_a_quota_error(service) -> None:
    batch, client, _ = service()

    def create_job(job: dict) -> None:
        raise http_error(ResourceExistsError, 409, "ActiveJobAndScheduleQuotaReached")

    client.create_job = create_job  # type: ignore[method-assign]
    with pytest.raises(QuotaError) as info:
        batch.create_job("job-1")
    assert info.value.code == "ActiveJobAndScheduleQuotaReached"
    assert "quota of active jobs and job schedules" in str(info.value)
    assert "--query activeJobAndJobScheduleQuota" in str(info.value)
    assert "az batch job terminate --job-id ID" in str(info.value)


def test_a_created_pool_is_tagged_and_autoscales(service) -> None:
    batch, client, _ = service(max_nodes=6, task_slots_per_node=2, idle_timeout=300)
    assert batch.ensure_pool() == EnsuredPool(capacity=12, created=True)
    pool = client.pools["azure-batch-executor"]
    assert pool["metadata"] == [{"name": "created-by", "value": "azure-batch-executor"},
                                {"name": "abx-max-nodes", "value": "6"}]
    assert pool["autoScaleEvaluationInterval"] == "PT5M"
    assert "$idle = TimeInterval_Second * 300;" in pool["autoScaleFormula"]
    assert "$nodes = min(6, ($tasks + 1) / 2);" in pool["autoScaleFormula"]
    again = batch.ensure_pool()  # now it exists: its formula's most nodes x slots
    assert again == EnsuredPool(capacity=12, created=False)


def test_pool_status_reads_the_node_counts(service) -> None:
    batch, client, stats = service()
    batch.ensure_pool()
    client.node_states = {"starting": 1, "startTaskFailed": 2}
    status = batch.pool_status(full=False)
    assert status is not None and dict(status.nodes) == {"starting": 1, "starttaskfailed": 2}
    assert status.usable == 0 and not status.full
    assert stats.snapshot()["batch.node_counts"] == 1
