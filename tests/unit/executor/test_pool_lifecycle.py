"""What an executor leaves behind of its pool, job and blobs (issue 13, item 1), on the
fakes: a constructor that fails after creating the pool undoes it all; a broken executor
deletes the pool it created when asked; `delete_pool_when_done` never deletes a pool the
executor found; futures waiting for nodes fail with the pool's error."""

from __future__ import annotations

import logging
from concurrent.futures import wait

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from support.batch_sdk_fake import http_error

from azure_batch_executor.errors import PoolStartError, QuotaError

TIMEOUT = 30.0


@pytest.fixture(autouse=True)
def _info(caplog) -> None:
    caplog.set_level(logging.INFO, logger="azure_batch_executor")


def mul(a: int, b: int) -> int:
    return a * b


def test_a_constructor_failing_after_the_pool_leaves_nothing(fakes, make_executor,
                                                             caplog) -> None:
    real_connect = fakes.connect

    def connect(*a):
        store, batch = real_connect(*a)

        def create_job(job: dict) -> None:
            raise http_error(ResourceExistsError, 409, "ActiveJobAndScheduleQuotaReached")

        fakes.client.create_job = create_job  # type: ignore[method-assign]
        return store, batch

    fakes.connect = connect
    with pytest.raises(QuotaError, match="ActiveJobAndScheduleQuotaReached"):
        make_executor()
    assert fakes.client.pools == {}  # created, then deleted
    assert fakes.client.calls["delete_pool"] == 1
    assert fakes.store.blobs == {}  # the worker blob went too
    assert "the executor could not start: delete pool azure-batch-executor" in caplog.text


def test_a_constructor_failing_keeps_a_pool_it_did_not_create(fakes, make_executor) -> None:
    fakes.pool_exists = True
    real_connect = fakes.connect

    def connect(*a):
        store, batch = real_connect(*a)
        fakes.client.create_job = lambda job: (_ for _ in ()).throw(  # type: ignore
            http_error(HttpResponseError, 400, "InvalidPropertyValue"))
        return store, batch

    fakes.connect = connect
    with pytest.raises(HttpResponseError):
        make_executor()
    assert "azure-batch-executor" in fakes.client.pools
    assert fakes.client.calls["delete_pool"] == 0


def test_delete_pool_when_done_keeps_a_pool_the_executor_found(fakes, make_executor,
                                                               caplog) -> None:
    fakes.pool_exists = True
    with make_executor(delete_pool_when_done=True) as ex:
        assert ex.submit(mul, 2, 3).result(TIMEOUT) == 6
    assert fakes.client.calls["delete_pool"] == 0
    assert "pool azure-batch-executor kept: this executor did not create it" in caplog.text


def test_futures_waiting_for_nodes_fail_with_the_pool_error_and_the_pool_goes(
        fakes, make_executor, caplog) -> None:
    fakes.client = None
    ex = make_executor(pool_start_timeout=0.5, pool_status_interval=0.1,
                       delete_pool_when_done=True)
    fakes.client.node_states = {"unusable": 1}  # no node can run tasks
    fakes.client.hold.clear()  # and the fake's own runner runs nothing
    futures = [ex.submit(mul, 1, n) for n in range(3)]
    _, not_done = wait(futures, timeout=TIMEOUT)
    assert not not_done
    for future in futures:
        error = future.exception()
        assert isinstance(error, PoolStartError)
        assert "1 node(s) are unusable" in str(error)
    assert ex.broken is not None
    assert "pool azure-batch-executor: no node can run tasks yet" in caplog.text
    ex._manager.join(TIMEOUT)
    assert fakes.client.calls["delete_pool"] == 1  # it created the pool, and was asked


def test_an_interrupt_while_starting_leaves_nothing(fakes, make_executor) -> None:
    real_connect = fakes.connect

    def connect(*a):
        store, batch = real_connect(*a)

        def create_job(job: dict) -> None:
            raise KeyboardInterrupt

        fakes.client.create_job = create_job  # type: ignore[method-assign]
        return store, batch

    fakes.connect = connect
    with pytest.raises(KeyboardInterrupt):
        make_executor()
    assert fakes.client.pools == {} and fakes.store.blobs == {}
