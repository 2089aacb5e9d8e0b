"""Node images of the local stack: the bare image's virtual environment and the choice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from azure_batch_executor import cli
from azure_batch_executor.local import LocalStack
from azure_batch_executor.local.images import bare_venv, client_image_path, image_paths


def test_bare_image_is_made_once_without_site_packages(tmp_path: Path) -> None:
    first = bare_venv(tmp_path)
    assert bare_venv(tmp_path) == first  # cached on disk
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no work directory left
    assert "include-system-site-packages = false" in (first / "pyvenv.cfg").read_text()
    assert not (first / "bin" / "pip").exists()
    probe = ("import sys, importlib.util as u; print(sys.version_info[:2] == "
             f"{tuple(sys.version_info[:2])!r}, u.find_spec('pytest') is None)")
    out = subprocess.run([str(first / "bin" / "python3"), "-c", probe], capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["True", "True"]  # the host's Python, none of its packages


def test_image_paths() -> None:
    assert image_paths("client") == (client_image_path(), None)
    assert client_image_path() == (str(Path(sys.executable).parent),)
    with pytest.raises(ValueError, match="client, bare"):
        image_paths("ubuntu")


def test_stack_and_cli_options() -> None:
    with pytest.raises(ValueError, match=r"node_image='ubuntu'.*'client', 'bare'"):
        LocalStack(node_image="ubuntu")
    with pytest.raises(ValueError, match="allocation_delay"):
        LocalStack(allocation_delay=-1)
    assert "node_image='bare'" in repr(LocalStack(node_image="bare"))
    args = cli.build_parser().parse_args(["local", "--node-image", "bare",
                                          "--allocation-delay", "2.5"])
    assert (args.node_image, args.allocation_delay) == ("bare", 2.5)
    args = cli.build_parser().parse_args(["emulator", "--allocation-delay", "1",
                                          "--container-path-prefix", "/opt/img/bin"])
    assert (args.allocation_delay, args.container_path_prefix) == (1.0, ["/opt/img/bin"])
