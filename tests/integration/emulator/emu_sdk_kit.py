"""Helpers for the emulator's SDK tests: deadlines, pools that are ready, raw signed requests.

A unique module name (not conftest) so test modules can import it whichever other
conftest.py files pytest collected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import azure.batch.models as m
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from azure_batch_executor.emulator import BatchEmulator

T = TypeVar("T")
POLL = 0.1  # LRO polling interval for begin_* calls (the SDK's default is 5 s)
PATH_PREFIX = (str(Path(sys.executable).parent),)  # node PATH: python3 is the test's Python


def client_for(emulator: BatchEmulator, key: str | None = None) -> BatchClient:
    return BatchClient(emulator.url, AzureNamedKeyCredential(emulator.account_name,
                                                             key or emulator.account_key))


def wait_until(probe: Callable[[], T], timeout: float = 20.0, what: str = "condition",
               interval: float = 0.03) -> T:
    """Poll `probe` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def make_pool(client: BatchClient, pool_id: str = "pool", nodes: int = 1, slots: int = 1,
              **kwargs: Any) -> m.BatchPool:
    client.create_pool(m.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2s_v3",
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.BatchVmImageReference(publisher="canonical",
                                                    offer="0001-com-ubuntu-server-jammy",
                                                    sku="22_04-lts", version="latest"),
            node_agent_sku_id="batch.node.ubuntu 22.04"),
        target_dedicated_nodes=nodes, task_slots_per_node=slots, **kwargs))
    wait_until(lambda: client.get_pool(pool_id).allocation_state == "steady", what="steady pool")
    wait_until(lambda: all(n.state == "idle" for n in client.list_nodes(pool_id)),
               what="idle nodes")
    return client.get_pool(pool_id)


def make_job(client: BatchClient, job_id: str = "job", pool_id: str = "pool",
             **kwargs: Any) -> None:
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(
        pool_id=pool_id), **kwargs))


def wait_completed(client: BatchClient, job_id: str, task_id: str,
                   timeout: float = 20.0) -> m.BatchTask:
    return wait_until(
        lambda: (t := client.get_task(job_id, task_id)).state == "completed" and t,
        timeout, f"task {task_id} to complete")


def raw(emulator: BatchEmulator, method: str, path_and_query: str, body: Any = None, *,
        key: str | None = None, headers: dict[str, str] | None = None,
        data: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    """A SharedKey-signed request built by hand (for malformed-request tests)."""
    payload = data if data is not None else (
        json.dumps(body).encode() if body is not None else b"")
    sent = {"ocp-date": formatdate(usegmt=True), **(headers or {})}
    if payload or method not in ("GET", "HEAD"):
        sent["Content-Length"] = str(len(payload))
    if payload:
        sent.setdefault("Content-Type", "application/json; odata=minimalmetadata")
    parts = urlsplit(emulator.url + path_and_query)
    lower = {k.lower(): v for k, v in sent.items()}
    names = ["content-encoding", "content-language", "content-length", "content-md5",
             "content-type", "date", "if-modified-since", "if-match", "if-none-match",
             "if-unmodified-since", "range"]
    sts = method + "\n" + "".join(lower.get(n, "") + "\n" for n in names)
    sts += "".join(f"{k}:{v}\n" for k, v in sorted(lower.items()) if k.startswith("ocp-"))
    sts += f"/{emulator.account_name}{parts.path}"
    query = parse_qs(parts.query)
    sts += "".join(f"\n{k}:{query[k][0]}" for k in sorted(query))
    secret = base64.b64decode(key or emulator.account_key)
    signature = base64.b64encode(hmac.new(secret, sts.encode(), hashlib.sha256).digest())
    sent["Authorization"] = f"SharedKey {emulator.account_name}:{signature.decode()}"
    request = urllib.request.Request(emulator.url + path_and_query, data=payload or None,
                                     method=method, headers=sent)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as resp:
            status, resp_headers, content = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        status, resp_headers, content = err.code, dict(err.headers), err.read()
    try:
        parsed: Any = json.loads(content) if content else None
    except ValueError:
        parsed = content
    return status, resp_headers, parsed


def admin(emulator: BatchEmulator, method: str, path: str, body: object = None
          ) -> tuple[int, Any]:
    """An unauthenticated request to the emulator's admin API (`/_emulator/...`): its
    status and JSON reply (None when empty)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(emulator.url + path, data=data, method=method)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as resp:
            content = resp.read()
            return resp.status, json.loads(content) if content else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")
