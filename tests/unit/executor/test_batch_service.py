"""`batch.BatchService`'s pool and job requests against the fake SDK client."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError
from support.batch_sdk_fake import FAKE_SETTINGS, FakeBatchClient, http_error
from support.memory_store import MemoryBlobStore

from azure_batch_executor.cloud.batch import BatchService
from azure_batch_executor.cloud.retry import RequestStats, RetryPolicy
from azure_batch_executor.config import Settings
from azure_batch_executor.errors import ConfigurationError

REGISTRY = {"registryServer": "reg.azurecr.io", "username": "reg", "password": "pw"}


@pytest.fixture
def service() -> Iterator[Callable[..., tuple[BatchService, FakeBatchClient]]]:
    """A BatchService on a FakeBatchClient; settings override FAKE_SETTINGS by keyword."""
    clients: list[FakeBatchClient] = []

    def make(**kw) -> tuple[BatchService, FakeBatchClient]:
        settings = Settings.resolve(env={}, **{**FAKE_SETTINGS, **kw})
        stats = RequestStats()
        client = FakeBatchClient(MemoryBlobStore(stats))
        batch = BatchService(settings, stats, RetryPolicy(attempts=2, initial=0.01, cap=0.01),
                             client=client)
        clients.append(client)
        return batch, client

    yield make
    for client in clients:
        client.shutdown()


def test_pool_exists_is_one_get_and_404_means_no(service) -> None:
    batch, client = service()
    assert batch.pool_exists() is False
    batch.ensure_pool()
    assert batch.pool_exists() is True
    assert batch.pool_exists("another-pool") is False
    assert client.calls["get_pool"] == 4  # one per pool_exists, one in ensure_pool


def test_pool_exists_names_the_variables_when_credentials_are_refused(service) -> None:
    batch, client = service()

    def refuse(pool_id, select=None):
        raise http_error(ClientAuthenticationError, 403, "AuthenticationFailed")

    client.get_pool = refuse  # type: ignore[method-assign]
    with pytest.raises(ConfigurationError, match="check BATCH_ACCOUNT_NAME and BATCH_ACCOUNT_KEY"):
        batch.pool_exists()
    with pytest.raises(ConfigurationError, match="refused the credentials"):
        batch.ensure_pool()


def test_a_new_container_pool_gets_the_registry_credentials(service) -> None:
    batch, client = service(container_image="reg.azurecr.io/img:v1")
    batch.ensure_pool(registries=[REGISTRY])
    config = client.pools["azure-batch-executor"]["virtualMachineConfiguration"][
        "containerConfiguration"]
    assert config["containerImageNames"] == ["reg.azurecr.io/img:v1"]
    assert config["containerRegistries"] == [REGISTRY]


def test_registries_are_left_out_of_a_pool_without_containers(service) -> None:
    batch, _ = service()
    vm = batch.pool_body(registries=[REGISTRY])["virtualMachineConfiguration"]
    assert "containerConfiguration" not in vm
    assert "containerRegistries" not in str(vm)


def test_delete_job(service) -> None:
    batch, client = service()
    batch.create_job("job-1")
    batch.delete_job("job-1")
    assert "job-1" not in client.jobs
    with pytest.raises(ResourceNotFoundError):
        batch.delete_job("job-1")
