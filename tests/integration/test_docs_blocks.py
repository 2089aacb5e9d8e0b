"""Every fenced code block of README.md and docs/**/*.md is accounted for (issue 15, item 6).

Each block gets one test, by its language tag:

- ```python: run. A page's blocks form one story: they run in order, in one namespace
  (`__name__ == "__main__"`), in one fresh interpreter per page with no Azure settings
  (so on its own local stack). A block that is a whole script (it has
  ``if __name__ == "__main__":``) is run as written by test_docs_scripts.py instead.
- ```sh / ```bash / ```shell / ```console: `bash -n`, then every command is checked:
  `azure-batch-executor ...` parses with the CLI's own parser, `python -m X` names a
  module that exists, `python FILE` / `pytest PATH` name files that exist, `pip install`
  names this package with extras pyproject.toml defines (or a package installed here),
  `make T` names a Makefile target, a heredoc into a `.json` file parses. Other programs
  (`az`, `docker`, ...) must be in EXTERNAL: they need an account, a daemon or a network.
- ```toml / ```yaml / ```json: parsed (import-linter contracts must equal pyproject's).
- ```dockerfile: every instruction is a Dockerfile instruction.
- ```text: output, diagrams: nothing to check.

Markers, HTML comments that the rendered page does not show:

- ``<!-- docs-test: skip (reason) -->`` on the line before a fence: that block is
  skipped, with the reason in the report (a real Azure account, say). Keep these few.
- ``<!-- docs-test: compile (reason) -->`` before a ```python fence: an excerpt that
  belongs inside the package's code, only compiled.
- ``<!-- docs-test: skip-page (reason) -->`` anywhere in a page: every block of the page
  is skipped (a page whose blocks are known to fail, until they are fixed).

A block with an unknown (or no) language tag, or an unknown marker, fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.metadata
import importlib.util
import io
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from script_env import ROOT, script_env

from azure_batch_executor.cli import build_parser

# Python 3.11+ (3.10 checks extras against the installed metadata, and no TOML block)
tomllib = importlib.import_module("tomllib") if sys.version_info >= (3, 11) else None

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

LANGUAGES = {
    "python": "python", "py": "python",
    "sh": "shell", "bash": "shell", "shell": "shell", "console": "shell",
    "toml": "toml", "yaml": "yaml", "yml": "yaml", "json": "json",
    "dockerfile": "dockerfile",
    "text": "text", "txt": "text", "output": "text",
}
DIRECTIVES = {"skip", "compile", "skip-page"}

# Pages this test may not mark itself (others edit them): their blocks are skipped with
# the reason until fixed, exactly as `<!-- docs-test: skip-page (reason) -->` would.
KNOWN_FAILING_PAGES: dict[str, str] = {}

FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\n]*?)\s*$")
MARKER = re.compile(r"<!--\s*docs-test:\s*(?P<directive>[\w-]+)\s*(?P<reason>.*?)\s*-->")
SCRIPT_GUARD = 'if __name__ == "__main__":'


@dataclasses.dataclass(frozen=True)
class Block:
    page: str    # relative to the repository, e.g. "docs/cost.md"
    line: int    # of the opening fence, 1-based
    lang: str    # the info string's first word, as written
    code: str
    directive: str = ""   # from a marker on the line before the fence
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def kind(self) -> str:
        """python-session, script, shell, toml, yaml, json, dockerfile, text, or unknown."""
        kind = LANGUAGES.get(self.lang.lower(), "unknown")
        if kind == "python":
            return "script" if SCRIPT_GUARD in self.code else "python-session"
        return kind


def _reason(text: str) -> str:
    return text.strip().removeprefix("(").removesuffix(")").strip()


def blocks_of(path: Path) -> list[Block]:
    page = path.relative_to(ROOT).as_posix()
    lines = path.read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent = m["fence"], len(m["indent"])
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not re.match(
                rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[j]):
            body.append(lines[j][indent:] if lines[j][:indent].isspace() else lines[j])
            j += 1
        before = next((x for x in reversed(lines[:i]) if x.strip()), "")
        marker = MARKER.search(before)
        found.append(Block(page, i + 1, (m["info"].split() or [""])[0].strip("{}."),
                           "\n".join(body) + "\n",
                           marker["directive"] if marker else "",
                           _reason(marker["reason"]) if marker else ""))
        i = j + 1
    return found


def page_skip(page: str) -> str:
    """The reason a whole page is skipped, or ""."""
    if page in KNOWN_FAILING_PAGES:
        return KNOWN_FAILING_PAGES[page]
    lines = (ROOT / page).read_text().splitlines()
    for block in blocks_of(ROOT / page):  # markers shown inside a block do not count
        end = block.line + block.code.count("\n")
        lines[block.line - 1:end + 1] = [""] * (end + 1 - (block.line - 1))
    m = next((m for m in MARKER.finditer("\n".join(lines))
              if m["directive"] == "skip-page"), None)
    return _reason(m["reason"]) if m else ""


BLOCKS = [b for path in PAGES for b in blocks_of(path)]


def skip_reason(block: Block) -> str:
    """Why a block is not checked here (a marker), or ""."""
    page = page_skip(block.page)
    if page:
        return f"{block.where}: page skipped: {page}"
    if block.directive == "skip":
        return f"{block.where}: {block.reason}"
    return ""


# ---------------------------------------------------------------- python: page sessions

RUNNER = r'''
import json, sys, traceback
blocks = json.loads(open(sys.argv[1]).read())
namespace = {"__name__": "__main__", "__builtins__": __builtins__}
results = {}
for block in blocks:
    print(f"--- docs block {block['where']}", flush=True)
    print(f"--- docs block {block['where']}", file=sys.stderr, flush=True)
    results[block["where"]] = "running"
    open(sys.argv[2], "w").write(json.dumps(results))
    try:
        exec(compile(block["code"], block["where"], "exec"), namespace)
    except BaseException:
        results[block["where"]] = traceback.format_exc()
    else:
        results[block["where"]] = "ok"
    open(sys.argv[2], "w").write(json.dumps(results))
'''


@dataclasses.dataclass
class PageRun:
    results: dict[str, str]
    stdout: str
    stderr: str


_RUNS: dict[str, PageRun] = {}


def session_blocks(page: str) -> list[Block]:
    return [b for b in BLOCKS if b.page == page and b.kind == "python-session"
            and not skip_reason(b) and b.directive != "compile"]


def run_page(page: str, tmp: Path) -> PageRun:
    """Run a page's python blocks once, in order, in one interpreter (cached)."""
    if page not in _RUNS:
        blocks = session_blocks(page)
        (tmp / "blocks.json").write_text(json.dumps(
            [{"where": b.where, "code": b.code} for b in blocks]))
        results = tmp / "results.json"
        try:
            done = subprocess.run(
                [sys.executable, "-c", RUNNER, str(tmp / "blocks.json"), str(results)],
                capture_output=True, text=True, timeout=240, cwd=tmp, env=script_env())
            out, err = done.stdout, done.stderr
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
            err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
            err += "\n(timed out after 240 s)"
        got = json.loads(results.read_text()) if results.exists() else {}
        _RUNS[page] = PageRun(got, out, err)
    return _RUNS[page]


