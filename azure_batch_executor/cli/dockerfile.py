"""Worker images: the `azure-batch-executor dockerfile` command.

Role: write the Dockerfile of a worker image that matches the client, and
print the commands that build and push it. A task's function is pickled by
cloudpickle on the client and unpickled on the node, so the node needs the
same Python minor version and the same cloudpickle version as the client,
plus whatever packages the function imports. The image is built from:

- `python:<major.minor>-slim`, the client's `sys.version_info` by default;
- `cloudpickle==<the client's installed version>`, always pinned;
- the requirements of a given file, else `pip freeze` of the running
  environment (the seed's best-practice tip), without editable or local lines
  (their paths do not exist in the image) and without this package (the worker
  needs only the stdlib and cloudpickle; the executor ships it with each job).

The requirements are written into the Dockerfile itself, so the build context
needs nothing else and `az acr build` works without a local Docker.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path

DEFAULT_IMAGE = "myregistry.azurecr.io/batch-worker:v1"
_OWN_DISTRIBUTION = "azure-batch-executor"
_PYTHON_VERSION = re.compile(r"^3\.\d{1,2}(\.\d{1,2})?$")
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")
_INCLUDE = re.compile(r"^(-r|--requirement|-c|--constraint)(\s+|=)(?P<path>\S+)")


class DockerfileError(ValueError):
    """A worker Dockerfile cannot be written as asked; the message names the fix."""


def client_python_version() -> str:
    """The running interpreter's `major.minor`, e.g. `3.11`."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def cloudpickle_version() -> str:
    """The installed cloudpickle's version: the image pins the same one."""
    try:
        return importlib.metadata.version("cloudpickle")
    except importlib.metadata.PackageNotFoundError:
        raise DockerfileError(
            "cloudpickle is not installed in this environment, so the image cannot pin the "
            "client's version; install it with `python -m pip install cloudpickle`"
        ) from None


def _canonical(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _project_name(line: str) -> str | None:
    match = _NAME.match(line)
    return _canonical(match.group(1)) if match else None


def _is_local(line: str) -> bool:
    """Editable installs and local paths: they do not exist inside the image."""
    lowered = line.lower()
    return (
        lowered.startswith(("-e ", "-e=", "--editable", "file:", "./", "../", "/"))
        or "@ file:" in lowered
        or " @ /" in lowered
    )


def _joined(lines: Iterable[str]) -> list[str]:
    """Lines with backslash continuations joined, as pip reads them."""
    out: list[str] = []
    pending = ""
    for raw in lines:
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1].strip() + " "
            continue
        out.append(pending + raw.strip())
        pending = ""
    if pending:
        out.append(pending.strip())
    return out


def split_requirements(lines: Iterable[str]) -> tuple[list[str], list[str]]:
    """(lines kept, lines left out) of a requirements list, comments and blanks dropped.

    Left out: editable and local-path lines, this package, and cloudpickle
    (the image pins the client's cloudpickle itself).
    """
    kept: list[str] = []
    dropped: list[str] = []
    for raw in _joined(lines):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        name = _project_name(line)
        if _is_local(line) or name in {_OWN_DISTRIBUTION, "cloudpickle"}:
            dropped.append(line)
        else:
            kept.append(line)
    return kept, dropped


def read_requirements(path: str | Path, _seen: frozenset[Path] = frozenset()) -> list[str]:
    """The lines of a requirements file, with `-r other.txt` includes inlined."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise DockerfileError(
            f"cannot read the requirements file {str(file)!r} ({exc.strerror}); "
            "pass an existing file with --requirements, or omit it to use `pip freeze`"
        ) from None
    lines: list[str] = []
    for raw in text.splitlines():
        match = _INCLUDE.match(raw.strip())
        if match is None:
            lines.append(raw)
            continue
        if match.group(1) in {"-c", "--constraint"}:
            raise DockerfileError(
                f"{file}: constraint files ({raw.strip()!r}) are not supported; pin the "
                "versions in the requirements file itself, e.g. with `pip freeze` or pip-compile"
            )
        included = (file.parent / match.group("path")).resolve()
        if included in _seen:
            continue
        lines.extend(read_requirements(included, _seen | {file.resolve()}))
    return lines


def frozen_requirements() -> list[str]:
    """`pip freeze` of the running environment, one requirement per line."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "freeze"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DockerfileError(
            f"`{sys.executable} -m pip freeze` did not run ({exc}); "
            "pass a requirements file with --requirements FILE"
        ) from None
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no output"])[0]
        raise DockerfileError(
            f"`{sys.executable} -m pip freeze` failed: {first}; install pip in this environment "
            "(`python -m ensurepip`) or pass a requirements file with --requirements FILE"
        )
    return done.stdout.splitlines()


def _comment(text: str) -> list[str]:
    return ["# " + line for line in textwrap.wrap(text, width=86)]


