"""The Azurite handle the runner's integration tests use to arrange and inspect blobs.

Tests use azure-storage-blob here (never in the runner) to create containers,
upload blobs and sign SAS tokens with the well-known development account key.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass
class Azurite:
    endpoint: str  # http://127.0.0.1:PORT/devstoreaccount1
    service: Any  # azure.storage.blob.BlobServiceClient

    def new_container(self) -> str:
        name = f"c{uuid.uuid4().hex[:16]}"
        self.service.create_container(name)
        return name

    def upload(self, container: str, name: str, data: bytes) -> None:
        self.service.get_blob_client(container, name).upload_blob(data, overwrite=True)

    def blob_names(self, container: str) -> list[str]:
        return sorted(b.name for b in self.service.get_container_client(container).list_blobs())

    def read(self, container: str, name: str) -> bytes:
        return bytes(self.service.get_blob_client(container, name).download_blob().readall())

    def container_url(self, container: str, **permissions: bool) -> str:
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        sas = generate_container_sas(
            ACCOUNT,
            container,
            account_key=KEY,
            permission=ContainerSasPermissions(**permissions),
            expiry=datetime.now(timezone.utc) + timedelta(hours=1),
        )
        return f"{self.endpoint}/{container}?{sas}"

    def blob_url(self, container: str, name: str) -> str:
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        sas = generate_blob_sas(
            ACCOUNT,
            container,
            name,
            account_key=KEY,
            permission=BlobSasPermissions(read=True),
            expiry=datetime.now(timezone.utc) + timedelta(hours=1),
        )
        return f"{self.endpoint}/{container}/{name}?{sas}"
