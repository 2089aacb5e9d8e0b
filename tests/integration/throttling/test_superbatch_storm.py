"""The SuperBatch client through a throttling storm longer than the ~10 s (6 throttled
requests) after which it used to give up: the executor's retry policy and watch loop,
so `run()` creates its job, adds its tasks and collects their outputs once it ends."""

from __future__ import annotations

import time
import uuid

from azure_batch_executor import superbatch

STORM = 15.0

COPY = "open('out.txt', 'w').write(open('in.txt').read().upper())"


def test_run_waits_a_storm_out(local_stack, tmp_path) -> None:
    (tmp_path / "in.txt").write_text("hello")
    c = superbatch.client(
        POOL_ID="superbatch-it", JOB_ID=f"sbstorm{uuid.uuid4().hex[:12]}",
        POOL_VM_SIZE="STANDARD_A1_v2", POOL_NODE_COUNT=0, POOL_LOW_PRIORITY_NODE_COUNT=2,
        DELETE_POOL_WHEN_DONE=False, BLOB_CONTAINER_NAME="superbatch-it",
        BATCH_DIRECTORY=str(tmp_path), DOCKER_IMAGE="myusername/sum-of-powers:v1",
        COMMAND_LINE=f'python3 -c "{COPY}"')
    resource = c.build_resource_file("in.txt", "in.txt")
    for i in range(3):
        c.add_task([resource], [c.build_output_file("out.txt", f"out_{i}.txt")])
    emulator = local_stack.emulator
    emulator.throttle(STORM, status=429)  # every Batch request, no Retry-After
    start = time.monotonic()
    try:
        c.run()
    finally:
        emulator.clear_throttling()
    assert time.monotonic() - start >= STORM
    assert [(tmp_path / f"out_{i}.txt").read_text() for i in range(3)] == ["HELLO"] * 3
