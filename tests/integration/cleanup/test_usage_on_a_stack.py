"""Usage (issue 13, item 7): every executor keeps a usage record, `ex.usage()`, logged in one
INFO line when it ends; times come from the tasks' execution info on the emulator."""

from __future__ import annotations

import logging
import time

from azure_batch_executor import Usage


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_usage_fields_and_the_info_line(make_batch_executor, caplog) -> None:
    caplog.set_level(logging.INFO, logger="azure_batch_executor")
    ex = make_batch_executor(max_workers=4, node_hour_price=0.2)
    assert list(ex.map(nap, [0.5] * 4, timeout=300)) == [0.5] * 4
    failed = ex.submit(divmod, 1, 0)
    assert isinstance(failed.exception(timeout=300), ZeroDivisionError)  # a result: no failure
    ex.shutdown()
    u = ex.usage()
    assert isinstance(u, Usage) and u.job_id == ex.job_id
    assert (u.tasks, u.failed_tasks, u.retries, u.requeues) == (5, 0, 0, 0)
    assert u.task_seconds >= 4 * 0.5  # each task's own run time, from executionInfo
    assert 1 <= u.nodes <= 2  # the local stack's two nodes
    assert 0.5 <= u.node_seconds <= u.task_seconds  # tasks sharing a node count once
    assert u.bytes_uploaded > 0 and u.bytes_downloaded > 0
    assert u.node_downloads == 0  # no large argument
    assert u.requests["batch.add"] >= 1 and u.requests["blob.get"] == 5
    assert u.requests["batch.list"] >= 1 and u.requests["batch.delete_job"] == 1
    assert u.estimated_cost == u.node_hours * 0.2 > 0
    lines = [r for r in caplog.records if r.getMessage().startswith("usage of job")]
    assert [r.getMessage() for r in lines] == [str(u)]
    assert lines[0].levelno == logging.INFO
    assert lines[0].name == "azure_batch_executor.engine.manager"
