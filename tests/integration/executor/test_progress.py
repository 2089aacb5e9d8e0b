"""The progress bar (docs/logging.md#progress): drawn in a terminal-like run, absent in a
non-terminal one with the default "auto"; and wrappers that count a map() see it all:
tqdm's ``contrib.concurrent`` (it counts the futures `submit` returns) and a tqdm
around the map() iterator."""

from __future__ import annotations

import functools
import io
import re
import sys

import pytest
import tqdm
from tqdm.contrib.concurrent import _executor_map

from azure_batch_executor import AzureBatchExecutor
from azure_batch_executor.engine import progress


def square(x: int) -> int:
    return x * x


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_map(monkeypatch: pytest.MonkeyPatch, stream: io.StringIO, **settings: object
            ) -> tuple[list[int], str]:
    monkeypatch.setattr(sys, "stderr", stream)
    with AzureBatchExecutor(max_workers=4, **settings) as ex:
        results = list(ex.map(square, range(4)))
        job_id = ex.job_id
    return results, job_id


def test_a_terminal_run_shows_the_bar_of_tasks_done(local_stack, monkeypatch) -> None:
    stream = Terminal()
    results, job_id = run_map(monkeypatch, stream, progress="auto")
    assert results == [0, 1, 4, 9]
    out = stream.getvalue()
    assert re.search(rf"\r{re.escape(job_id)}: 100%\|[^|]*\| 4/4 \[", out), out
    assert out.endswith("\n")  # closed, and left on screen


def test_a_non_terminal_run_draws_nothing(local_stack, monkeypatch) -> None:
    stream = io.StringIO()
    results, job_id = run_map(monkeypatch, stream, progress="auto")
    assert results == [0, 1, 4, 9]
    assert f"{job_id}: " not in stream.getvalue()  # the bar's description
    assert "task/s" not in stream.getvalue()


def test_the_setting_and_its_variable(monkeypatch) -> None:
    from azure_batch_executor.config import Settings
    from azure_batch_executor.errors import ConfigurationError

    assert progress.wanted(True, io.StringIO()) and not progress.wanted(False, Terminal())
    assert progress.wanted("auto", Terminal()) and not progress.wanted("auto", io.StringIO())
    monkeypatch.setenv("AZURE_BATCH_EXECUTOR_PROGRESS", "off")
    assert Settings.resolve().progress is False
    assert Settings.resolve(progress=True).progress is True  # the argument wins
    monkeypatch.setenv("AZURE_BATCH_EXECUTOR_PROGRESS", "Auto")
    assert Settings.resolve().progress == "auto"
    with pytest.raises(ConfigurationError, match='progress=2: must be "auto", True or False'):
        Settings.resolve(progress=2)


def test_tqdm_contrib_concurrent_counts_every_item_of_map(local_stack) -> None:
    stream = io.StringIO()
    make = functools.partial(AzureBatchExecutor, progress=False)
    results = _executor_map(make, square, range(4), tqdm_class=tqdm.tqdm, file=stream,
                            max_workers=4)
    assert results == [0, 1, 4, 9]
    assert "4/4 [" in stream.getvalue(), stream.getvalue()


def test_a_tqdm_around_the_map_iterator_counts_as_it_yields(make_batch_executor) -> None:
    stream = io.StringIO()
    ex = make_batch_executor(max_workers=4)
    results = list(tqdm.tqdm(ex.map(square, range(4), chunksize=2), total=4, file=stream))
    assert results == [0, 1, 4, 9]
    assert "4/4 [" in stream.getvalue()
