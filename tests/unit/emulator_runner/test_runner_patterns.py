"""Output-file pattern matching and blob naming (emulator/patterns.py), table-driven."""

from __future__ import annotations

from pathlib import Path

import pytest

from azure_batch_executor.emulator.patterns import (
    Match,
    blob_name,
    expand_vars,
    match_files,
)

TREE = [
    "stdout.txt",  # in the task dir, next to wd
    "wd/a.txt",
    "wd/b.txt",
    "wd/c.log",
    "wd/.hidden.txt",
    "wd/abc*",
    "wd/x1.dat",
    "wd/x2.dat",
    "wd/xa.dat",
    "wd/xb.dat",
    "wd/sub/c.txt",
    "wd/sub/.e.txt",
    "wd/sub/deep/d.txt",
    "wd/.hdir/f.txt",
    "wd/out/r1.csv",
    "wd/out/nested/r2.csv",
]


@pytest.fixture
def wd(tmp_path: Path) -> Path:
    for rel in TREE:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)
    return tmp_path / "wd"


MATCH_CASES = [
    # pattern, is a wildcard pattern, relative names of the matches
    ("a.txt", False, ["a.txt"]),
    ("./sub/c.txt", False, ["c.txt"]),
    ("missing.txt", False, []),
    ("sub", False, []),  # a folder is not a file
    ("../stdout.txt", False, ["stdout.txt"]),
    ("*.txt", True, ["a.txt", "b.txt"]),
    (".*.txt", True, [".hidden.txt"]),
    ("*", True, ["a.txt", "abc*", "b.txt", "c.log", "x1.dat", "x2.dat", "xa.dat", "xb.dat"]),
    ("**/*.txt", True, ["a.txt", "b.txt", "sub/c.txt", "sub/deep/d.txt"]),
    ("sub/**/*.txt", True, ["c.txt", "deep/d.txt"]),
    ("sub/**", True, ["c.txt", "deep/d.txt"]),
    ("**/.e.txt", True, ["sub/.e.txt"]),
    (".hdir/*", True, ["f.txt"]),
    ("sub/*/d.txt", True, ["deep/d.txt"]),
    ("x?.dat", True, ["x1.dat", "x2.dat", "xa.dat", "xb.dat"]),
    ("x[12].dat", True, ["x1.dat", "x2.dat"]),
    ("x[a-b].dat", True, ["xa.dat", "xb.dat"]),
    ("x[!12].dat", True, ["xa.dat", "xb.dat"]),
    ("abc[*]", False, ["abc*"]),
    ("$OUT/*.csv", True, ["r1.csv"]),
    ("${OUT}/**/*.csv", True, ["nested/r2.csv", "r1.csv"]),
    ("A.TXT", False, []),  # case-sensitive, as on Linux
]


@pytest.mark.parametrize(("pattern", "wildcard", "expected"), MATCH_CASES)
def test_match_files(wd: Path, pattern: str, wildcard: bool, expected: list[str]) -> None:
    is_wild, matches = match_files(pattern, wd, {"OUT": "out"})
    assert is_wild is wildcard
    assert sorted(m.relative for m in matches) == expected
    for m in matches:
        assert m.file.is_file()


def test_absolute_pattern(wd: Path) -> None:
    wild, matches = match_files(f"{wd}/sub/*.txt", Path("/nonexistent"), {})
    assert wild is True
    assert [m.file for m in matches] == [wd / "sub" / "c.txt"]


def test_no_duplicates_with_repeated_double_star(wd: Path) -> None:
    _, matches = match_files("**/**/d.txt", wd, {})
    assert [m.relative for m in matches] == ["sub/deep/d.txt"]


BLOB_NAME_CASES = [
    # destination path, relative name, wildcard pattern, blob name
    (None, "a.txt", False, "a.txt"),
    ("", "a.txt", False, "a.txt"),
    ("logs/task-1.out", "stdout.txt", False, "logs/task-1.out"),
    ("vf", "sub/c.txt", True, "vf/sub/c.txt"),
    ("vf/", "sub/c.txt", True, "vf/sub/c.txt"),
    (None, "sub/c.txt", True, "sub/c.txt"),
]


@pytest.mark.parametrize(("path", "relative", "wildcard", "expected"), BLOB_NAME_CASES)
def test_blob_name(path: str | None, relative: str, wildcard: bool, expected: str) -> None:
    assert blob_name(path, Match(Path("/x"), relative), wildcard=wildcard) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$A/$B", "1/$B"),  # unknown names stay as written
        ("${A}x", "1x"),
        ("$Ax", "$Ax"),  # the variable is Ax, which is unset
        ("pre$A", "pre1"),
        ("no vars", "no vars"),
    ],
)
def test_expand_vars(text: str, expected: str) -> None:
    assert expand_vars(text, {"A": "1"}) == expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("a.txt", False),
        ("../stdout.txt", False),
        ("a*", True),
        ("a?b", True),
        ("a[bc]", True),
        ("a[!b]", True),
        ("a[b-c]", True),
        ("**/x", True),
        ("a[*]", False),  # an escape, not a wildcard
        ("a[?]b", False),
        ("a[", False),  # an unclosed bracket is an ordinary character
    ],
)
def test_a_wildcard_pattern_is_told_apart(tmp_path: Path, pattern: str, expected: bool) -> None:
    wildcard, _ = match_files(pattern, tmp_path / "wd", {})
    assert wildcard is expected
