"""Output-file `filePattern` matching and blob naming, as a Linux Batch node does it.

Role: expand `$VAR` / `${VAR}` from the task environment, resolve the pattern
against the task working directory (relative, `../stdout.txt` included) or the
root (absolute), find the files it matches, and name the blob each one goes to.

Pattern rules (docs/dev/emulator-rest.md, "Output files"), per `/`-separated segment:
`*` any run of characters within a name, `?` one character, `[abc]`, `[a-c]`,
`[!abc]` one character from (not from) a set, `**` as a whole segment any
number of folders (zero included; a trailing `**` means every file below).
Names starting with `.` match only a segment that spells the dot itself, and
`**` does not descend into such folders. A bracket holding one character
(`[*]`, `[?]`, `[[]`) is an escape: it matches that character literally and
does not make the pattern a wildcard pattern. Only regular files match.

Blob naming: a pattern without wildcards uploads its one file as `path`, or as
the file name when `path` is omitted. A wildcard pattern treats `path` as a
virtual folder and appends each match's path relative to the pattern's
leading non-wildcard folder.

Imports: the standard library only.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

_VAR = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class Match:
    """One file a pattern matched, and the name it is known by for blob naming."""

    file: Path
    relative: str  # wildcard pattern: path below the leading folder; literal: the file name


def expand_vars(pattern: str, env: Mapping[str, str]) -> str:
    """Replace `$NAME` and `${NAME}` with values from `env`; unknown names stay as written."""

    def repl(m: re.Match[str]) -> str:
        name = m.group("braced") or m.group("bare")
        return env.get(name, m.group(0))

    return _VAR.sub(repl, pattern)


def _literal(segment: str) -> str | None:
    """The name a segment spells if it has no wildcard (single-char brackets unescaped)."""
    out: list[str] = []
    i = 0
    while i < len(segment):
        ch = segment[i]
        if ch in "*?":
            return None
        if ch == "[":
            close = _bracket_end(segment, i)
            if close is None:
                out.append(ch)  # an unclosed bracket is an ordinary character
                i += 1
                continue
            body = segment[i + 1 : close]
            if len(body) != 1 or body == "!":
                return None
            out.append(body)
            i = close + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _bracket_end(segment: str, start: int) -> int | None:
    """Index of the `]` closing the bracket expression opened at `start` (fnmatch rules)."""
    j = start + 1
    if j < len(segment) and segment[j] == "!":
        j += 1
    if j < len(segment) and segment[j] == "]":
        j += 1
    close = segment.find("]", j)
    return None if close < 0 else close


def _name_matches(name: str, segment: str) -> bool:
    if name.startswith(".") and not segment.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, segment)


def _scan(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError:  # missing, not a folder, or unreadable: nothing matches there
        return []


def _is_dir(entry: os.DirEntry[str], *, follow: bool) -> bool:
    try:
        return entry.is_dir(follow_symlinks=follow)
    except OSError:
        return False


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _walk(folder: Path, segments: list[str]) -> Iterator[Path]:
    """Files below `folder` matching `segments` (each a literal, a glob or `**`)."""
    seg, rest = segments[0], segments[1:]
    if seg == "**":
        if rest:
            yield from _walk(folder, rest)
        for entry in _scan(folder):
            if entry.name.startswith("."):
                continue
            if not rest and _is_file(entry):
                yield Path(entry.path)
            elif _is_dir(entry, follow=False):  # no symlinked folders: no cycles
                yield from _walk(Path(entry.path), segments)
        return
    literal = _literal(seg)
    if literal is not None:
        candidate = folder / literal
        if rest:
            if candidate.is_dir():
                yield from _walk(candidate, rest)
        elif candidate.is_file():
            yield candidate
        return
    for entry in _scan(folder):
        if not _name_matches(entry.name, seg):
            continue
        if rest:
            if _is_dir(entry, follow=True):
                yield from _walk(Path(entry.path), rest)
        elif _is_file(entry):
            yield Path(entry.path)


def match_files(file_pattern: str, wd: Path, env: Mapping[str, str]) -> tuple[bool, list[Match]]:
    """Expand and match `file_pattern`; returns (is a wildcard pattern, matches in order).

    Relative patterns are resolved against `wd`; `.` and `..` are folded first,
    so `../stdout.txt` names the task directory's stdout.txt.
    """
    expanded = expand_vars(file_pattern, env)
    full = os.path.normpath(os.path.join(str(wd), expanded))
    segments = [s for s in full.split("/") if s]
    lead: list[str] = []
    for seg in segments:
        name = _literal(seg)
        if name is None:
            break
        lead.append(name)
    if len(lead) == len(segments):
        target = Path("/", *lead)
        found = [Match(target, target.name)] if target.is_file() else []
        return False, found
    base = Path("/", *lead)
    seen: set[Path] = set()
    matches: list[Match] = []
    for file in _walk(base, segments[len(lead) :]):
        if file in seen:  # `**/**` can reach a file twice
            continue
        seen.add(file)
        matches.append(Match(file, file.relative_to(base).as_posix()))
    return True, matches


def blob_name(destination_path: str | None, match: Match, *, wildcard: bool) -> str:
    """Blob name for `match` under the destination's `path` (see the module docstring)."""
    path = (destination_path or "").strip("/")
    if not wildcard:
        return path or match.relative
    return f"{path}/{match.relative}" if path else match.relative
