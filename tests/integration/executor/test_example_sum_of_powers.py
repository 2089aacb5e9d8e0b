"""examples/sum_of_powers.py (what `make demo` runs) prints equal serial and distributed sums."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "sum_of_powers.py"


def test_sum_of_powers_example(local_stack, capsys) -> None:
    spec = importlib.util.spec_from_file_location("sum_of_powers_example", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main() == 0
    out = capsys.readouterr().out
    serial = out.split("serial sum:")[1].split()[0]
    distributed = out.split("distributed sum:")[1].split()[0]
    assert serial == distributed
