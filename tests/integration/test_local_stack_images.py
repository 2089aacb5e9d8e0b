"""`LocalStack(node_image=..., allocation_delay=...)`: what the nodes run and how they boot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import azure.batch.models as m
import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from support.waiting import wait_until

from azure_batch_executor.local import LocalStack

PROBE = 'python3 -c "import importlib.util as u, sys; print(u.find_spec(\'azure\') is None)"'


def _wait(probe: Any, what: str, timeout: float = 30.0) -> Any:
    return wait_until(probe, what, timeout)


def _pool(client: BatchClient, pool_id: str, **kwargs: Any) -> None:
    vm = m.VirtualMachineConfiguration(
        image_reference=m.BatchVmImageReference(publisher="canonical",
                                                offer="0001-com-ubuntu-server-jammy",
                                                sku="22_04-lts", version="latest"),
        node_agent_sku_id="batch.node.ubuntu 22.04", **kwargs)
    client.create_pool(m.BatchPoolCreateOptions(id=pool_id, vm_size="standard_d2s_v3",
                                                virtual_machine_configuration=vm,
                                                target_dedicated_nodes=1))


def _run(client: BatchClient, job_id: str, pool_id: str, **task: Any) -> bytes:
    client.create_job(m.BatchJobCreateOptions(id=job_id,
                                              pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line=PROBE, **task))
    _wait(lambda: client.get_task(job_id, "t").state == "completed", "the task")
    return b"".join(client.download_task_file(job_id, "t", "stdout.txt"))


@pytest.mark.parametrize("image", ["bare", "client"])
def test_node_image(image: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # the bare image is made here
    with LocalStack(nodes=1, node_image=image, allocation_delay=0.3) as stack:
        client = BatchClient(stack.batch_account_url, AzureNamedKeyCredential(
            stack.batch_account_name, stack.batch_account_key))
        _pool(client, "vm")
        _wait(lambda: any(n.state == "starting" for n in client.list_nodes("vm")), "starting")
        _wait(lambda: any(n.state == "idle" for n in client.list_nodes("vm")), "idle")
        bare = image == "bare"
        assert _run(client, "j1", "vm") == (b"True\n" if bare else b"False\n")
        # a container pool's tasks run in the image built from the client's environment
        _pool(client, "box", container_configuration=m.BatchContainerConfiguration(
            type="dockerCompatible", container_image_names=["worker:latest"]))
        assert _run(client, "j2", "box", container_settings=m.BatchTaskContainerSettings(
            image_name="worker:latest")) == b"False\n"
        assert (tmp_path / "azure-batch-executor" / "node-images").is_dir() == bare
        client.close()
