"""Container images with a private registry, and existing pools that cannot serve a
request (issue 12, items 5 and 6), through the SDK on the process-wide local stack."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from azure_batch_executor import AzureBatchExecutor, ConfigurationError

IMAGE = "myregistry.azurecr.io/worker:v1"
REGISTRY = {"registry_server": "myregistry.azurecr.io", "registry_username": "myregistry",
            "registry_password": "registry-secret-for-tests"}


@pytest.fixture
def sdk(shared_stack: Any) -> Any:
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    client = BatchClient(shared_stack.batch_account_url, AzureNamedKeyCredential(
        shared_stack.batch_account_name, shared_stack.batch_account_key))
    yield client
    client.close()


def test_a_private_registry_reaches_the_new_pool_and_each_task(sdk: Any, caplog) -> None:
    pool_id = f"abx-image-{uuid.uuid4().hex[:8]}"
    with AzureBatchExecutor(max_workers=2, pool_id=pool_id, container_image=IMAGE,
                            **REGISTRY) as ex:
        assert ex.submit(pow, 2, 10).result(timeout=120) == 1024
        job_id = ex.job_id
        assert "registry-secret-for-tests" not in repr(ex.settings)
    pool = sdk.get_pool(pool_id)
    containers = pool.virtual_machine_configuration.container_configuration
    assert containers.container_image_names == [IMAGE]
    [registry] = containers.container_registries
    assert (registry.registry_server, registry.username) == ("myregistry.azurecr.io",
                                                             "myregistry")
    [task] = list(sdk.list_tasks(job_id))
    assert task.container_settings.image_name == IMAGE
    assert task.container_settings.registry.registry_server == "myregistry.azurecr.io"
    assert "registry-secret-for-tests" not in caplog.text
    sdk.begin_delete_pool(pool_id).result()


def test_a_managed_identity_instead_of_a_login(sdk: Any) -> None:
    pool_id = f"abx-image-{uuid.uuid4().hex[:8]}"
    identity = ("/subscriptions/0000/resourceGroups/rg/providers/"
                "Microsoft.ManagedIdentity/userAssignedIdentities/pull")
    with AzureBatchExecutor(max_workers=1, pool_id=pool_id, container_image=IMAGE,
                            registry_server="myregistry.azurecr.io",
                            registry_identity=identity) as ex:
        assert ex.submit(pow, 3, 3).result(timeout=120) == 27
    [registry] = sdk.get_pool(pool_id).virtual_machine_configuration \
        .container_configuration.container_registries
    assert registry.identity_reference.resource_id == identity
    sdk.begin_delete_pool(pool_id).result()


def test_an_existing_pool_without_containers_cannot_serve_an_image(shared_stack: Any) -> None:
    with AzureBatchExecutor(max_workers=1) as ex:  # the stack's pool, no containers
        pool_id = ex.pool_id
    with pytest.raises(ConfigurationError) as info:
        AzureBatchExecutor(max_workers=1, pool_id=pool_id, container_image=IMAGE, **REGISTRY)
    message = str(info.value)
    assert f"existing pool {pool_id} has no container configuration" in message
    assert "another pool_id" in message and "az batch pool delete" in message


@pytest.mark.parametrize(("settings", "match"), [
    ({"registry_server": "r.azurecr.io", "registry_username": "u"}, "registry_password"),
    ({"registry_username": "u", "registry_password": "p"}, "registry_server"),
    ({"registry_server": "r.azurecr.io"}, "needs a login"),
])
def test_half_a_registry_names_what_is_missing(settings: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        AzureBatchExecutor(container_image=IMAGE, **settings)
