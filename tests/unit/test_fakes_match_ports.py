"""The fakes the unit tests share are checked against the real interfaces.

- `MemoryBlobStore` and the real `BlobStore` both satisfy `BlobPort`; `ScriptedBatch` and
  the real `BatchService` both satisfy `BatchPort`: every member, with the same parameter
  names, kinds and defaults (annotations aside).
- `FakeBatchClient` has every method `BatchService` calls on the SDK's `BatchClient`, and
  each takes the real method's parameters: the same positional ones, and keywords the
  real method names.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient
from support.batch_sdk_fake import FAKE_SETTINGS, FakeBatchClient
from support.batch_service_fake import ScriptedBatch
from support.memory_store import MemoryBlobStore

from azure_batch_executor.cloud import batch as batch_module
from azure_batch_executor.cloud.batch import BatchService
from azure_batch_executor.cloud.ports import BatchPort, BlobPort
from azure_batch_executor.cloud.retry import RequestStats, RetryPolicy
from azure_batch_executor.cloud.storage import BlobStore
from azure_batch_executor.config import Settings


def _members(protocol: type) -> list[str]:
    return sorted(name for name in vars(protocol) if not name.startswith("_")
                  and (callable(vars(protocol)[name]) or isinstance(vars(protocol)[name],
                                                                     property)))


def _shape(fn: Any) -> list[tuple[str, Any, bool]]:
    """(name, kind, has a default) of each parameter but self."""
    return [(p.name, p.kind, p.default is not inspect.Parameter.empty)
            for p in list(inspect.signature(fn).parameters.values())[1:]]


def _settings() -> Settings:
    return Settings.resolve(env={}, **FAKE_SETTINGS)


def _real_store() -> BlobStore:
    return BlobStore(_settings(), RequestStats(), RetryPolicy())


def _real_batch() -> BatchService:
    return BatchService(_settings(), RequestStats(), RetryPolicy())


@pytest.mark.parametrize(("protocol", "make"), [
    (BlobPort, lambda: MemoryBlobStore()),
    (BlobPort, _real_store),
    (BatchPort, lambda: ScriptedBatch(MemoryBlobStore(), pool_exists=False)),
    (BatchPort, _real_batch),
], ids=["MemoryBlobStore", "BlobStore", "ScriptedBatch", "BatchService"])
def test_fakes_and_real_classes_satisfy_the_ports(protocol: type, make: Any) -> None:
    obj = make()
    try:
        assert isinstance(obj, protocol)
        for name in _members(protocol):
            wanted = vars(protocol)[name]
            got = inspect.getattr_static(type(obj), name)
            if isinstance(wanted, property):
                assert isinstance(got, property), f"{type(obj).__name__}.{name}: a property"
                continue
            assert _shape(got) == _shape(wanted), (
                f"{type(obj).__name__}.{name}{inspect.signature(got)} does not match "
                f"{protocol.__name__}.{name}{inspect.signature(wanted)}")
    finally:
        obj.close()


def _client_calls() -> list[str]:
    source = Path(batch_module.__file__).read_text()
    return sorted(set(re.findall(r"self\.client\.([a-z_]+)", source)))


def test_batch_service_calls_only_what_the_sdk_fake_has() -> None:
    calls = _client_calls()
    assert calls, "BatchService makes no SDK calls?"
    missing = [name for name in calls if not hasattr(FakeBatchClient, name)]
    assert not missing, f"FakeBatchClient lacks {missing}"


@pytest.mark.parametrize("name", _client_calls())
def test_the_sdk_fake_takes_the_real_parameters(name: str) -> None:
    real = inspect.signature(getattr(BatchClient, name)).parameters
    fake = inspect.signature(getattr(FakeBatchClient, name)).parameters
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    real_positional = [p for p in real if real[p].kind in positional]
    fake_positional = [p for p in fake if fake[p].kind in positional
                       and fake[p].default is inspect.Parameter.empty]
    assert fake_positional == real_positional[:len(fake_positional)], (
        f"FakeBatchClient.{name}{inspect.signature(getattr(FakeBatchClient, name))} vs "
        f"BatchClient.{name}{inspect.signature(getattr(BatchClient, name))}")
    lro = {"polling_interval"} if name.startswith("begin_") else set()
    for param in fake.values():
        if param.default is not inspect.Parameter.empty:
            assert param.name in real or param.name in lro, (
                f"FakeBatchClient.{name} takes {param.name!r}, BatchClient.{name} does not")
