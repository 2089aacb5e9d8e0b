"""Azure settings from the `az` CLI: the `azure-batch-executor env` command.

Role: find the Batch and Storage accounts of a resource group with the Azure
CLI and print the `export` lines of the settings the executor reads
(`BATCH_ACCOUNT_NAME`, `BATCH_ACCOUNT_URL`, `BATCH_ACCOUNT_KEY`,
`STORAGE_ACCOUNT_KEY`, `STORAGE_ACCOUNT_CONNECTION_STRING`; with `--no-keys`,
`BATCH_ACCOUNT_URL` and `STORAGE_ACCOUNT_URL` for Entra ID), so that

    eval "$(azure-batch-executor env --resource-group NAME)"

configures a shell. `az` is run as a subprocess with `--output json`.

Secrets: account keys go to stdout as export lines and nowhere else: never
into logs, exception messages or stderr. Error messages quote `az`'s stderr,
never its stdout.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

INSTALL_URL = "https://learn.microsoft.com/cli/azure/install-azure-cli"
AZ_TIMEOUT_S = 120.0
_KEY_VARIABLES = (
    "BATCH_ACCOUNT_NAME",
    "BATCH_ACCOUNT_KEY",
    "STORAGE_ACCOUNT_KEY",
    "STORAGE_ACCOUNT_CONNECTION_STRING",
)


class AzureSetupError(RuntimeError):
    """The `az` CLI could not provide the settings; the message names the fix."""


@dataclass(frozen=True)
class AzureSettings:
    """What `gather` found: the accounts it chose and the settings to export."""

    batch_account: str
    storage_account: str
    storage_resource_group: str
    variables: dict[str, str]

    def __repr__(self) -> str:  # the variables hold keys: never print them by accident
        return (
            f"AzureSettings(batch_account={self.batch_account!r}, "
            f"storage_account={self.storage_account!r}, variables=<{len(self.variables)} hidden>)"
        )


@dataclass(frozen=True)
class _Account:
    name: str
    resource_group: str
    raw: dict[str, Any]


def find_az() -> str:
    """The path of the `az` executable on PATH."""
    path = shutil.which("az")
    if path is None:
        raise AzureSetupError(
            "the Azure CLI (`az`) was not found on PATH; install it "
            f"({INSTALL_URL}), then sign in with `az login`"
        )
    return path


def run_az(az: str, *args: str) -> Any:
    """Run `az ARGS --output json` and return its parsed JSON output."""
    command = ["az", *args]
    shown = shlex.join(command)
    try:
        done = subprocess.run(
            [az, *args, "--output", "json", "--only-show-errors"],
            capture_output=True,
            text=True,
            timeout=AZ_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AzureSetupError(
            f"`{shown}` did not answer within {AZ_TIMEOUT_S:.0f} s; check the network, "
            "then run it by hand to see what it waits for (a device login?)"
        ) from None
    except OSError as exc:
        raise AzureSetupError(
            f"`{shown}` could not start ({exc.strerror}); reinstall the Azure CLI ({INSTALL_URL})"
        ) from None
    if done.returncode != 0:
        raise AzureSetupError(
            f"`{shown}` failed (exit code {done.returncode}): {_first_error(done.stderr)}\n"
            "Sign in with `az login` (and pick the subscription with "
            "`az account set --subscription ID`); check the names with `az group list -o table`."
        )
    try:
        return json.loads(done.stdout or "null")
    except json.JSONDecodeError:
        raise AzureSetupError(
            f"`{shown}` printed output that is not JSON; update the Azure CLI with `az upgrade`"
        ) from None


def _first_error(stderr: str) -> str:
    """The line of az's stderr that says what went wrong (its first ERROR line, else the first)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.upper().startswith("ERROR"):
            return line
    return lines[0] if lines else "(no error output)"


def _accounts(listing: Any, resource_group: str) -> list[_Account]:
    if not isinstance(listing, list):
        return []
    return [
        _Account(str(item["name"]), resource_group, item)
        for item in listing
        if isinstance(item, dict) and item.get("name")
    ]


def _choose(
    kind: str, option: str, accounts: list[_Account], wanted: str | None, group: str, create: str
) -> _Account:
    """The account named by `wanted`, else the only one; errors list the candidates."""
    names = ", ".join(a.name for a in accounts)
    if wanted is not None:
        for account in accounts:
            if account.name == wanted:
                return account
        found = f"it has: {names}" if accounts else "it has none"
        raise AzureSetupError(
            f"no {kind} named {wanted!r} in resource group {group!r} ({found}); "
            f"pass one of them with {option}"
        )
    if len(accounts) == 1:
        return accounts[0]
    if not accounts:
        raise AzureSetupError(
            f"resource group {group!r} has no {kind}; create one with `{create}` "
            "(see docs/azure-setup.md)"
        )
    raise AzureSetupError(
        f"resource group {group!r} has {len(accounts)} {kind}s: {names}; "
        f"choose one with {option} NAME"
    )


def _linked_storage(batch: _Account) -> tuple[str, str] | None:
    """(name, resource group) of the Batch account's auto-storage account, if it has one."""
    auto = batch.raw.get("autoStorage") or {}
    resource_id = auto.get("storageAccountId") if isinstance(auto, dict) else None
    if not isinstance(resource_id, str):
        return None
    parts = resource_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    try:
        group = parts[lowered.index("resourcegroups") + 1]
        name = parts[lowered.index("storageaccounts") + 1]
    except (ValueError, IndexError):
        return None
    return name, group


