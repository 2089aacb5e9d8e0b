"""Run by test_interrupt.py: four 40-second tasks, then the test sends SIGINT.

Usage: interrupt_script.py FIFO [submit|map|bare]. Each task writes a line to the FIFO when
it starts; once four lines came, the script prints READY and waits for its results inside
``with`` (iterating ``map()`` with "map"; outside any ``with`` with "bare"). The Batch
account is the test's local stack, given in the environment, so the test can look at the
job after this process is gone.
"""

import sys
import time

from azure_batch_executor import AzureBatchExecutor

SECONDS = 40


def sleeper(i, fifo, seconds=SECONDS):
    with open(fifo, "w") as f:
        f.write(f"{i}\n")
    time.sleep(seconds)
    return i


def main(fifo, how):
    ex = AzureBatchExecutor(max_workers=4, python_command=sys.executable, dedicated_nodes=2,
                            task_slots_per_node=2)
    if how == "bare":  # no `with`: the interrupt ends the interpreter, the exit hook acts
        run(ex, fifo, how)
    else:
        with ex:
            run(ex, fifo, how)


def run(ex, fifo, how):
    print("JOB", ex.job_id, flush=True)
    if how == "map":
        results = ex.map(sleeper, range(4), [fifo] * 4)
    else:
        futures = [ex.submit(sleeper, i, fifo) for i in range(4)]
    started = 0
    while started < 4:
        with open(fifo) as f:  # blocks until a task opens it
            started += sum(1 for _ in f)
    print("READY", flush=True)
    if how == "map":
        print(list(results))
    else:
        print([f.result() for f in futures])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "submit")
