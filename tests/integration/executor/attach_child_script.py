"""Run by test_attach_integration.py: the process that dies. An executor with
``keep_job=True`` submits a map() of gated calls in chunks of two, then gated submit()
calls, prints ``JOB <job id>`` and waits to be killed; every call waits on the gate (a
file the test holds an exclusive flock on) and returns its value. The Batch account is
the test's local stack, given in the environment, so the job outlives this process.

Usage: attach_child_script.py GATE
"""

import fcntl
import os
import sys
import threading

from azure_batch_executor import AzureBatchExecutor

MAPPED = range(6)  # 3 tasks of 2 calls
SUBMITTED = (100, 101, 102)  # 3 tasks


def gated(gate, value):
    fd = os.open(gate, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # returns once the test lets go of the gate
    finally:
        os.close(fd)
    return value * 10


def main(gate):
    ex = AzureBatchExecutor(max_workers=4, queue_depth=8, keep_job=True,
                            python_command=sys.executable)
    ex.map(gated, [gate] * len(MAPPED), MAPPED, chunksize=2)
    for value in SUBMITTED:
        ex.submit(gated, gate, value)
    print("JOB", ex.job_id, flush=True)
    threading.Event().wait()  # until killed


if __name__ == "__main__":
    main(sys.argv[1])
