"""Wrong credentials fail at construction, through the real SDKs against Azurite and the
emulator, with an error naming what to set and no key in it."""

from __future__ import annotations

import base64
import logging
import re

import pytest

from azure_batch_executor import AzureBatchExecutor
from azure_batch_executor.errors import ConfigurationError

WRONG_KEY = base64.b64encode(b"not the key" * 4).decode()


def _settings(local_stack, **override):
    settings = dict(batch_account_url=local_stack.batch_account_url,
                    batch_account_name=local_stack.batch_account_name,
                    batch_account_key=local_stack.batch_account_key,
                    storage_connection_string=local_stack.storage_connection_string)
    settings.update(override)
    return settings


def test_a_wrong_storage_key_names_the_variable(local_stack, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = re.sub(r"AccountKey=[^;]+", f"AccountKey={WRONG_KEY}",
                   local_stack.storage_connection_string)
    with pytest.raises(ConfigurationError, match="STORAGE_ACCOUNT_CONNECTION_STRING") as info:
        AzureBatchExecutor(**_settings(local_stack, storage_connection_string=wrong))
    assert "refused the credentials" in str(info.value)
    assert WRONG_KEY not in str(info.value) and WRONG_KEY not in caplog.text


def test_a_wrong_batch_key_names_the_variable(local_stack, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigurationError, match="BATCH_ACCOUNT_KEY") as info:
        AzureBatchExecutor(**_settings(local_stack, batch_account_key=WRONG_KEY))
    assert "refused the credentials" in str(info.value)
    assert WRONG_KEY not in str(info.value) and WRONG_KEY not in caplog.text
