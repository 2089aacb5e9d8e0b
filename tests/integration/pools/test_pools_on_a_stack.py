"""Pools the executor creates, the wait for their nodes, and quotas (issue 13), through the
official SDK on the pool suites' local stack (tests/integration/pools/conftest.py):

- a pool created by the executor autoscales: it grows with the pending tasks, up to
  `max_nodes`, and returns to zero after `idle_timeout`;
- while no node can run the job's tasks the executor says so, then the waiting futures
  fail with the pool's error: a pool with zero nodes (after `pool_start_timeout`), a core
  quota of 0 and a start task failing on every node (at once), a failing job
  preparation;
- the pool and job quotas are errors raised after a bounded number of requests, with
  nothing left behind; nor after any other constructor failure;
- `delete_pool_when_done` deletes only a pool the executor created.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import wait
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from pools_kit import Gate, until, wait_gate

from azure_batch_executor import (
    AzureBatchExecutor,
    CoreQuotaError,
    EnvironmentPreparationError,
    PoolStartError,
    QuotaError,
)

TIMEOUT = 60.0
IMAGE = {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server",
         "version": "latest"}


@pytest.fixture(autouse=True)
def _info(caplog) -> None:
    caplog.set_level(logging.INFO, logger="azure_batch_executor")


def lines(caplog, pool_id: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.getMessage().startswith(f"pool {pool_id}:")]


def create_pool(sdk: Any, pool_id: str, nodes: int, **extra: Any) -> None:
    sdk.create_pool({"id": pool_id, "vmSize": "standard_d2s_v3",
                     "virtualMachineConfiguration": {"imageReference": IMAGE,
                                                     "nodeAgentSKUId": "batch.node.ubuntu 24.04"},
                     "targetDedicatedNodes": nodes, **extra})


def gone(sdk: Any, pool_id: str) -> bool:
    try:
        sdk.get_pool(pool_id)
    except ResourceNotFoundError:
        return True
    return False


def blobs(stack: Any, container: str) -> list[str]:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(stack.storage_connection_string)
    client = service.get_container_client(container)
    return [b.name for b in client.list_blobs()] if client.exists() else []


def batch_requests(stack: Any) -> int:
    return sum(stack.emulator.request_counts().values())


# --- autoscale ----------------------------------------------------------------------------

def test_a_created_pool_grows_with_the_pending_tasks_and_returns_to_zero(
        stack, account, sdk, pool_id, tmp_path) -> None:
    gate = Gate(tmp_path)
    with AzureBatchExecutor(pool_id=pool_id, max_nodes=3, task_slots_per_node=1,
                            delete_pool_when_done=True, **account) as ex:
        assert ex.max_workers == 3
        pool = sdk.get_pool(pool_id)
        assert pool.enable_auto_scale and "$PendingTasks" in pool.auto_scale_formula
        assert {m.name: m.value for m in pool.metadata}["created-by"] == "azure-batch-executor"
        futures = [ex.submit(wait_gate, gate.path, n) for n in range(6)]
        until(lambda: sdk.get_pool(pool_id).current_dedicated_nodes == 3, TIMEOUT,
              "the pool to grow to max_nodes")
        gate.open()
        assert sorted(f.result(TIMEOUT) for f in futures) == list(range(6))
        # idle_timeout (600 s, 1 s here): no task pending, the pool goes back to no node
        until(lambda: (sdk.get_pool(pool_id).current_dedicated_nodes,
                       sdk.get_pool(pool_id).target_dedicated_nodes) == (0, 0), TIMEOUT,
              "the pool to return to zero nodes")
    until(lambda: gone(sdk, pool_id), TIMEOUT, "the pool it created to be deleted")


# --- never a silent wait -----------------------------------------------------------------

def test_a_pool_with_zero_nodes_says_so_then_fails_after_the_timeout(
        stack, account, sdk, pool_id, caplog) -> None:
    create_pool(sdk, pool_id, 0)
    ex = AzureBatchExecutor(pool_id=pool_id, pool_start_timeout=2, pool_status_interval=0.5,
                            delete_pool_when_done=True, **account)
    try:
        started = time.monotonic()
        futures = [ex.submit(pow, 2, n) for n in range(3)]
        _, not_done = wait(futures, timeout=TIMEOUT)
        assert not not_done, "futures waiting for nodes must fail after pool_start_timeout"
        assert time.monotonic() - started < 15
        for future in futures:
            error = future.exception()
            assert isinstance(error, PoolStartError) and not isinstance(error, QuotaError)
            assert f"no node of pool {pool_id} could run the tasks of job {ex.job_id} after" \
                in str(error)
            assert "the pool asks for no node" in str(error)
            assert f"az batch pool resize --pool-id {pool_id}" in str(error)
    finally:
        ex.shutdown(wait=True)
    said = lines(caplog, pool_id)
    assert said[0].startswith(f"pool {pool_id}: no node can run tasks yet (allocation ")
    assert "0 of 0 target node(s): no node; the pool asks for no node" in said[0]
    assert any("still no usable node after" in line for line in said[1:])
    assert not gone(sdk, pool_id)  # not the executor's pool: kept though asked
    sdk.begin_delete_pool(pool_id, polling_interval=0.1).result()


@pytest.mark.parametrize(("quota", "kind", "code"), [
    ("dedicated_cores", {}, "AccountCoreQuotaReached"),
    ("low_priority_cores", {"spot_nodes": 1}, "AccountLowPriorityCoreQuotaReached"),
])
def test_a_core_quota_of_zero_fails_the_futures_at_once(
        stack, account, sdk, pool_id, caplog, quota, kind, code) -> None:
    stack.emulator.set_quotas(**{quota: 0})
    ex = AzureBatchExecutor(pool_id=pool_id, delete_pool_when_done=True, **kind, **account)
    try:
        future = ex.submit(pow, 2, 8)
        error = future.exception(timeout=TIMEOUT)  # not pool_start_timeout: 20 minutes
    finally:
        ex.shutdown(wait=True)
    assert isinstance(error, CoreQuotaError) and isinstance(error, QuotaError)
    assert error.code == code
    message = str(error)
    assert message.startswith(f"no node of pool {pool_id} could run the tasks of job "
                              f"{ex.job_id}: Batch reports {code}:")
    assert "CoreQuota=0" in message and "Request quota increase" in message
    assert f"az batch account show -n {stack.batch_account_name}" in message
    assert lines(caplog, pool_id)[0].startswith(f"pool {pool_id}: no node can run tasks yet")
    until(lambda: gone(sdk, pool_id), TIMEOUT, "the pool it created to be deleted")


def test_a_start_task_failing_on_every_node_fails_the_futures_with_its_stderr(
        stack, account, sdk, pool_id, caplog) -> None:
    create_pool(sdk, pool_id, 1, startTask={
        "commandLine": "/bin/sh -c 'echo no such package: libfoo >&2; exit 3'",
        "waitForSuccess": True})
    ex = AzureBatchExecutor(pool_id=pool_id, **account)
    try:
        error = ex.submit(pow, 2, 8).exception(timeout=TIMEOUT)
    finally:
        ex.shutdown(wait=True)
    assert isinstance(error, PoolStartError)
    assert "the pool's start task failed on 1 node(s) (node " in str(error)
    assert "exit code 3" in str(error)
    assert error.stderr_tail.strip() == "no such package: libfoo"
    assert str(error).endswith("start task stderr tail:\nno such package: libfoo")
    assert lines(caplog, pool_id)[0].startswith(f"pool {pool_id}: no node can run tasks yet")
    sdk.begin_delete_pool(pool_id, polling_interval=0.1).result()


def test_a_failing_job_preparation_is_said_then_fails_the_futures(
        stack, account, sdk, pool_id, caplog) -> None:
    from azure.storage.blob import BlobServiceClient

    from azure_batch_executor.wire.layout import JobLayout

    ex = AzureBatchExecutor(pool_id=pool_id, delete_pool_when_done=True,
                            pool_status_interval=0.2,
                            **{**account, "environment": ["abx-example-package==1.0"]})
    try:  # the preparation's script is gone: its download fails on every node
        BlobServiceClient.from_connection_string(stack.storage_connection_string) \
            .get_blob_client(JobLayout(ex.job_id).container, f"{ex.job_id}/abx_prepare.py") \
            .delete_blob()
        futures = [ex.submit(pow, 2, n) for n in range(2)]
        _, not_done = wait(futures, timeout=TIMEOUT)
        assert not not_done
        for future in futures:
            error = future.exception()
            assert isinstance(error, EnvironmentPreparationError)
            assert "BlobNotFound" in str(error)
    finally:
        ex.shutdown(wait=True)
    # the nodes boot first (allocation_delay): the wait for them is said
    assert lines(caplog, pool_id)[0].startswith(f"pool {pool_id}: no node can run tasks yet")


# --- quotas and constructor failures leave nothing behind ----------------------------------

def test_the_pool_quota_is_an_error_after_a_few_requests_and_leaves_nothing(
        stack, account, sdk, pool_id) -> None:
    stack.emulator.set_quotas(pools=0)
    stack.emulator.reset_request_counts()
    container = f"abx-{pool_id}"
    with pytest.raises(QuotaError) as info:
        AzureBatchExecutor(pool_id=pool_id, container_name=container, **account)
    assert info.value.code == "PoolQuotaReached"
    assert "quota of pools" in str(info.value) and "Request quota increase" in str(info.value)
    assert batch_requests(stack) <= 3  # GET the pool, POST it: refused
    assert gone(sdk, pool_id)
    assert blobs(stack, container) == []


def test_the_job_quota_is_an_error_and_the_pool_made_for_it_goes(
        stack, account, sdk, pool_id) -> None:
    stack.emulator.set_quotas(active_jobs=0)
    stack.emulator.reset_request_counts()
    container = f"abx-{pool_id}"
    with pytest.raises(QuotaError) as info:
        AzureBatchExecutor(pool_id=pool_id, container_name=container, **account)
    assert info.value.code == "ActiveJobAndScheduleQuotaReached"
    assert "quota of active jobs and job schedules" in str(info.value)
    assert batch_requests(stack) <= 5  # GET + POST pool, POST job (refused), DELETE pool
    until(lambda: gone(sdk, pool_id), TIMEOUT, "the pool made for it to be deleted")
    assert list(sdk.list_jobs()) == [] or all(j.pool_info.pool_id != pool_id
                                              for j in sdk.list_jobs())
    assert blobs(stack, container) == []


def test_a_constructor_failing_after_creating_the_pool_leaves_no_pool(
        stack, account, sdk, pool_id) -> None:
    stack.emulator.inject_faults("POST", "/jobs", 400, "InvalidPropertyValue", count=1)
    container = f"abx-{pool_id}"
    with pytest.raises(HttpResponseError, match="InvalidPropertyValue"):
        AzureBatchExecutor(pool_id=pool_id, container_name=container, **account)
    until(lambda: gone(sdk, pool_id), TIMEOUT, "the pool it created to be deleted")
    assert blobs(stack, container) == []


def test_delete_pool_when_done_leaves_a_pool_the_executor_did_not_create(
        stack, account, sdk, pool_id, caplog) -> None:
    create_pool(sdk, pool_id, 1)
    with AzureBatchExecutor(pool_id=pool_id, delete_pool_when_done=True, **account) as ex:
        assert ex.submit(pow, 3, 3).result(TIMEOUT) == 27
    assert sdk.get_pool(pool_id).state.lower() == "active"
    assert f"pool {pool_id} kept: this executor did not create it" in caplog.text
    sdk.begin_delete_pool(pool_id, polling_interval=0.1).result()
