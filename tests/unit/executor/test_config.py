"""Settings resolution, half configurations, and secrets kept out of reprs and messages."""

from __future__ import annotations

import base64
import logging

import pytest

from azure_batch_executor import AzureBatchExecutor, ConfigurationError
from azure_batch_executor.config import Settings, iso_duration, mask_secrets

KEY = base64.b64encode(b"a-very-secret-batch-key").decode()
SKEY = base64.b64encode(b"a-very-secret-storage-key").decode()
CONN = (f"DefaultEndpointsProtocol=https;AccountName=st;AccountKey={SKEY};"
        "EndpointSuffix=core.windows.net")
URL = "https://acct.westeurope.batch.azure.com"
FULL = {
    "BATCH_ACCOUNT_URL": URL,
    "BATCH_ACCOUNT_NAME": "acct",
    "BATCH_ACCOUNT_KEY": KEY,
    "STORAGE_ACCOUNT_CONNECTION_STRING": CONN,
}


def test_nothing_configured_means_local() -> None:
    s = Settings.resolve(env={})
    assert s.local
    assert s.batch_account_url is None


def test_env_is_read_and_kwargs_win() -> None:
    s = Settings.resolve(env=FULL)
    assert not s.local and s.batch_account_url == URL and s.batch_account_key == KEY
    s2 = Settings.resolve(env=FULL, batch_account_url="https://other.batch.azure.com")
    assert s2.batch_account_url == "https://other.batch.azure.com"


def test_entra_id_needs_only_urls() -> None:
    s = Settings.resolve(env={"BATCH_ACCOUNT_URL": URL,
                              "STORAGE_ACCOUNT_URL": "https://st.blob.core.windows.net"})
    assert s.batch_account_key is None and s.storage_account_name == "st"


def test_unknown_setting_is_a_type_error_naming_the_valid_ones() -> None:
    with pytest.raises(TypeError, match=r"pool_idd.*valid settings are: .*pool_id"):
        Settings.resolve(env={}, pool_idd="x")
    with pytest.raises(TypeError, match="pool_idd"):
        AzureBatchExecutor(pool_idd="x")


def test_max_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        AzureBatchExecutor(max_workers=0)
    with pytest.raises(ValueError):
        AzureBatchExecutor(max_workers=-1)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"BATCH_ACCOUNT_URL": URL}, ["STORAGE_ACCOUNT_URL", "STORAGE_ACCOUNT_CONNECTION_STRING"]),
        ({"STORAGE_ACCOUNT_CONNECTION_STRING": CONN}, ["BATCH_ACCOUNT_URL"]),
        ({"BATCH_ACCOUNT_NAME": "acct", "BATCH_ACCOUNT_KEY": KEY}, ["BATCH_ACCOUNT_URL"]),
        ({**FULL, "BATCH_ACCOUNT_KEY": ""}, ["BATCH_ACCOUNT_KEY"]),
        ({**FULL, "BATCH_ACCOUNT_NAME": ""}, ["BATCH_ACCOUNT_NAME"]),
        ({"BATCH_ACCOUNT_URL": URL, "STORAGE_ACCOUNT_KEY": SKEY}, ["STORAGE_ACCOUNT_URL"]),
        ({**FULL, "BATCH_ACCOUNT_KEY": "not base64!"}, ["BATCH_ACCOUNT_KEY"]),
        ({**FULL, "STORAGE_ACCOUNT_CONNECTION_STRING": "garbage"},
         ["STORAGE_ACCOUNT_CONNECTION_STRING"]),
    ],
    ids=["batch-without-storage", "storage-without-batch", "key-without-url",
         "name-without-key", "key-without-name", "storage-key-without-url", "bad-key",
         "bad-connection-string"],
)
def test_half_configuration_names_what_is_missing(env: dict, names: list[str]) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.resolve(env=env)
    message = str(info.value)
    assert any(name in message for name in names), message
    assert isinstance(info.value, ValueError)
    assert KEY not in message and SKEY not in message and "not base64!" not in message


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"pool_id": "bad id"}, "pool_id"),
        ({"container_name": "Bad_Name"}, "container_name"),
        ({"job_id_prefix": "x" * 40}, "job_id_prefix"),
        ({"dedicated_nodes": -1}, "dedicated_nodes"),
        ({"dedicated_nodes": 0, "spot_nodes": 0}, "needs a node"),
        ({"task_slots_per_node": 0}, "task_slots_per_node"),
        ({"max_task_retries": -2}, "max_task_retries"),
        ({"task_timeout": 0}, "task_timeout"),
        ({"poll_interval": -1.0}, "poll_interval"),
    ],
)
def test_bad_pool_settings(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ConfigurationError, match=pattern):
        Settings.resolve(env={}, **kwargs)


def test_repr_masks_secrets() -> None:
    s = Settings.resolve(env=FULL)
    text = repr(s) + str(s)
    assert KEY not in text and SKEY not in text and CONN not in text
    assert "***" in text and URL in text


def test_mask_secrets_removes_sas_and_keys() -> None:
    s = Settings.resolve(env=FULL)
    text = (f"GET https://st.blob.core.windows.net/c/b?sv=2024&sp=r&sig=abc%2Fdef%3D&se=x "
            f"key={KEY} {CONN}")
    masked = mask_secrets(text, s)
    assert "abc%2Fdef" not in masked and KEY not in masked and SKEY not in masked
    assert "sig=***" in masked


def test_local_stack_fills_in_and_sizes_the_pool() -> None:
    s = Settings.resolve(env={}).with_local_stack(
        batch_account_url="http://127.0.0.1:1", batch_account_name="dev", batch_account_key=KEY,
        storage_connection_string=CONN, nodes=3, slots_per_node=2)
    assert s.pool_nodes == (3, 0) and s.slots_per_node == 2
    assert s.command  # the client's own interpreter


def test_iso_duration() -> None:
    assert iso_duration(90) == "PT1M30S"
    assert iso_duration(0.5) == "PT0.5S"
    assert iso_duration(86400 + 3600) == "P1DT1H"
    assert iso_duration(5) == "PT5S"


def test_construction_with_wrong_batch_credentials_names_the_variable(
    fakes, make_executor, monkeypatch, caplog
) -> None:
    from azure.core.exceptions import HttpResponseError
    from support.batch_sdk_fake import FakeBatchClient, http_error

    def refuse(self, pool_id, select=None):
        raise http_error(HttpResponseError, 403, "AuthenticationFailed")

    monkeypatch.setattr(FakeBatchClient, "get_pool", refuse)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigurationError, match="BATCH_ACCOUNT_KEY") as info:
        make_executor()
    assert KEY not in str(info.value)
    assert "batch-secret" not in caplog.text
