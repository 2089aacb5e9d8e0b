"""DELETE_CONTAINER_WHEN_DONE and DELETE_JOB_WHEN_DONE on the local stack (Azurite and the
Batch emulator): the run's blobs and job are gone, its outputs are in BATCH_DIRECTORY, and
other runs' blobs are left alone."""

from __future__ import annotations

import contextlib

from azure.core.exceptions import ResourceNotFoundError

from azure_batch_executor.cloud.codes import lower
from azure_batch_executor.cloud.retry import RequestStats, RetryPolicy
from azure_batch_executor.engine.accounts import connect

COPY = "open('out.txt', 'w').write(open('in.txt').read().upper())"


def test_a_successful_run_deletes_its_blobs_and_its_job(make_client, tmp_path) -> None:
    (tmp_path / "in.txt").write_text("hello")
    c = make_client(DELETE_CONTAINER_WHEN_DONE=True, DELETE_JOB_WHEN_DONE=True)
    store, batch = connect(c.settings, RequestStats(), RetryPolicy())
    try:
        store.upload("another-run/in.txt", b"kept")
        resource = c.build_resource_file("in.txt", "in.txt")
        c.add_task([resource], [c.build_output_file("out.txt", "out.txt")],
                   command_line=f'python3 -c "{COPY}"')
        assert store.blob_names(f"{c.job_id}/") == [f"{c.job_id}/in.txt"]
        c.run()
        assert (tmp_path / "out.txt").read_text() == "HELLO"
        assert store.blob_names(f"{c.job_id}/") == []  # inputs, outputs and logs
        assert store.download("another-run/in.txt") == b"kept"
        with contextlib.suppress(ResourceNotFoundError):  # already deleted
            assert lower(batch.client.get_job(c.job_id).state) == "deleting"
    finally:
        store.close()
        batch.close()
