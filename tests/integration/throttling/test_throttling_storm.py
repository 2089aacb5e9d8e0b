"""A throttling storm over adds, polls, health checks and downloads, longer than the
~30 s after which the executor used to declare the job gone: every result comes back
correct, no future fails, the job is never terminated and the running tasks are not
killed. Batch is throttled by the emulator (429 without `Retry-After`, then 503
`ServerBusy` with `Retry-After: 1`); the outputs' downloads by the storage proxy in front
of Azurite (503 `ServerBusy`)."""

from __future__ import annotations

import time

from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from throttle_kit import Gate, wait_gate, wait_until

STORM = 32.0  # seconds of Batch throttling: longer than the old ~30 s of tolerance
DOWNLOAD_STORM = STORM + 6.0  # the outputs stay unreadable a little longer


def square_after_gate(path: str, x: int) -> int:
    wait_gate(path)
    return x * x


def square(x: int) -> int:
    return x * x


def test_a_storm_over_adds_polls_and_downloads_fails_nothing(make_executor, local_stack,
                                                            storage_proxy, tmp_path) -> None:
    emulator = local_stack.emulator
    gate = Gate(tmp_path)
    ex = make_executor(max_workers=12)
    running = [ex.submit(square_after_gate, gate.path, i) for i in range(4)]
    wait_until(lambda: all(f.running() for f in running), "the first tasks to be accepted")
    emulator.reset_request_counts()
    start = time.monotonic()
    emulator.throttle(STORM / 2, status=429)  # every Batch request, no Retry-After ...
    emulator.throttle(STORM, status=503, retry_after=1)  # ... then ServerBusy, Retry-After 1 s
    storage_proxy.throttle(DOWNLOAD_STORM, status=503, method="GET",
                           path_contains="_outputs.pickle")
    later = [ex.submit(square, i) for i in range(4, 12)]  # their adds meet the storm
    gate.open()  # the first four complete while no poll is answered

    results = [f.result(timeout=STORM + 25.0) for f in running + later]

    assert results == [i * i for i in range(12)]
    assert time.monotonic() - start >= STORM  # nothing got through the storm
    assert ex.broken is None
    refused = {c["route"]: c["count"] for c in emulator.throttling()["counts"]}
    assert refused.get("create_task_collection", 0) >= 2, refused  # adds retried ...
    assert refused.get("get_job_task_counts", 0) >= 2, refused  # ... polls ...
    assert storage_proxy.refused >= 2  # ... and downloads
    served = {route for _, route in emulator.request_counts()}
    assert not served & {"terminate_job", "terminate_task", "delete_job"}, served
    client = BatchClient(local_stack.batch_account_url, AzureNamedKeyCredential(
        local_stack.batch_account_name, local_stack.batch_account_key))
    try:
        assert str(client.get_job(ex.job_id).state).lower().endswith("active")
    finally:
        client.close()
    counts = ex.request_counts()
    assert counts["batch.add"] >= 3 and counts["blob.get"] >= 12 + 2, counts
