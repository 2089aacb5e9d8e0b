"""`azure-batch-executor env`: export lines from a FAKE `az` first on PATH."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from azure_batch_executor.cli import env as azure_setup
from azure_batch_executor.cli.env import AzureSetupError

RG = "abx-rg"
BATCH_KEY = "QkFUQ0hLRVktc2VjcmV0LTAwMDE+Lw=="
STORAGE_KEY = "U1RPUkFHRUtFWS1zZWNyZXQtMDAwMg=="
CONNECTION = (
    "DefaultEndpointsProtocol=https;AccountName=abxstore;"
    f"AccountKey={STORAGE_KEY};EndpointSuffix=core.windows.net"
)
SECRETS = (BATCH_KEY, STORAGE_KEY, "QkFUQ0hLRVk", "U1RPUkFHRUtFWS")

FAKE_AZ = """\
#!{python}
import json, pathlib, sys
here = pathlib.Path(__file__).parent
argv = sys.argv[1:]
if argv[-3:] != ["--output", "json", "--only-show-errors"]:
    sys.stderr.write("ERROR: the fake az wants --output json --only-show-errors last\\n")
    sys.exit(3)
key = " ".join(argv[:-3])
with open(here / "calls.log", "a") as log:
    log.write(key + "\\n")
table = json.loads((here / "responses.json").read_text())
if key not in table:
    sys.stderr.write("ERROR: the fake az has no answer for: " + key + "\\n")
    sys.exit(2)
answer = table[key]
if "raw" in answer:
    sys.stdout.write(answer["raw"])
elif "json" in answer:
    sys.stdout.write(json.dumps(answer["json"]))
