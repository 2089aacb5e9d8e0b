"""Helpers of the compatibility suite: client virtualenvs, driver runs, hand-signed requests.

A unique module name (not conftest) so the test modules can import it whichever other
conftest.py files pytest collected.

- `client_venv(name, requirements)`: a virtualenv under `.venv-compat/<name>` in the
  repository (ignored by git), built once with `python -m venv` and `pip install`, reused
  while its stamp file lists the same requirements; built in a temporary directory and
  renamed, so an interrupted build is never mistaken for a finished one.
- `run_driver(argv)`: run a driver script (one per client) and parse the JSON it prints.
- `signed(...)`: a SharedKey-signed request built by hand, for the recorded wire details
  no client exposes (a DELETE without `Content-Length`, a lowercase `timeout`, ...).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from azure_batch_executor.emulator import BatchEmulator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
COMPAT_VENVS = ROOT / ".venv-compat"
SIGNED_HEADERS = ("content-encoding", "content-language", "content-length", "content-md5",
                  "content-type", "date", "if-modified-since", "if-match", "if-none-match",
                  "if-unmodified-since", "range")


def client_venv(name: str, requirements: list[str], timeout: float = 600) -> Path:
    """The python of `.venv-compat/<name>` with `requirements` installed (built once)."""
    target = COMPAT_VENVS / name
    python = target / "bin" / "python"
    stamp = target / ".installed"
    wanted = "\n".join(requirements) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    building = COMPAT_VENVS / f".{name}.building-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    COMPAT_VENVS.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "venv", str(building)]
    install = [str(building / "bin" / "python"), "-m", "pip", "install", "--quiet",
               "--disable-pip-version-check", *requirements]
    for argv in (command, install):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            shutil.rmtree(building, ignore_errors=True)
            pytest.skip(f"could not build {target} ({' '.join(argv[:4])} ... exited "
                        f"{proc.returncode}): {proc.stderr.strip()[-400:]}; check that pip "
                        f"reaches PyPI, or run `python -m venv {target} && {target}/bin/pip "
                        f"install {' '.join(requirements)}`")
    (building / ".installed").write_text(wanted)
    shutil.rmtree(target, ignore_errors=True)
    building.rename(target)
    return python


def run_driver(argv: list[str], timeout: float = 240) -> dict[str, Any]:
    """Run one client's driver script; its stdout is one JSON object."""
    env = dict(os.environ, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
               PYTHONPATH="", PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=ROOT)
    assert proc.returncode == 0, f"{argv[:2]} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def failures(result: dict[str, Any]) -> list[str]:
    return [f"{s['op']}: {s.get('error', '')}" for s in result["steps"] if not s["ok"]]


def covered_routes(emulator: BatchEmulator) -> set[str]:
    """The emulated operations the client reached (routes that answered, any status)."""
    skip = {"unknown", "not_emulated", "method_not_allowed"}
    return {route for (_, route) in emulator.request_counts() if route not in skip}


def signed(emulator: BatchEmulator, method: str, path_and_query: str, body: Any = None, *,
           headers: dict[str, str] | None = None, content_length: bool = True
           ) -> tuple[int, dict[str, str], Any]:
    """Send a request signed as the service verifies it (every header as sent, a missing
    one an empty line). `content_length=False` sends a bodiless request without the
    header, as @azure/batch sends its DELETEs."""
    payload = json.dumps(body).encode() if body is not None else b""
    sent = {"ocp-date": formatdate(usegmt=True), **(headers or {})}
    if payload:
        sent["Content-Type"] = "application/json; odata=minimalmetadata"
    if payload or content_length:
        sent["Content-Length"] = str(len(payload))
    parts = urlsplit(emulator.url + path_and_query)
    lower = {k.lower(): v for k, v in sent.items()}
    sts = method + "\n" + "".join(lower.get(h, "") + "\n" for h in SIGNED_HEADERS)
    sts += "".join(f"{k}:{v}\n" for k, v in sorted(lower.items()) if k.startswith("ocp-"))
    sts += f"/{emulator.account_name}{parts.path}"
    query = parse_qs(parts.query)
    sts += "".join(f"\n{k}:{query[k][0]}" for k in sorted(query))
    key = base64.b64decode(emulator.account_key)
    sent["Authorization"] = ("SharedKey " + emulator.account_name + ":" + base64.b64encode(
        hmac.new(key, sts.encode(), hashlib.sha256).digest()).decode())
    return _send(emulator.url + path_and_query, method, payload, sent)


def _send(url: str, method: str, payload: bytes, headers: dict[str, str]
          ) -> tuple[int, dict[str, str], Any]:
    # http.client adds no Content-Length to a bodiless DELETE, so what is signed is sent
    request = urllib.request.Request(url, data=payload or None, method=method, headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as resp:
            status, resp_headers, content = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        status, resp_headers, content = err.code, dict(err.headers), err.read()
    try:
        parsed: Any = json.loads(content) if content else None
    except ValueError:
        parsed = content
    return status, resp_headers, parsed
