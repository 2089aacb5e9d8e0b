"""Least privilege in task definitions (docs/security.md): what each SAS may do, on what,
until when; and the pool identity route, with no SAS in a task definition at all."""

from __future__ import annotations

import base64
import datetime as dt
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from azure_batch_executor import constants as C
from azure_batch_executor.cloud.retry import RequestStats, RetryPolicy
from azure_batch_executor.cloud.storage import BlobStore
from azure_batch_executor.cloud.taskdef import TaskFactory, resource_file
from azure_batch_executor.config import Settings
from azure_batch_executor.errors import ConfigurationError

KEY = base64.b64encode(b"k" * 64).decode()
IDENTITY = ("/subscriptions/0000/resourceGroups/rg/providers/"
            "Microsoft.ManagedIdentity/userAssignedIdentities/abx-nodes")


def _store(**kw) -> BlobStore:
    settings = Settings.resolve(env={}, batch_account_url="https://b.westeurope.batch.azure.com",
                                batch_account_name="b", batch_account_key=KEY,
                                storage_account_url="https://acct.blob.core.windows.net",
                                storage_account_key=KEY, container_name="abx", **kw)
    store = BlobStore(settings, RequestStats(), RetryPolicy())
    store.sign()
    return store


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _expiry(query: dict[str, str]) -> dt.datetime:
    return dt.datetime.strptime(query["se"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=dt.timezone.utc)


def test_a_resource_file_gets_a_read_only_sas_for_its_blob_alone() -> None:
    url = _store().read_url("job-1/iter_3_inputs.pickle")
    assert url.startswith("https://acct.blob.core.windows.net/abx/job-1/iter_3_inputs.pickle?")
    q = _query(url)
    assert (q["sr"], q["sp"]) == ("b", "r")  # one blob, read only
    assert q["sig"]


def test_output_files_get_create_and_write_only() -> None:
    q = _query(_store().output_container_url())
    assert (q["sr"], q["sp"]) == ("c", "cw")  # no read, list or delete


def test_every_sas_expires_with_the_job_plus_the_margin() -> None:
    store = _store(job_max_wall_clock=2 * 3600)
    now = dt.datetime.now(dt.timezone.utc)
    for url in (store.read_url("a"), store.download_url("b"), store.output_container_url()):
        lifetime = (_expiry(_query(url)) - now).total_seconds()
        assert abs(lifetime - (2 * 3600 + C.SAS_EXPIRY_MARGIN)) < 120, url


def test_the_default_job_wall_clock_stays_inside_the_delegation_key_limit() -> None:
    q = _query(_store().read_url("a"))
    lifetime = _expiry(q) - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(days=C.JOB_MAX_WALL_CLOCK_DAYS) < lifetime < dt.timedelta(
        days=C.SAS_MAX_DAYS)


@pytest.mark.parametrize("value", [0, 30, 7 * 86400, True, "1h"])
def test_a_job_wall_clock_the_sas_cannot_cover_is_refused(value) -> None:
    with pytest.raises(ConfigurationError, match="job_max_wall_clock"):
        Settings.resolve(env={}, job_max_wall_clock=value)


def test_with_a_pool_identity_task_definitions_carry_no_sas() -> None:
    store = _store(pool_identity=IDENTITY)
    settings = Settings.resolve(env={}, python_command="python3", pool_identity=IDENTITY)
    factory = TaskFactory(settings, [(store.read_url("job/abx_worker.py"), "abx_worker.py")],
                          store.output_container_url())
    text = factory.body("task-0", [(store.read_url("job/iter_0_inputs.pickle"), "in")],
                        [("outputs.pickle", "job/iter_0_outputs.pickle")])
    assert "sig=" not in text
    body = json.loads(text)
    reference = {"resourceId": IDENTITY}
    assert [r["identityReference"] for r in body["resourceFiles"]] == [reference] * 2
    assert body["outputFiles"][0]["destination"]["container"]["identityReference"] == reference
    assert resource_file("https://u", "f", IDENTITY)["identityReference"] == reference
    # what the worker downloads itself (a large argument) is still signed, read only
    q = _query(store.download_url("job/shared_ab.pickle"))
    assert (q["sr"], q["sp"]) == ("b", "r")


def test_without_a_pool_identity_no_identity_is_named() -> None:
    settings = Settings.resolve(env={}, python_command="python3")
    text = TaskFactory(settings, [("https://w?sig=x", "w")], "https://c?sig=y").body(
        "t", [], [("o", "b")])
    assert "identityReference" not in text
    assert resource_file("https://u", "f") == {"httpUrl": "https://u", "filePath": "f"}


def test_a_pool_identity_must_be_a_resource_id() -> None:
    with pytest.raises(ConfigurationError, match="pool_identity"):
        Settings.resolve(env={}, pool_identity="abx-nodes")
