"""`azure-batch-executor dockerfile`: the worker image matches the client."""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

from azure_batch_executor.cli import dockerfile as images

CLIENT = f"{sys.version_info.major}.{sys.version_info.minor}"
PIN = f"cloudpickle=={importlib.metadata.version('cloudpickle')}"
OTHER = "3.13" if CLIENT == "3.12" else "3.12"


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="azure-batch-executor")
    images.add_parser(parser.add_subparsers())
    args = parser.parse_args(["dockerfile", *argv])
    return int(args.handler(args))


def _fake_python(tmp_path: Path, freeze_output: str, exit_code: int = 0) -> str:
    """An executable standing in for sys.executable: `-m pip freeze` prints canned lines."""
    (tmp_path / "freeze.txt").write_text(freeze_output)
    script = tmp_path / "python"
    script.write_text(
        f"#!{sys.executable}\n"
        "import pathlib, sys\n"
        "assert sys.argv[1:] == ['-m', 'pip', 'freeze'], sys.argv\n"
        "sys.stdout.write((pathlib.Path(__file__).parent / 'freeze.txt').read_text())\n"
        "sys.stderr.write('ERROR: pip is broken\\n' if " + str(exit_code) + " else '')\n"
        f"sys.exit({exit_code})\n"
    )
    script.chmod(0o755)
    return str(script)


def test_requirements_file_gives_exact_lines(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "requirements.txt").write_text("# numerics\nnumpy==2.0.1\n\nrequests>=2.31\n")
    assert _run(["--requirements", "requirements.txt"]) == 0
    lines = (tmp_path / "Dockerfile").read_text().splitlines()
    assert f"FROM python:{CLIENT}-slim" in lines
    assert f"RUN pip install {PIN}" in lines
    start = lines.index("RUN printf '%s\\n' \\")
    assert lines[start : start + 5] == [
        "RUN printf '%s\\n' \\",
        "    numpy==2.0.1 \\",
        "    'requests>=2.31' \\",
        "    > /tmp/requirements.txt \\",
        f" && pip install -r /tmp/requirements.txt {PIN}",
    ]
    assert "# Requirements from requirements.txt (2 lines)." in lines
    assert not any(line.startswith("# WARNING") for line in lines)
    out = capsys.readouterr().out
    assert "docker build -t myregistry.azurecr.io/batch-worker:v1 ." in out
    assert 'container_image="myregistry.azurecr.io/batch-worker:v1"' in out


def test_requirement_lines_survive_the_shell(tmp_path: Path) -> None:
    """The RUN printf block, run by sh as docker would, writes the requirements unchanged."""
    wanted = [
        "numpy==2.0.1",
        'pywin32==306; sys_platform == "win32"',
        "pandas[parquet]>=2,<3",
        "--extra-index-url https://example.org/simple/$HOME's",
    ]
    text = images.render_dockerfile(CLIENT, wanted, cloudpickle="3.1.2")
    lines = text.splitlines()
    start = lines.index("RUN printf '%s\\n' \\")
    block = "\n".join(lines[start : start + len(wanted) + 2])
    target = tmp_path / "requirements.txt"
    script = block.removeprefix("RUN ").replace("/tmp/requirements.txt \\", str(target))
    subprocess.run(["sh", "-c", script], check=True)
    assert target.read_text().splitlines() == wanted


