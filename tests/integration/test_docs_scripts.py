"""The docs' whole-script examples run as written.

Every ```python block in docs/*.md that is a complete script (it has an
``if __name__ == "__main__":``) is run in a fresh interpreter on its own local stack;
it must exit 0. Fragments (no ``__main__``) are not run here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from script_env import ROOT, script_env

BLOCK = re.compile(r"```python\n(.*?)```", re.S)
SCRIPTS = [(page.name, n, code)
           for page in sorted((ROOT / "docs").glob("*.md"))
           for n, code in enumerate(BLOCK.findall(page.read_text()))
           if 'if __name__ == "__main__":' in code]


def test_the_docs_have_whole_scripts() -> None:
    assert any(page == "results.md" for page, _, _ in SCRIPTS)


@pytest.mark.parametrize(("page", "n", "code"), SCRIPTS,
                         ids=[f"{page}-{n}" for page, n, _ in SCRIPTS])
def test_docs_script_runs(tmp_path: Path, page: str, n: int, code: str) -> None:
    script = tmp_path / f"{Path(page).stem}_{n}.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=240, cwd=tmp_path, env=script_env())
    assert done.returncode == 0, f"{page} block {n}:\n{done.stderr[-3000:]}"