def check_python_session(block: Block, tmp_path_factory: pytest.TempPathFactory) -> None:
    if block.directive == "compile":
        compile(block.code, block.where, "exec")
        return
    run = run_page(block.page, tmp_path_factory.mktemp(Path(block.page).stem))
    result = run.results.get(block.where, "not reached (an earlier block hung or crashed)")
    if result != "ok":
        own = run.stderr.split(f"--- docs block {block.where}\n", 1)[-1]
        own = own.split("--- docs block ", 1)[0]
        pytest.fail(f"{block.where} (run after the page's earlier python blocks):\n"
                    f"{result}\nits stderr:\n{own[-3000:]}", pytrace=False)


# ---------------------------------------------------------------- shell

# Programs that are not run: they need an Azure account, a daemon, the network, or a
# file the reader has; `bash -n` still checks the block's syntax.
EXTERNAL = {"az", "docker", "curl", "git", "jq", "cut", "sort", "cat", "export", "unset",
            "eval", "npm", "echo"}
PYTHONS = {"python", "python3", ".venv/bin/python", "$(PY)"}


def shell_commands(block: Block) -> str:
    """The block as a script: for ```console, its `$ ` lines; else all of it."""
    if block.lang.lower() != "console":
        return block.code
    lines: list[str] = []
    for line in block.code.splitlines():
        if line.startswith("$ "):
            lines.append(line[2:])
        elif lines and lines[-1].endswith("\\"):
            lines.append(line)
    return "\n".join(lines) + "\n"


def heredocs(script: str) -> tuple[str, list[tuple[str, str]]]:
    """The script without heredoc bodies, and (redirect line, body) of each."""
    kept: list[str] = []
    docs: list[tuple[str, str]] = []
    lines = iter(script.splitlines())
    for line in lines:
        kept.append(line)
        m = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
        if m:
            body = []
            for inner in lines:
                if inner.strip() == m[1]:
                    break
                body.append(inner)
            docs.append((line, "\n".join(body)))
    return "\n".join(kept), docs


