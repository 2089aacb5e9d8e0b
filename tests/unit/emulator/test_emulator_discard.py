"""A deleted job's or task's files leave the node at once and are deleted in the background."""

from __future__ import annotations

import threading
from pathlib import Path

from azure_batch_executor.emulator.models import core


def test_discard_moves_the_tree_out_then_deletes_it(tmp_path: Path, monkeypatch) -> None:
    tree = tmp_path / "pool" / "node" / "workitems" / "j1"
    (tree / "job-1" / "t1" / "wd").mkdir(parents=True)
    (tree / "job-1" / "t1" / "stdout.txt").write_text("out")
    started: list[threading.Thread] = []
    real_thread = threading.Thread

    def thread(*args, **kwargs):
        t = real_thread(*args, **kwargs)
        started.append(t)
        return t

    monkeypatch.setattr(core.threading, "Thread", thread)
    trash = tmp_path / core.TRASH_DIR
    core.discard(tree, trash)
    assert not tree.exists()  # gone from the node's tree before discard() returns
    tree.mkdir(parents=True)  # a task re-added under the same id gets a fresh directory
    assert len(started) == 1
    started[0].join(30)
    assert not started[0].is_alive()
    assert list(trash.iterdir()) == []  # deleted in the background
    assert tree.exists() and list(tree.iterdir()) == []


def test_discarding_a_missing_tree_is_a_no_op(tmp_path: Path) -> None:
    core.discard(tmp_path / "nothing", tmp_path / core.TRASH_DIR)
    assert not (tmp_path / core.TRASH_DIR).exists() or not any(
        (tmp_path / core.TRASH_DIR).iterdir())
