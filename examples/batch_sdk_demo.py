"""Run a small Batch job on the local stack through the official azure-batch SDK.

What it shows: the emulator speaks the Batch REST API well enough that the
unchanged SDK creates a pool, a job and tasks; each task downloads its input
from Azurite as a resource file, runs without a shell on an emulated node, and
Batch uploads its output file back to Azurite.

    python examples/batch_sdk_demo.py
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta, timezone

from azure.batch import BatchClient, models
from azure.core.credentials import AzureNamedKeyCredential
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from azure_batch_executor.local import LocalStack

SEEDS = [1, 12, 123, 1234]
WORKER = "import sys; n = int(open('seed.txt').read()); open('out.txt', 'w').write(str(n ** 3))"


def container_sas(
    service: BlobServiceClient, name: str, permission: ContainerSasPermissions
) -> str:
    token = generate_container_sas(
        service.account_name,
        name,
        account_key=service.credential.account_key,
        permission=permission,
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
    )
    return f"{service.url.rstrip('/')}/{name}?{token}"


def main() -> int:
    with LocalStack(nodes=2, slots_per_node=2) as stack:
        blobs = BlobServiceClient.from_connection_string(stack.storage_connection_string)
        container = blobs.create_container("demo")
        for seed in SEEDS:
            container.upload_blob(f"in/seed_{seed}.txt", str(seed).encode())
        read_url = container_sas(blobs, "demo", ContainerSasPermissions(read=True))
        write_url = container_sas(blobs, "demo", ContainerSasPermissions(write=True, create=True))
        base, query = read_url.split("?", 1)

        batch = BatchClient(
            stack.batch_account_url,
            AzureNamedKeyCredential(stack.batch_account_name, stack.batch_account_key),
        )
        batch.create_pool(
            models.BatchPoolCreateOptions(
                id="demo-pool",
                vm_size="standard_d2s_v3",
                virtual_machine_configuration=models.VirtualMachineConfiguration(
                    image_reference=models.BatchVmImageReference(
                        publisher="canonical", offer="ubuntu-24_04-lts", sku="server"
                    ),
                    node_agent_sku_id="batch.node.ubuntu 24.04",
                ),
                target_dedicated_nodes=2,
                task_slots_per_node=2,
            )
        )
        batch.create_job(
            models.BatchJobCreateOptions(
                id="demo-job", pool_info=models.BatchPoolInfo(pool_id="demo-pool")
            )
        )
        tasks = [
            models.BatchTaskCreateOptions(
                id=f"cube-{seed}",
                command_line=f'python3 -c "{WORKER}"',
                resource_files=[
                    models.ResourceFile(
                        http_url=f"{base}/in/seed_{seed}.txt?{query}", file_path="seed.txt"
                    )
                ],
                output_files=[
                    models.OutputFile(
                        file_pattern="out.txt",
                        destination=models.OutputFileDestination(
                            container=models.OutputFileBlobContainerDestination(
                                container_url=write_url, path=f"out/cube_{seed}.txt"
                            )
                        ),
                        upload_options=models.OutputFileUploadConfiguration(
                            upload_condition=models.OutputFileUploadCondition.TASK_SUCCESS
                        ),
                    )
                ],
            )
            for seed in SEEDS
        ]
        batch.create_task_collection("demo-job", models.BatchTaskGroup(task_values=tasks))

        deadline = time.monotonic() + 60
        while True:
            counts = batch.get_job_task_counts("demo-job").task_counts
            if counts.completed == len(SEEDS):
                break
            if time.monotonic() > deadline:
                print("tasks did not complete within 60 s", file=sys.stderr)
                return 1
            time.sleep(0.2)

        cubes = {s: int(container.download_blob(f"out/cube_{s}.txt").readall()) for s in SEEDS}
        for seed, cube in cubes.items():
            print(f"{seed}^3 = {cube} (computed by Batch task cube-{seed})")
        serial = sum(s**3 for s in SEEDS)
        print(f"serial sum: {serial}   Batch sum: {sum(cubes.values())}")
        return 0 if serial == sum(cubes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
