"""The local stack's set-up errors name the fix."""

import os
from pathlib import Path

import pytest

from azure_batch_executor.local import LocalStack, LocalStackError
from azure_batch_executor.local.azurite import _find_azurite


def test_missing_node_names_nodejs_and_npm(tmp_path: Path) -> None:
    with pytest.raises(LocalStackError) as info:
        _find_azurite(roots=[tmp_path], path=str(tmp_path))
    message = str(info.value)
    assert "Node.js is not installed" in message
    assert "npm ci" in message and "npm install -g azurite" in message


def test_missing_azurite_names_make_and_npm(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    node = bindir / "node"
    node.write_text("#!/bin/sh\n")
    node.chmod(0o755)
    with pytest.raises(LocalStackError) as info:
        _find_azurite(roots=[tmp_path], path=str(bindir))
    message = str(info.value)
    assert "was not found" in message
    assert "`make`" in message and "npm ci" in message and "AZURITE_BLOB_URL" in message


def test_node_modules_bin_is_preferred(tmp_path: Path) -> None:
    binary = tmp_path / "node_modules" / ".bin" / "azurite-blob"
    binary.parent.mkdir(parents=True)
    binary.write_text("")
    assert _find_azurite(roots=[tmp_path], path="") == str(binary)


def test_stack_rejects_empty_capacity() -> None:
    with pytest.raises(ValueError, match="nodes >= 1"):
        LocalStack(nodes=0)


def test_repr_has_no_key() -> None:
    text = repr(LocalStack())
    assert "stopped" in text and "key" not in text.lower()
    assert os.environ.get("NO_PROXY", "").count("127.0.0.1") <= 1


def test_repository_root_is_found_from_the_module() -> None:
    from azure_batch_executor.local import azurite

    assert (azurite._REPOSITORY / "azure_batch_executor" / "local" / "azurite.py").is_file()


def test_shared_lock_is_read_from_the_stack_module() -> None:
    from azure_batch_executor import local
    from azure_batch_executor.local import stack

    assert local._shared_lock is stack._shared_lock
    with pytest.raises(AttributeError):
        _ = local.no_such_name  # type: ignore[attr-defined]