def substitutions(text: str) -> tuple[str, list[str]]:
    """`text` with each `$( ... )` replaced by SUBST, and the commands inside them."""
    inner: list[str] = []
    out = []
    i = 0
    while i < len(text):
        if text.startswith("$(", i) and not text.startswith("$((", i):
            depth, j = 1, i + 2
            while j < len(text) and depth:
                depth += {"(": 1, ")": -1}.get(text[j], 0)
                j += 1
            inner.append(text[i + 2:j - 1])
            out.append("SUBST")
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out), inner


def logical_lines(script: str) -> Iterator[str]:
    """Lines with backslash continuations and multi-line quotes joined."""
    pending, joiner = "", "\n"
    for line in script.splitlines():
        pending = f"{pending}{joiner}{line}" if pending else line
        joiner = " " if pending.endswith("\\") else "\n"
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # a quote still open
            continue
        yield pending
        pending = ""
    if pending:
        yield pending


def simple_commands(script: str) -> Iterator[list[str]]:
    """Each simple command's words, `$(...)` inner commands too; assignments and
    redirections left out."""
    for line in logical_lines(script):
        line, inner = substitutions(line)
        for nested in inner:
            yield from simple_commands(nested)
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        tokens = iter(list(lexer))
        for token in tokens:
            if token in {"&&", "||", "|", ";", "&", "(", ")"}:
                if words:
                    yield words
                words = []
            elif token in {">", ">>", "<", "<<", "<<-", "2>", ">&"}:
                next(tokens, None)
            elif not words and re.match(r"^[A-Za-z_]\w*=", token):
                continue
            else:
                words.append(token)
        if words:
            yield words