def _pick_storage(az: str, group: str, batch: _Account, wanted: str | None) -> _Account:
    accounts = _accounts(run_az(az, "storage", "account", "list", "-g", group), group)
    linked = _linked_storage(batch)
    if wanted is None and linked is not None:
        for account in accounts:
            if account.name == linked[0]:
                return account
        if not accounts:  # linked from another resource group
            shown = run_az(az, "storage", "account", "show", "-n", linked[0], "-g", linked[1])
            return _Account(linked[0], linked[1], shown if isinstance(shown, dict) else {})
    create = f"az storage account create -n NAME -g {group}"
    return _choose("storage account", "--storage-account", accounts, wanted, group, create)


def _string(value: Any, what: str, command: str) -> str:
    if not isinstance(value, str) or not value:
        raise AzureSetupError(
            f"`{command}` did not return {what}; update the Azure CLI with `az upgrade`"
        )
    return value


def gather(
    resource_group: str,
    batch_account: str | None = None,
    storage_account: str | None = None,
    *,
    keys: bool = True,
    az: str | None = None,
) -> AzureSettings:
    """The settings (env var name -> value) of the accounts in `resource_group`.

    With `keys`, the shared-key settings; without, only the account URLs
    (Entra ID: `az login`, managed identity).
    """
    az = az or find_az()
    group = resource_group
    batches = _accounts(run_az(az, "batch", "account", "list", "-g", group), group)
    create = f"az batch account create -n NAME -g {group} -l LOCATION --storage-account STORAGE"
    batch = _choose("Batch account", "--batch-account", batches, batch_account, group, create)
    endpoint = _string(
        batch.raw.get("accountEndpoint"), "an accountEndpoint", "az batch account list"
    )
    storage = _pick_storage(az, group, batch, storage_account)
    batch_url = endpoint if endpoint.startswith("https://") else f"https://{endpoint}"
    found = (batch.name, storage.name, storage.resource_group)
    if not keys:
        blob = (storage.raw.get("primaryEndpoints") or {}).get("blob")
        blob = blob or f"https://{storage.name}.blob.core.windows.net"
        urls = {"BATCH_ACCOUNT_URL": batch_url, "STORAGE_ACCOUNT_URL": str(blob).rstrip("/")}
        return AzureSettings(*found, urls)

    named = ("-n", batch.name, "-g", batch.resource_group)
    batch_keys = run_az(az, "batch", "account", "keys", "list", *named)
    batch_key = _string(
        batch_keys.get("primary") if isinstance(batch_keys, dict) else None,
        "a primary key", "az batch account keys list",
    )
    named = ("-n", storage.name, "-g", storage.resource_group)
    storage_keys = run_az(az, "storage", "account", "keys", "list", *named)
    first = storage_keys[0] if isinstance(storage_keys, list) and storage_keys else {}
    storage_key = _string(
        first.get("value") if isinstance(first, dict) else None,
        "a key", "az storage account keys list",
    )
    shown = run_az(az, "storage", "account", "show-connection-string", *named)
    connection = _string(
        shown.get("connectionString") if isinstance(shown, dict) else None,
        "a connectionString", "az storage account show-connection-string",
    )
    return AzureSettings(
        *found,
        {
            "BATCH_ACCOUNT_NAME": batch.name,
            "BATCH_ACCOUNT_URL": batch_url,
            "BATCH_ACCOUNT_KEY": batch_key,
            "STORAGE_ACCOUNT_KEY": storage_key,
            "STORAGE_ACCOUNT_CONNECTION_STRING": connection,
        },
    )


def export_lines(settings: dict[str, str]) -> list[str]:
    """`export NAME=VALUE` lines, values shell-quoted."""
    return [f"export {name}={shlex.quote(value)}" for name, value in settings.items()]


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `env` on the CLI's subparsers; `run` is its handler."""
    parser = subparsers.add_parser(
        "env",
        help="print `export` lines for the Azure accounts of a resource group (uses `az`)",
        description=(
            "Find the Batch and Storage accounts of a resource group with the Azure CLI and print "
            "the export lines of the settings the executor reads. Use it as: "
            'eval "$(azure-batch-executor env --resource-group NAME)"'
        ),
    )
    parser.add_argument("--resource-group", "-g", required=True, metavar="NAME")
    parser.add_argument(
        "--batch-account", metavar="NAME", help="needed when the group has several"
    )
    parser.add_argument(
        "--storage-account",
        metavar="NAME",
        help="needed when the group has several and none is linked to the Batch account",
    )
    parser.add_argument(
        "--no-keys",
        action="store_true",
        help="print only BATCH_ACCOUNT_URL and STORAGE_ACCOUNT_URL, for Entra ID (az login)",
    )
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the export lines; 0 on success, 1 with the reason on stderr."""
    try:
        found = gather(
            args.resource_group,
            args.batch_account,
            args.storage_account,
            keys=not args.no_keys,
        )
    except AzureSetupError as exc:
        print(f"azure-batch-executor env: error: {exc}", file=sys.stderr)
        return 1
    print(
        f"# Batch account {found.batch_account}, storage account {found.storage_account} "
        f"(resource group {found.storage_resource_group}).",
        file=sys.stderr,
    )
    if args.no_keys:
        print(f"unset {' '.join(_KEY_VARIABLES)}")
    for line in export_lines(found.variables):
        print(line)
    return 0
