"""The docs' whole-script examples run as written.

Every ```python block of README.md and docs/**/*.md that is a complete script (it has an
``if __name__ == "__main__":``) is run in a fresh interpreter on its own local stack;
it must exit 0. The blocks are those test_docs_blocks.py extracts (which checks every
other block); a script marked ``<!-- docs-test: skip (reason) -->`` is skipped with its
reason.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from script_env import script_env
from test_docs_blocks import BLOCKS, Block, skip_reason

SCRIPTS = [b for b in BLOCKS if b.kind == "script"]


def test_the_docs_have_whole_scripts() -> None:
    pages = {b.page for b in SCRIPTS}
    assert {"docs/results.md", "docs/recipes.md"} <= pages


@pytest.mark.parametrize("block", SCRIPTS, ids=[b.where for b in SCRIPTS])
def test_docs_script_runs(tmp_path: Path, block: Block) -> None:
    reason = skip_reason(block)
    if reason:
        pytest.skip(reason)
    script = tmp_path / f"{Path(block.page).stem}_{block.line}.py"
    script.write_text(block.code)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=240, cwd=tmp_path, env=script_env())
    assert done.returncode == 0, f"{block.where}:\n{done.stderr[-3000:]}"