def check_cli(args: list[str]) -> str:
    """'' if `azure-batch-executor ARGS` parses, else the parser's complaint."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(args)
        except SystemExit as exc:
            if exc.code not in (0, None):
                return err.getvalue().strip() or f"exit {exc.code}"
    return ""


def extras() -> set[str]:
    if tomllib is None:  # the installed metadata, from the same pyproject.toml
        return set(importlib.metadata.metadata("azure-batch-executor").get_all(
            "Provides-Extra") or [])
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"])


def check_pip_install(args: list[str]) -> str:
    for arg in args:
        if arg.startswith("-") or arg.startswith((".", "/")):
            continue
        try:
            req = Requirement(arg)
        except InvalidRequirement:
            return f"pip install {arg}: not a requirement"
        if canonicalize_name(req.name) == "azure-batch-executor":
            unknown = set(req.extras) - extras()
            if unknown:
                return f"pip install {arg}: no extra {sorted(unknown)} in pyproject.toml"
        else:
            try:
                importlib.metadata.distribution(req.name)
            except importlib.metadata.PackageNotFoundError:
                return f"pip install {arg}: {req.name} is not installed in this environment"
    return ""


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:", text, re.M))


def check_python_command(args: list[str], cwd: Path) -> str:
    if args[:1] == ["-c"]:
        try:
            compile(args[1], "<python -c>", "exec")
        except SyntaxError as exc:
            return f"python -c: {exc}"
        return ""
    if args[:1] == ["-m"]:
        module, rest = args[1], args[2:]
        if module == "pip":
            return check_pip_install(rest[1:]) if rest[:1] == ["install"] else ""
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        if importlib.util.find_spec(module) is None:
            return f"python -m {module}: no such module"
        if module == "pytest":
            missing = [a for a in rest if not a.startswith("-") and not (ROOT / a).exists()]
            return f"pytest: no such path {missing}" if missing else ""
        return ""
    script = next((a for a in args if not a.startswith("-")), None)
    if script is not None and not (cwd / script).exists():
        return f"python {script}: no such file in {cwd.relative_to(ROOT) or '.'}"
    return ""


def check_shell(block: Block) -> None:
    script = shell_commands(block)
    syntax = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert syntax.returncode == 0, f"{block.where}: bash -n: {syntax.stderr}"
    script, docs = heredocs(script)
    for redirect, body in docs:
        if re.search(r">\s*(\S+\.json)", redirect):
            json.loads(body)
    problems: list[str] = []
    cwd, cloned = ROOT, False
    for words in simple_commands(script):
        program, args = words[0], words[1:]
        if program in ("sudo", "time"):
            program, args = args[0], args[1:]
        if program == "azure-batch-executor":
            problem = check_cli(args)
        elif program in PYTHONS:
            problem = check_python_command(args, cwd)
        elif program in ("pip", "pip3"):
            problem = check_pip_install(args[1:]) if args[:1] == ["install"] else ""
        elif program == "make":
            unknown = [a for a in args if not a.startswith("-") and "=" not in a
                       and a not in make_targets()]
            problem = f"make: no target {unknown}" if unknown else ""
        elif program == "cd":
            target = cwd / args[0] if args else ROOT
            if target.is_dir():
                cwd, problem = target, ""
            elif cloned:  # `git clone ... && cd <the clone>`: this repository
                cwd, problem = ROOT, ""
            else:
                problem = f"cd {args[0]}: no such directory"
        elif program in EXTERNAL:
            cloned = cloned or args[:1] == ["clone"]
            problem = ""
        else:
            problem = f"{program}: a command this test does not know (add it to EXTERNAL?)"
        if problem:
            problems.append(f"{' '.join(words)}\n    {problem}")
    assert not problems, f"{block.where}:\n" + "\n".join(problems)


# ---------------------------------------------------------------- data and the rest

def check_toml(block: Block) -> None:
    if tomllib is None:
        pytest.skip(f"{block.where}: tomllib is new in Python 3.11")
    data = tomllib.loads(block.code)
    contracts = data.get("tool", {}).get("importlinter", {}).get("contracts")
    if contracts:  # a copy of pyproject.toml's import-linter contracts
        real = {c["id"]: c for c in tomllib.loads((ROOT / "pyproject.toml").read_text())[
            "tool"]["importlinter"]["contracts"]}
        for contract in contracts:
            assert contract == real.get(contract["id"]), (
                f"{block.where}: contract {contract['id']!r} differs from pyproject.toml's")


DOCKERFILE = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
              "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK",
              "SHELL"}


def check_dockerfile(block: Block) -> None:
    text = re.sub(r"\\\n", " ", block.code)
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert line.split()[0].upper() in DOCKERFILE, f"{block.where}: {line!r}"
    assert next(line for line in text.splitlines()
                if line.strip() and not line.startswith("#")).startswith(("FROM", "ARG"))


CHECKS: dict[str, Any] = {
    "shell": check_shell,
    "toml": check_toml,
    "yaml": lambda b: yaml.safe_load(b.code),
    "json": lambda b: json.loads(b.code),
    "dockerfile": check_dockerfile,
    "text": lambda b: None,
}


# ---------------------------------------------------------------- the tests

def test_the_extractor_sees_the_pages() -> None:
    pages = {b.page for b in BLOCKS}
    assert {"README.md", "docs/quickstart.md", "docs/dev/architecture.md"} <= pages
    assert len(BLOCKS) > 100


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{b.where}-{b.lang or 'none'}"
                                                for b in BLOCKS])
def test_docs_block(block: Block, tmp_path_factory: pytest.TempPathFactory) -> None:
    assert block.directive in DIRECTIVES | {""}, (
        f"{block.where}: unknown marker `docs-test: {block.directive}` "
        f"(known: {sorted(DIRECTIVES)})")
    assert block.directive != "skip" or block.reason, f"{block.where}: a skip needs a reason"
    reason = skip_reason(block)
    if reason:
        pytest.skip(reason)
    kind = block.kind
    assert kind != "unknown", (
        f"{block.where}: language tag {block.lang!r} is not one this test checks; "
        f"use one of {sorted(LANGUAGES)} (text for output and diagrams)")
    assert block.directive != "compile" or kind == "python-session", (
        f"{block.where}: `docs-test: compile` is for python fragments")
    if kind == "script":
        return  # run as written, in its own interpreter, by test_docs_scripts.py
    if kind == "python-session":
        check_python_session(block, tmp_path_factory)
    else:
        CHECKS[kind](block)


@pytest.mark.parametrize(("script", "complaint"), [
    ("azure-batch-executor local --nodez 2", "unrecognized arguments"),
    ('eval "$(azure-batch-executor env --resource-grup rg)"', "env: error:"),
    ('pip install "azure-batch-executor[nope]"', "no extra ['nope']"),
    ("make nope", "no target ['nope']"),
    (".venv/bin/python -m no_such_module_here", "no such module"),
    ("cd examples/nowhere", "no such directory"),
    ("cd examples/superbatch\npython nothing.py", "no such file"),
    ("frobnicate --all", "does not know"),
    ("cat > p.json <<'EOF'\n{oops}\nEOF", "Expecting property name"),
    ("git clone <this repository> && cd x", "bash -n"),
])
def test_the_shell_checks_catch_mistakes(script: str, complaint: str) -> None:
    with pytest.raises((AssertionError, ValueError), match=re.escape(complaint)):
        check_shell(Block("docs/x.md", 1, "sh", script + "\n"))
