"""Everything a local process pool round-trips comes back as itself (issue 9, item 1).

One script (roundtrip/run_roundtrip.py), run once in a fresh interpreter on its own local
stack, sends every kind of object (dataclass, namedtuple, enum, a class with methods, one
with ``__slots__``, a closure, a lambda, a user exception with a custom ``__init__`` and
extra attributes, a chained one, an ExceptionGroup) from every origin (a module beside the
script, ``__main__``, a notebook cell) as a task's result, as its argument (and back), and
for exceptions raised by the task. Each case is one test here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from script_env import script_env

HERE = Path(__file__).parent / "roundtrip"
sys.path.insert(0, str(HERE))
import user_defs  # noqa: E402

ORIGINS = ("module", "main", "notebook")
KINDS = user_defs.VALUE_KINDS + user_defs.ERROR_KINDS
CASES = [(origin, kind, direction) for origin in ORIGINS for kind in KINDS
         for direction in ("result", "argument")
         + (("raised",) if kind in user_defs.ERROR_KINDS else ())]


@pytest.fixture(scope="module")
def outcomes(shared_stack: Any) -> dict[tuple[str, str, str], dict[str, str]]:
    done = subprocess.run([sys.executable, str(HERE / "run_roundtrip.py")], capture_output=True,
                          text=True, timeout=240, cwd=HERE, env=script_env())
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {(r["origin"], r["kind"], r["direction"]): r for r in rows}


@pytest.mark.parametrize(("origin", "kind", "direction"), CASES)
def test_round_trip(outcomes: dict[tuple[str, str, str], dict[str, str]], origin: str,
                    kind: str, direction: str) -> None:
    if kind == "group" and sys.version_info < (3, 11):
        pytest.skip("ExceptionGroup is new in Python 3.11")
    row = outcomes.get((origin, kind, direction))
    assert row is not None, f"the script reported nothing for {origin}/{kind}/{direction}"
    assert row["problem"] == ""


@pytest.mark.parametrize("origin", ORIGINS)
def test_remote_traceback_names_the_file_and_shows_the_raising_line(
        outcomes: dict[tuple[str, str, str], dict[str, str]], origin: str) -> None:
    text = outcomes[(origin, "exception", "raised")]["traceback"]
    where = "<ipython-input-7-0123abcd>" if origin == "notebook" else str(HERE / "user_defs.py")
    assert f'File "{where}", line ' in text
    assert "in fail\n    raise make(kind)\n" in text  # the source line, from the client
    assert "<dynamic-code>" not in text
    assert "abx_worker.py" not in text  # the worker's own frames stay hidden


def test_chained_exception_text_keeps_the_cause(
        outcomes: dict[tuple[str, str, str], dict[str, str]]) -> None:
    text = outcomes[("main", "chained", "raised")]["traceback"]
    assert "KeyError: 'the inner cause'" in text
    assert "The above exception was the direct cause of the following exception" in text
