"""While nothing completes, an executor's requests thin out: counted with its own request
counters (`request_counts()`), the second of two equal windows of idleness costs a
fraction of the first; once its task completes it is collected at once."""

from __future__ import annotations

import threading
import time

from throttle_kit import Gate, wait_gate, wait_until

WINDOW = 8.0  # seconds


def after_gate(path: str) -> str:
    wait_gate(path)
    return "done"


def batch_requests(ex) -> int:
    return sum(n for kind, n in ex.request_counts().items() if kind.startswith("batch."))


def test_idle_request_rate_falls_over_time(make_executor, tmp_path) -> None:
    gate = Gate(tmp_path)
    ex = make_executor(max_workers=1, max_poll_interval=5.0)
    f = ex.submit(after_gate, gate.path)
    wait_until(f.running, "the task to be accepted")
    pause = threading.Event()
    t0, r0, k0 = time.monotonic(), batch_requests(ex), ex.request_counts()["ticks"]
    pause.wait(WINDOW)
    first, first_ticks = batch_requests(ex) - r0, ex.request_counts()["ticks"] - k0
    pause.wait(max(0.0, t0 + 3 * WINDOW - time.monotonic()))  # idle on: 16-24 s
    r1, k1 = batch_requests(ex), ex.request_counts()["ticks"]
    pause.wait(WINDOW)
    last, last_ticks = batch_requests(ex) - r1, ex.request_counts()["ticks"] - k1

    # 0-8 s: a tick every 0.7 s (poll_interval); 24-32 s: 2.4-3.2 s apart (a tenth of the
    # idle time), plus at most one health check (2 requests) in each window
    assert 9 <= first_ticks <= 15 and 2 <= last_ticks <= 4, (first_ticks, last_ticks)
    assert last <= first / 2, (first, last)
    gate.open()
    start = time.monotonic()
    assert f.result(timeout=30) == "done"
    assert time.monotonic() - start <= 5.0 + 2.0  # at most one idle interval (capped) late
