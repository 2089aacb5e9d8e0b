"""config.pickle (versions, initializer) travels in the job's environment while it is small,
and as a blob resource file above the inline threshold; the node sees config.pickle either way."""

from __future__ import annotations

from azure_batch_executor import constants as C

STATE = {"value": None}


def remember(value) -> None:
    STATE["value"] = value


def remembered(suffix):
    value = STATE["value"]
    return (value if isinstance(value, str) else f"{len(value)} bytes") + suffix


def _blob_names(local_stack, ex) -> set[str]:
    from azure.storage.blob import ContainerClient

    client = ContainerClient.from_connection_string(  # the job's own container
        local_stack.storage_connection_string, ex._ctx.services.layout.container)
    with client:
        return {b.name for b in client.list_blobs(name_starts_with=ex.job_id + "/")}


def _job_environment(ex) -> dict[str, str]:
    job = ex._ctx.services.batch.client.get_job(ex.job_id)
    return {e.name: e.value for e in job.common_environment_settings or []}


def test_a_small_config_rides_in_the_jobs_environment(local_stack, make_batch_executor) -> None:
    ex = make_batch_executor(max_workers=2, initializer=remember, initargs=("small",))
    assert [f.result(120) for f in [ex.submit(remembered, "!"), ex.submit(remembered, "?")]] \
        == ["small!", "small?"]
    assert C.INLINE_CONFIG_ENV in _job_environment(ex)
    uploaded = {name for name in _blob_names(local_stack, ex)
                if not name.endswith(("_outputs.pickle", "_stdout.txt", "_stderr.txt"))}
    assert uploaded == {f"{ex.job_id}/{C.WORKER_SCRIPT_FILE}"}  # no config.pickle blob


def test_a_large_config_is_a_blob(local_stack, make_batch_executor) -> None:
    big = b"x" * (C.INLINE_THRESHOLD + 1)
    ex = make_batch_executor(max_workers=2, initializer=remember, initargs=(big,))
    assert ex.submit(remembered, "!").result(120) == f"{len(big)} bytes!"
    assert C.INLINE_CONFIG_ENV not in _job_environment(ex)
    assert f"{ex.job_id}/{C.GLOBAL_CONFIG_FILE}" in _blob_names(local_stack, ex)


def test_each_job_creates_its_container_then_uploads_its_worker(local_stack,
                                                                make_batch_executor) -> None:
    """A job's container is new: created at once, then the worker uploaded (two
    requests); the shared container (here a missing one) is made by the first marker."""
    first = make_batch_executor(max_workers=1, container_name="abx-fresh-container")
    assert first.request_counts()["blob.container"] == 1  # the job's own container
    assert first.request_counts()["blob.put"] == 1
    again = make_batch_executor(max_workers=1, container_name="abx-fresh-container")
    assert again.request_counts()["blob.container"] == 1
    assert again.request_counts()["blob.put"] == 1
    assert first.submit(abs, -3).result(120) == 3
