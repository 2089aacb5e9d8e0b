"""Run by test_fork.py in its own interpreter: executors across os.fork() on the local stack.

Role: the parent builds a reusable executor and a direct `AzureBatchExecutor`, runs a task
on each, then forks twice, one child after the other:

- child "reusable": `get_reusable_executor()` and joblib ``Parallel(backend="azure_batch")``
  must run tasks (a fresh executor, a new job) and the child leaves through ``sys.exit``,
  so its exit handlers run (they must not stop the parent's local stack);
- child "direct": ``submit``/``map`` on the parent's executor must raise
  `ForkedExecutorError` at once, ``shutdown()`` must return at once; it leaves with
  ``os._exit``.

The parent waits for each child with ``waitpid`` under a SIGALRM deadline (a hung child is
killed and reported, never left behind), then checks its own executors still work (the
children did not shut them down or stop the stack), and prints one JSON line: the report.

Imports: the standard library, joblib and azure_batch_executor.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
import traceback
from typing import Any

from joblib import Parallel, delayed, parallel_config

from azure_batch_executor import AzureBatchExecutor, ForkedExecutorError, register_joblib
from azure_batch_executor.reusable import get_reusable_executor

CHILD_DEADLINE_S = 90  # a child that takes longer hangs: killed and reported
RESULT_TIMEOUT_S = 60.0


def square(x: int) -> int:
    return x * x


def child_reusable(parent_jobs: list[str]) -> dict[str, Any]:
    ex = get_reusable_executor()
    report: dict[str, Any] = {"fresh_job": ex.job_id not in parent_jobs}
    report["submit"] = ex.submit(square, 7).result(timeout=RESULT_TIMEOUT_S)
    with parallel_config(backend="azure_batch", n_jobs=2):
        report["joblib"] = Parallel(timeout=RESULT_TIMEOUT_S)(
            delayed(square)(i) for i in range(5))
    report["same_reusable"] = get_reusable_executor() is ex
    report["ok"] = (report["fresh_job"] and report["submit"] == 49
                    and report["joblib"] == [0, 1, 4, 9, 16] and report["same_reusable"])
    return report


def child_direct(ex: AzureBatchExecutor) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for name, call in (("submit", lambda: ex.submit(square, 3)),
                       ("map", lambda: list(ex.map(square, [1, 2])))):
        start = time.monotonic()
        try:
            call()
        except ForkedExecutorError as exc:
            report[name] = {"error": str(exc), "seconds": time.monotonic() - start}
        except BaseException as exc:  # noqa: BLE001 - the wrong error: reported as it is
            report[name] = {"wrong": f"{type(exc).__name__}: {exc}"}
        else:
            report[name] = {"wrong": "no error"}
    start = time.monotonic()
    ex.shutdown(wait=True)  # must not join the parent's poller thread
    report["shutdown_seconds"] = time.monotonic() - start
    report["shut_down"] = ex.shut_down
    report["ok"] = all("error" in report[n] for n in ("submit", "map")) and ex.shut_down
    return report


def fork(body: Any, leave: str) -> dict[str, Any]:
    """Run `body()` in a forked child, which writes its report to a pipe and leaves by
    `leave` ("sys.exit" or "os._exit"), exit code 0 when the report says ok. Returns
    {"exit": the child's exit code (-9: it hung and was killed), "report": its report}."""
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        try:
            report = body()
        except BaseException:  # noqa: BLE001 - the child must report and leave, whatever happened
            report = {"ok": False, "raised": traceback.format_exc()}
        with os.fdopen(write_end, "w") as out:
            json.dump(report, out)
        code = 0 if report.get("ok") else 1
        if leave == "sys.exit":
            sys.exit(code)  # interpreter exit: threading and atexit handlers run
        os._exit(code)
    os.close(write_end)

    def hung(signum: int, frame: Any) -> None:
        os.kill(pid, signal.SIGKILL)

    signal.signal(signal.SIGALRM, hung)
    signal.alarm(CHILD_DEADLINE_S)
    with os.fdopen(read_end) as inp:
        text = inp.read()
    _, status = os.waitpid(pid, 0)
    signal.alarm(0)
    return {"exit": os.waitstatus_to_exitcode(status),
            "report": json.loads(text) if text else None}


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(process)d %(name)s %(message)s")
    logging.getLogger("azure_batch_executor.reusable").setLevel(logging.INFO)
    register_joblib()
    reusable = get_reusable_executor()
    direct = AzureBatchExecutor()
    parent_jobs = [reusable.job_id, direct.job_id]
    report: dict[str, Any] = {"parent_pid": os.getpid(), "before": [
        reusable.submit(square, 2).result(timeout=RESULT_TIMEOUT_S),
        direct.submit(square, 3).result(timeout=RESULT_TIMEOUT_S)]}
    report["reusable"] = fork(lambda: child_reusable(parent_jobs), "sys.exit")
    report["direct"] = fork(lambda: child_direct(direct), "os._exit")
    report["after"] = [  # the children left the parent's executors (and its stack) alone
        get_reusable_executor().submit(square, 4).result(timeout=RESULT_TIMEOUT_S),
        direct.submit(square, 5).result(timeout=RESULT_TIMEOUT_S)]
    report["same_reusable"] = get_reusable_executor() is reusable
    direct.shutdown()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