def render_dockerfile(
    python_version: str | None = None,
    requirements: list[str] | None = None,
    *,
    cloudpickle: str | None = None,
    source: str = "pip freeze",
) -> str:
    """The text of a worker Dockerfile.

    `python_version` is `X.Y` (default: the client's); `requirements` are lines
    of a requirements file (None: cloudpickle only), filtered by
    `split_requirements`; `cloudpickle` is the version to pin (default: the
    installed one); `source` names where the requirements came from, for the
    Dockerfile's comments.
    """
    python = python_version or client_python_version()
    if not _PYTHON_VERSION.match(python):
        raise DockerfileError(
            f"--python {python!r} is not a Python version; pass major.minor, e.g. --python 3.12"
        )
    pin = f"cloudpickle=={cloudpickle or cloudpickle_version()}"
    kept, dropped = split_requirements(requirements or [])
    out = [
        "# Worker image for azure-batch-executor, written by `azure-batch-executor dockerfile`.",
        "# Functions are pickled by cloudpickle on the client: the node needs the client's",
        "# Python minor version and cloudpickle version.",
    ]
    if ".".join(python.split(".")[:2]) != client_python_version():
        out += _comment(
            f"WARNING: the client runs Python {client_python_version()}; functions pickled by "
            "value may not load on another minor version."
        )
    out += [
        f"FROM python:{python}-slim",
        "",
        "ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1",
        "",
        f"RUN pip install {pin}",
    ]
    if kept or dropped:
        out += ["", f"# Requirements from {source} ({len(kept)} lines)."]
    if dropped:
        out += _comment(
            "Left out: editable/local installs (their paths do not exist in the image), "
            f"{_OWN_DISTRIBUTION} (the executor ships its worker with each job) and cloudpickle "
            "(pinned above):"
        )
        out += [f"#   {line}" for line in dropped]
    if kept:
        quoted = [f"    {shlex.quote(line)} \\" for line in kept]
        out += [
            "RUN printf '%s\\n' \\",
            *quoted,
            "    > /tmp/requirements.txt \\",
            f" && pip install -r /tmp/requirements.txt {pin}",
        ]
    return "\n".join(out) + "\n"


def registry_of(image: str) -> str | None:
    """The registry host of an image name, or None for Docker Hub."""
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def normalize_image(image: str) -> str:
    """`image` with a tag: nodes pull an image again only when its name or tag changes."""
    if not image or any(c.isspace() for c in image):
        raise DockerfileError(
            f"--image {image!r} is not an image name; pass REGISTRY/NAME:TAG, "
            f"e.g. --image {DEFAULT_IMAGE}"
        )
    last = image.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        return f"{image}:v1"
    return image


def build_commands(image: str, dockerfile: str | Path = "Dockerfile") -> list[str]:
    """The shell commands that build `image` from `dockerfile` and push it."""
    path = Path(dockerfile)
    context = str(path.parent)
    tagged = shlex.quote(image)
    if path.name == "Dockerfile" and context == ".":
        build = f"docker build -t {tagged} ."
    else:
        build = f"docker build -t {tagged} -f {shlex.quote(str(path))} {shlex.quote(context)}"
    registry = registry_of(image)
    if registry is None:
        login = "docker login"
    elif registry.endswith(".azurecr.io"):
        login = f"az acr login --name {shlex.quote(registry.split('.', 1)[0])}"
    else:
        login = f"docker login {shlex.quote(registry)}"
    return [build, login, f"docker push {tagged}"]


def container_setting(image: str) -> str:
    """The executor setting that runs tasks in `image`."""
    return f'container_image="{image}"'


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `dockerfile` on the CLI's subparsers; `run` is its handler."""
    parser = subparsers.add_parser(
        "dockerfile",
        help="write a Dockerfile for a worker image that matches this Python environment",
        description=(
            "Write a Dockerfile for a worker image with this client's Python minor version and "
            "cloudpickle version, plus the requirements of --requirements FILE or, by default, "
            "`pip freeze` of this environment; then print the commands that build and push it."
        ),
    )
    parser.add_argument(
        "--requirements", metavar="FILE", help="requirements file (default: `pip freeze`)"
    )
    parser.add_argument(
        "--python",
        metavar="X.Y",
        help=f"Python version of the image (default: {client_python_version()}, this client's)",
    )
    parser.add_argument(
        "--output",
        metavar="PATH",
        default="Dockerfile",
        help="where to write the Dockerfile (default: Dockerfile)",
    )
    parser.add_argument(
        "--image",
        metavar="REGISTRY/NAME:TAG",
        default=DEFAULT_IMAGE,
        help=f"image name for the printed commands (default: {DEFAULT_IMAGE})",
    )
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Write the Dockerfile and print the build/push commands; 0 on success, 1 on error."""
    try:
        image = normalize_image(args.image or DEFAULT_IMAGE)
        if args.requirements:
            requirements = read_requirements(args.requirements)
            source = str(args.requirements)
        else:
            requirements = frozen_requirements()
            source = f"`pip freeze` of {sys.executable}"
        text = render_dockerfile(args.python, requirements, source=source)
        output = Path(args.output)
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise DockerfileError(
                f"cannot write {str(output)!r} ({exc.strerror}); pass a writable path with --output"
            ) from None
    except DockerfileError as exc:
        print(f"azure-batch-executor dockerfile: error: {exc}", file=sys.stderr)
        return 1
    _, dropped = split_requirements(requirements)
    python = args.python or client_python_version()
    print(f"Wrote {output} (Python {python}, cloudpickle {cloudpickle_version()}).")
    if ".".join(python.split(".")[:2]) != client_python_version():
        print(
            f"warning: this client runs Python {client_python_version()}; functions pickled by "
            f"value may not load on Python {python}. Run the client on {python} too.",
            file=sys.stderr,
        )
    if dropped:
        print(f"Left out {len(dropped)} editable/local or redundant requirement(s); "
              f"see the comments in {output}.")
    if args.image in (None, DEFAULT_IMAGE):
        print("Replace myregistry with your container registry (see `az acr list -o table`).")
    print("\nBuild and push the image:\n")
    for command in build_commands(image, output):
        print(f"    {command}")
    print("\nThen run tasks in it:\n")
    print(f"    AzureBatchExecutor(..., {container_setting(image)})")
    return 0