sys.stderr.write(answer.get("stderr", ""))
sys.exit(answer.get("rc", 0))
"""


def _batch(name: str, storage: str | None = "abxstore", group: str = RG) -> dict[str, Any]:
    account: dict[str, Any] = {
        "name": name,
        "accountEndpoint": f"{name}.westeurope.batch.azure.com",
        "location": "westeurope",
        "autoStorage": None,
    }
    if storage:
        account["autoStorage"] = {
            "storageAccountId": f"/subscriptions/0000/resourceGroups/{group}/providers/"
            f"Microsoft.Storage/storageAccounts/{storage}"
        }
    return account


def _storage(name: str) -> dict[str, Any]:
    return {"name": name, "primaryEndpoints": {"blob": f"https://{name}.blob.core.windows.net/"}}


def _responses(
    batches: list[dict[str, Any]] | None = None, storages: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    table: dict[str, Any] = {
        f"batch account list -g {RG}": {"json": batches or [_batch("abxbatch")]},
        f"storage account list -g {RG}": {"json": storages or [_storage("abxstore")]},
        f"storage account keys list -n abxstore -g {RG}": {
            "json": [
                {"keyName": "key1", "permissions": "FULL", "value": STORAGE_KEY},
                {"keyName": "key2", "permissions": "FULL", "value": "b3RoZXI="},
            ]
        },
        f"storage account show-connection-string -n abxstore -g {RG}": {
            "json": {"connectionString": CONNECTION}
        },
    }
    for batch in batches or [_batch("abxbatch")]:
        table[f"batch account keys list -n {batch['name']} -g {RG}"] = {
            "json": {"accountName": batch["name"], "primary": BATCH_KEY, "secondary": "c2Vj"}
        }
    return table


@pytest.fixture
def fake_az(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Install a fake `az` first on PATH; returns (set responses, read calls)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(FAKE_AZ.format(python=sys.executable))
    az.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")

    class Fake:
        def answer(self, table: dict[str, Any]) -> None:
            (bin_dir / "responses.json").write_text(json.dumps(table))

        def calls(self) -> list[str]:
            log = bin_dir / "calls.log"
            return log.read_text().splitlines() if log.exists() else []

    fake = Fake()
    fake.answer(_responses())
    return fake


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="azure-batch-executor")
    azure_setup.add_parser(parser.add_subparsers())
    args = parser.parse_args(["env", *argv])
    return int(args.handler(args))


def _assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_prints_export_lines(fake_az, capsys) -> None:
    assert _run(["--resource-group", RG]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "export BATCH_ACCOUNT_NAME=abxbatch",
        "export BATCH_ACCOUNT_URL=https://abxbatch.westeurope.batch.azure.com",
        f"export BATCH_ACCOUNT_KEY={BATCH_KEY}",
        f"export STORAGE_ACCOUNT_KEY={STORAGE_KEY}",
        f"export STORAGE_ACCOUNT_CONNECTION_STRING='{CONNECTION}'",
    ]
    assert "abxbatch" in captured.err and "abxstore" in captured.err
    _assert_no_secret(captured.err)
    # eval'd by a shell, the lines give back the exact values
    shell = subprocess.run(
        ["sh", "-c", captured.out + 'printf "%s\\n" "$BATCH_ACCOUNT_KEY" '
         '"$STORAGE_ACCOUNT_CONNECTION_STRING"'],
        capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]},
    )
    assert shell.stdout.splitlines() == [BATCH_KEY, CONNECTION]


def test_no_keys_prints_urls_only(fake_az, capsys) -> None:
    assert _run(["-g", RG, "--no-keys"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "unset BATCH_ACCOUNT_NAME BATCH_ACCOUNT_KEY STORAGE_ACCOUNT_KEY "
        "STORAGE_ACCOUNT_CONNECTION_STRING",
        "export BATCH_ACCOUNT_URL=https://abxbatch.westeurope.batch.azure.com",
        "export STORAGE_ACCOUNT_URL=https://abxstore.blob.core.windows.net",
    ]
    assert not any("keys" in call or "connection" in call for call in fake_az.calls())


def test_missing_az_names_install_link_and_login(tmp_path: Path, monkeypatch, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(AzureSetupError) as caught:
        azure_setup.gather(RG)
    message = str(caught.value)
    assert "https://learn.microsoft.com/cli/azure/install-azure-cli" in message
    assert "az login" in message
    assert _run(["-g", RG]) == 1
    captured = capsys.readouterr()
    assert "install-azure-cli" in captured.err and captured.out == ""


def test_az_failure_includes_its_stderr(fake_az, capsys) -> None:
    fake_az.answer(
        {
            f"batch account list -g {RG}": {
                "rc": 3,
                "stderr": "WARNING: something chatty\n"
                f"ERROR: (ResourceGroupNotFound) Resource group '{RG}' could not be found.\n"
                "Code: ResourceGroupNotFound\n",
            }
        }
    )
    with pytest.raises(AzureSetupError) as caught:
        azure_setup.gather(RG)
    message = str(caught.value)
    assert f"ERROR: (ResourceGroupNotFound) Resource group '{RG}' could not be found." in message
    assert f"`az batch account list -g {RG}` failed (exit code 3)" in message
    assert "az login" in message
    assert _run(["-g", RG]) == 1
    assert "ResourceGroupNotFound" in capsys.readouterr().err


def test_not_logged_in(fake_az) -> None:
    fake_az.answer(
        {
            f"batch account list -g {RG}": {
                "rc": 1,
                "stderr": "Please run 'az login' to setup account.\n",
            }
        }
    )
    with pytest.raises(AzureSetupError, match="Please run 'az login' to setup account"):
        azure_setup.gather(RG)


def test_two_batch_accounts_need_the_option(fake_az, capsys) -> None:
    fake_az.answer(_responses(batches=[_batch("first"), _batch("second")]))
    with pytest.raises(AzureSetupError) as caught:
        azure_setup.gather(RG)
    message = str(caught.value)
    assert "first" in message and "second" in message and "--batch-account" in message
    assert _run(["-g", RG, "--batch-account", "second"]) == 0
    out = capsys.readouterr().out
    assert "export BATCH_ACCOUNT_NAME=second" in out
    assert "export BATCH_ACCOUNT_URL=https://second.westeurope.batch.azure.com" in out
    with pytest.raises(AzureSetupError, match=r"\(it has: first, second\); pass one of them"):
        azure_setup.gather(RG, batch_account="third")


def test_no_batch_account_says_how_to_create_one(fake_az) -> None:
    fake_az.answer({f"batch account list -g {RG}": {"json": []}})
    with pytest.raises(AzureSetupError, match="az batch account create"):
        azure_setup.gather(RG)


def test_storage_account_linked_to_batch_wins(fake_az) -> None:
    fake_az.answer(_responses(storages=[_storage("other"), _storage("abxstore")]))
    found = azure_setup.gather(RG)
    assert found.storage_account == "abxstore"
    assert found.variables["STORAGE_ACCOUNT_CONNECTION_STRING"] == CONNECTION


def test_several_unlinked_storage_accounts_need_the_option(fake_az) -> None:
    fake_az.answer(
        _responses(batches=[_batch("abxbatch", storage=None)],
                   storages=[_storage("other"), _storage("abxstore")])
    )
    with pytest.raises(AzureSetupError) as caught:
        azure_setup.gather(RG)
    assert "other, abxstore" in str(caught.value) and "--storage-account" in str(caught.value)
    assert azure_setup.gather(RG, storage_account="abxstore").storage_account == "abxstore"


def test_no_key_text_in_messages(fake_az, capsys) -> None:
    """A failure after the keys were read, and az output that is not JSON: no key in the text."""
    table = _responses()
    table[f"storage account show-connection-string -n abxstore -g {RG}"] = {
        "rc": 1, "stderr": "ERROR: (AuthorizationFailed) no listKeys permission\n"
    }
    fake_az.answer(table)
    with pytest.raises(AzureSetupError) as caught:
        azure_setup.gather(RG)
    assert "AuthorizationFailed" in str(caught.value)
    _assert_no_secret(str(caught.value))
    assert _run(["-g", RG]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    _assert_no_secret(captured.err)

    table[f"storage account show-connection-string -n abxstore -g {RG}"] = {
        "raw": f"AccountKey={STORAGE_KEY} not json"
    }
    fake_az.answer(table)
    with pytest.raises(AzureSetupError, match="not JSON") as caught:
        azure_setup.gather(RG)
    _assert_no_secret(str(caught.value))

    fake_az.answer(_responses())
    found = azure_setup.gather(RG)
    _assert_no_secret(repr(found))
    _assert_no_secret(str(found))


def test_linked_storage_in_another_resource_group(fake_az) -> None:
    table = _responses(batches=[_batch("abxbatch", group="shared-rg")], storages=[])
    table[f"storage account list -g {RG}"] = {"json": []}
    table["storage account show -n abxstore -g shared-rg"] = {"json": _storage("abxstore")}
    for command in ("keys list", "show-connection-string"):
        answer = table.pop(f"storage account {command} -n abxstore -g {RG}")
        table[f"storage account {command} -n abxstore -g shared-rg"] = answer
    fake_az.answer(table)
    found = azure_setup.gather(RG)
    assert (found.storage_account, found.storage_resource_group) == ("abxstore", "shared-rg")
    assert found.variables["STORAGE_ACCOUNT_KEY"] == STORAGE_KEY
    assert "storage account show -n abxstore -g shared-rg" in fake_az.calls()
