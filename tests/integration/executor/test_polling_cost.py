"""An idle poll costs O(1) requests however many tasks are outstanding, counted on the
server side by the emulator (not only by the executor's own counters)."""

from __future__ import annotations

import threading
import time

from executor_contract import Gate, wait_gate


def test_idle_polls_cost_one_request_each(make_batch_executor, local_stack, tmp_path) -> None:
    emulator = local_stack.emulator
    gate = Gate(tmp_path)
    ex = make_batch_executor(max_workers=12, poll_interval=0.05)
    fs = [ex.submit(wait_gate, gate.path, i) for i in range(12)]
    deadline = time.monotonic() + 60
    tick = threading.Event()
    while ex._manager.table.in_flight() < 12:  # all accepted by Batch (4 run, 8 wait)
        assert time.monotonic() < deadline, "tasks not accepted"
        tick.wait(0.02)
    try:
        emulator.reset_request_counts()
        ticks0 = ex.request_counts()["ticks"]
        while ex.request_counts()["ticks"] < ticks0 + 20:
            assert time.monotonic() < deadline, "the poller stopped ticking"
            tick.wait(0.02)
        ticks = ex.request_counts()["ticks"] - ticks0
        served = sum(emulator.request_counts().values())
        assert served <= ticks * 1.2 + 2, (served, ticks, emulator.request_counts())
    finally:
        gate.open()
    assert sorted(f.result(60) for f in fs) == list(range(12))
