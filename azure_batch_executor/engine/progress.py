"""The progress bar: tasks done of the tasks submitted so far, for one executor.

Role: the `progress` setting ("auto", True, False) decides once, when the manager starts,
whether there is a bar (`wanted`: "auto" is on when stderr is a terminal or in a Jupyter
kernel). The bar is tqdm's (imported here, lazily: `tqdm.auto` picks the notebook widget
in a notebook), drawn on stderr by the manager thread only: `Progress.show` on each tick
with the count of futures it resolved, the work items submitted so far (the total grows
as `submit`/`map` add work) and the pool watcher's status while no node can run tasks
(its postfix). Nothing is done per submit; with the setting off there is no bar at all.

Imports: nothing of the manager; tqdm only when a bar is wanted.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

PROGRESS_VALUES = ("auto", True, False)


def in_notebook() -> bool:
    """True in a Jupyter kernel (an IPython shell that talks ZMQ to its front end)."""
    ipython = sys.modules.get("IPython")
    if ipython is None or "ipykernel" not in sys.modules:
        return False
    shell = getattr(ipython, "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


def wanted(setting: object, stream: TextIO | None = None) -> bool:
    """Whether the `progress` setting asks for a bar on `stream` (default: sys.stderr)."""
    if setting != "auto":
        return bool(setting)
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        tty = bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed stream
        tty = False
    return tty or in_notebook()


class Progress:
    """One tqdm bar: `show(done, total, postfix)` redraws it when a number changed; the bar
    appears with the first work submitted (after the executor's announced line)."""

    def __init__(self, job_id: str, stream: TextIO | None = None) -> None:
        self.job_id = job_id
        self.stream = stream
        self.bar: Any = None
        self.state: tuple[int, int, str] = (0, 0, "")

    @classmethod
    def start(cls, setting: object, job_id: str) -> Progress | None:
        """A bar when the setting wants one, else None."""
        return cls(job_id) if wanted(setting) else None

    def show(self, done: int, total: int, postfix: str) -> None:
        state = (done, total, postfix)
        if state == self.state:
            return
        self.state = state
        if self.bar is None:
            from tqdm.auto import tqdm  # lazily: a bar is not wanted in most processes

            self.bar = tqdm(total=total, desc=self.job_id, unit="task", leave=True,
                            file=self.stream or sys.stderr, dynamic_ncols=True)
        bar = self.bar
        bar.total = total
        bar.n = done
        bar.set_postfix_str(postfix, refresh=False)
        bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