def test_python_option_is_respected(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reqs.txt").write_text("numpy==2.0.1\n")
    assert _run(["--requirements", "reqs.txt", "--python", OTHER, "--output", "out/Df"]) == 1
    assert "cannot write" in capsys.readouterr().err  # out/ does not exist
    (tmp_path / "out").mkdir()
    assert _run(["--requirements", "reqs.txt", "--python", OTHER, "--output", "out/Df"]) == 0
    text = (tmp_path / "out" / "Df").read_text()
    assert f"FROM python:{OTHER}-slim\n" in text
    assert f"# WARNING: the client runs Python {CLIENT}" in text
    captured = capsys.readouterr()
    assert f"may not load on Python {OTHER}" in captured.err
    assert "docker build -t myregistry.azurecr.io/batch-worker:v1 -f out/Df out" in captured.out


@pytest.mark.parametrize("bad", ["3", "py3.12", "3.12-slim", "2.7 ; rm"])
def test_bad_python_version_names_the_fix(bad: str) -> None:
    with pytest.raises(images.DockerfileError, match=r"--python 3\.12"):
        images.render_dockerfile(bad, None, cloudpickle="3.1.2")


def test_pip_freeze_is_filtered(tmp_path: Path, monkeypatch, capsys) -> None:
    freeze = "\n".join(
        [
            "numpy==2.0.1",
            "# Editable install with no version control (mylib==0.1)",
            "-e /home/me/mylib",
            "-e git+https://github.com/me/other.git@abc123#egg=other",
            "localpkg @ file:///home/me/localpkg",
            "azure-batch-executor==0.1.0",
            "Azure_Batch.Executor @ file:///work/main",
            f"{PIN}",
            "requests==2.32.3",
            "",
        ]
    )
    monkeypatch.setattr(sys, "executable", _fake_python(tmp_path, freeze))
    monkeypatch.chdir(tmp_path)
    assert _run([]) == 0
    text = (tmp_path / "Dockerfile").read_text()
    installed = text.split("RUN printf", 1)[1]
    assert "numpy==2.0.1 \\" in installed and "requests==2.32.3 \\" in installed
    for left_out in ("/home/me/mylib", "other.git", "localpkg", "azure-batch-executor==0.1.0",
                     "file:///work/main"):
        assert left_out not in installed
        comments = [line for line in text.splitlines() if line.startswith("#   ")]
        assert any(left_out in line for line in comments)  # listed in the comment
    assert "Left out: editable/local installs" in text
    assert "(2 lines)" in text
    assert installed.count("cloudpickle") == 1  # only the pin, never a second line
    assert "Left out 6" in capsys.readouterr().out


def test_pip_freeze_failure_names_the_fix(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "executable", _fake_python(tmp_path, "", exit_code=1))
    monkeypatch.chdir(tmp_path)
    assert _run([]) == 1
    err = capsys.readouterr().err
    assert "ERROR: pip is broken" in err and "--requirements FILE" in err
    assert not (tmp_path / "Dockerfile").exists()


def test_real_pip_freeze_lists_this_environment() -> None:
    kept, _ = images.split_requirements(images.frozen_requirements())
    names = {line.split("==")[0].lower() for line in kept}
    assert "pytest" in names
    assert "cloudpickle" not in names and "azure-batch-executor" not in names


def test_includes_are_inlined_and_constraints_refused(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("numpy==2.0.1\n-r main.txt\n")
    (tmp_path / "main.txt").write_text("-r base.txt\nscipy==1.14.0\n")
    assert images.read_requirements(tmp_path / "main.txt") == ["numpy==2.0.1", "scipy==1.14.0"]
    (tmp_path / "c.txt").write_text("-c constraints.txt\n")
    with pytest.raises(images.DockerfileError, match="pin the versions"):
        images.read_requirements(tmp_path / "c.txt")
    with pytest.raises(images.DockerfileError, match="--requirements"):
        images.read_requirements(tmp_path / "missing.txt")


def test_continuation_lines_are_joined() -> None:
    kept, dropped = images.split_requirements(
        ["numpy==2.0.1 \\", "    --hash=sha256:abc", "-e \\", "  ./mylib"]
    )
    assert kept == ["numpy==2.0.1 --hash=sha256:abc"]
    assert dropped == ["-e ./mylib"]


@pytest.mark.parametrize(
    ("image", "dockerfile", "expected"),
    [
        (
            "myacr.azurecr.io/sop:v2",
            "Dockerfile",
            [
                "docker build -t myacr.azurecr.io/sop:v2 .",
                "az acr login --name myacr",
                "docker push myacr.azurecr.io/sop:v2",
            ],
        ),
        (
            "ghcr.io/me/sop:1",
            "docker/Dockerfile.worker",
            [
                "docker build -t ghcr.io/me/sop:1 -f docker/Dockerfile.worker docker",
                "docker login ghcr.io",
                "docker push ghcr.io/me/sop:1",
            ],
        ),
        ("me/sop:1", "Dockerfile", ["docker build -t me/sop:1 .", "docker login",
                                    "docker push me/sop:1"]),
    ],
)
def test_build_commands(image: str, dockerfile: str, expected: list[str]) -> None:
    assert images.build_commands(image, dockerfile) == expected


def test_image_without_tag_gets_one(tmp_path: Path, monkeypatch, capsys) -> None:
    assert images.normalize_image("myacr.azurecr.io/sop") == "myacr.azurecr.io/sop:v1"
    assert images.normalize_image("localhost:5000/sop") == "localhost:5000/sop:v1"
    with pytest.raises(images.DockerfileError, match="REGISTRY/NAME:TAG"):
        images.normalize_image("my image")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.txt").write_text("numpy==2.0.1\n")
    assert _run(["--requirements", "r.txt", "--image", "myacr.azurecr.io/sop"]) == 0
    out = capsys.readouterr().out
    assert "docker push myacr.azurecr.io/sop:v1" in out
    assert "Replace myregistry" not in out
