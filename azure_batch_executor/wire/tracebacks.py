"""Remote tracebacks that read like local ones: the client adds the source lines.

Role: a node formats a task's traceback without the user's sources (they are on the
client; code objects keep their file names, `_pickling`), so its frames have no source
line. `with_source_lines` puts each missing line back from the client's own files
(``linecache``), for every frame of every exception in the chain and in exception
groups; frames whose file the client does not have either stay as they are.
"""

from __future__ import annotations

import linecache
import re

_FRAME = re.compile(r'^(?P<lead>[ |]*)File "(?P<file>[^"]+)", line (?P<line>\d+), in ')


def with_source_lines(text: str) -> str:
    """`text` (a formatted traceback) with the source line under each frame that lacks one."""
    if 'File "' not in text:
        return text
    lines = text.split("\n")
    out: list[str] = []
    for n, line in enumerate(lines):
        out.append(line)
        match = _FRAME.match(line)
        if match is None:
            continue
        lead = match["lead"]
        following = lines[n + 1] if n + 1 < len(lines) else ""
        if following.startswith(lead + "  ") and not _FRAME.match(following):
            continue  # the node had the source: its line is there already
        source = linecache.getline(match["file"], int(match["line"])).strip()
        if source:
            out.append(f"{lead}  {source}")
    return "\n".join(out)
