"""The environment lock made on the client (issue 12): what "auto" takes from the installed
distributions, what a list or a file gives, and when two locks are the same environment."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from azure_batch_executor.config import Settings
from azure_batch_executor.nodeenv import lock as lock_module
from azure_batch_executor.nodeenv.lock import make_lock


class Dist:
    """What importlib.metadata gives of one distribution."""

    def __init__(self, name: str, version: str, files: dict[str, str] | None = None) -> None:
        self.metadata = {"Name": name}
        self.version = version
        self._files = files or {}

    def read_text(self, name: str) -> str | None:
        return self._files.get(name)


def settings(**kw: Any) -> Settings:
    return Settings.resolve(env={}, **kw)


def test_auto_pins_what_is_installed_and_leaves_out_what_a_node_cannot_use(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    project = tmp_path / "mylib"
    project.mkdir()
    built: list[str] = []

    def build_wheel(name: str, path: Path) -> tuple[str, bytes]:  # pip: tested end to end
        built.append(str(path))
        return "mylib-1.0-py3-none-any.whl", b"wheel bytes"

    monkeypatch.setattr(lock_module, "_build_wheel", build_wheel)
    editable = json.dumps({"url": project.as_uri(), "dir_info": {"editable": True}})
    dists = [
        Dist("numpy", "2.4.6"), Dist("cloudpickle", "3.1.3"), Dist("pip", "24.0"),
        Dist("mylib", "1.0", {"direct_url.json": editable}),
        Dist("azure-batch-executor", "0.1.0", {"direct_url.json": json.dumps(
            {"url": Path.cwd().as_uri(), "dir_info": {"editable": True}})}),
        Dist("pywin32", "306", {"WHEEL": "Wheel-Version: 1.0\nTag: cp311-cp311-win_amd64\n"}),
        Dist("numpy", "1.0"),  # a second copy further down sys.path: the first one wins
    ]
    lock = make_lock(settings(environment="auto"), dists)
    assert lock is not None
    assert lock.requirements == "cloudpickle==3.1.3\nnumpy==2.4.6\n"
    assert lock.wheels == (("mylib-1.0-py3-none-any.whl", b"wheel bytes"),)
    assert built == [str(project)]
    assert [name.split(" ")[0] for name in lock.left_out] == ["azure-batch-executor", "pywin32"]
    assert "left out of the nodes' environment" in caplog.text
    assert lock.python_version == "{}.{}.{}".format(*sys.version_info[:3])


def test_a_list_gets_cloudpickle_pinned_and_a_file_is_read(tmp_path: Path) -> None:
    lock = make_lock(settings(environment=["tenacity==9.0.0"]))
    assert lock is not None
    assert lock.requirements == f"tenacity==9.0.0\ncloudpickle=={cloudpickle.__version__}\n"
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("# pinned\nnumpy==2.4.6\ncloudpickle==3.1.3\n\n")
    from_file = make_lock(settings(environment=str(reqs)))
    assert from_file is not None and from_file.requirements == "numpy==2.4.6\ncloudpickle==3.1.3\n"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is new in Python 3.11")
def test_pyproject_and_uv_lock(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\nversion = "1"\ndependencies = ["numpy>=2", "scipy"]\n')
    lock = make_lock(settings(environment=str(tmp_path / "pyproject.toml")))
    assert lock is not None and lock.requirements.startswith("numpy>=2\nscipy\ncloudpickle==")
    (tmp_path / "uv.lock").write_text(
        'version = 1\n[[package]]\nname = "x"\nversion = "1"\nsource = { editable = "." }\n'
        '[[package]]\nname = "numpy"\nversion = "2.4.6"\n'
        'source = { registry = "https://pypi.org/simple" }\n')
    lock = make_lock(settings(environment=str(tmp_path / "uv.lock")))
    assert lock is not None and lock.requirements.startswith("numpy==2.4.6\ncloudpickle==")


def test_none_an_image_or_a_python_command_prepare_nothing() -> None:
    assert make_lock(settings(environment="none")) is None
    assert make_lock(settings(container_image="r.azurecr.io/w:1", registry_server="r.azurecr.io",
                              registry_username="u", registry_password="p")) is None
    assert make_lock(settings(python_command="/opt/conda/bin/python")) is None
    assert make_lock(settings(container_image="r/w:1", environment=["numpy"])) is not None


def test_the_environment_id_follows_everything_that_makes_the_environment() -> None:
    base = make_lock(settings(environment=["numpy==2.4.6"]))
    assert base is not None
    same = make_lock(settings(environment=["numpy==2.4.6"]))
    other = make_lock(settings(environment=["numpy==2.4.5"]))
    python = make_lock(settings(environment=["numpy==2.4.6"], python_version="3.12"))
    index = make_lock(settings(environment=["numpy==2.4.6"],
                               index_url="https://mirror.example/simple"))
    assert same is not None and base.env_id == same.env_id
    ids = {lock.env_id for lock in (base, other, python, index) if lock is not None}
    assert len(ids) == 4


def test_a_distribution_installed_from_a_local_wheel_ships_that_wheel(tmp_path: Path) -> None:
    wheel = tmp_path / "private_lib-2.0-py3-none-any.whl"
    wheel.write_bytes(b"a private wheel")
    dists = [
        Dist("private-lib", "2.0", {"direct_url.json": json.dumps(
            {"url": wheel.as_uri(), "archive_info": {}})}),
        Dist("gone-lib", "1.0", {"direct_url.json": json.dumps(
            {"url": (tmp_path / "gone.whl").as_uri(), "archive_info": {}})}),
        Dist("azure-batch-executor", "0.1.0", {"direct_url.json": json.dumps(  # pip install
            {"url": (tmp_path / "azure_batch_executor-0.1.0-py3-none-any.whl").as_uri(),
             "archive_info": {}})}),
        Dist("cloudpickle", "3.1.3"),
    ]
    lock = make_lock(settings(environment="auto"), dists)
    assert lock is not None
    assert lock.requirements == "cloudpickle==3.1.3\n"  # no index has the others
    assert lock.wheels == ((wheel.name, b"a private wheel"),)
    assert [name.split(" ")[0] for name in lock.left_out] == ["gone-lib"]  # said, not pinned
