"""What the account commands (`jobs`, `status`, `logs`, `cleanup`, `pools`) share: the
account they read, and how they print.

Role: `add_options` gives a command the account options (`--batch-account-url`, ...,
`--output`); `connect` resolves them as the executor does (`config.Settings.resolve`:
the options, else the seed's variables, with Entra ID, i.e. `az login`, when no key is
given) and, when no account is configured at all, uses the newest local stack running on
this machine (`local.stack.running_stacks`), saying so in one line on stderr; with none
running it is a `CommandError` naming both fixes. `Account.call` sends one request
through the package's `RetryPolicy` (a shorter budget: a command is interactive); refused
credentials and an endpoint that does not answer become `CommandError`s naming what to
set. `emit` prints rows as an aligned table, or as JSON with `--output json` (stable
keys, times in ISO 8601 UTC, like `az`). `parse_duration` reads `--older-than`.

Imports: `config`, `cloud` (the services and what an error means), `local.stack` (the
discovery files), and `serving.CommandError`; never `azure.*` itself.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import re
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from .. import constants as C
from ..cloud.batch import BatchService
from ..cloud.codes import error_code, is_service_error, never_reached, refused_credentials
from ..cloud.retry import RequestStats, RetryPolicy
from ..cloud.storage import BlobStore
from ..config import Settings, first_line
from ..errors import ConfigurationError
from ..local.stack import running_stacks
from .serving import CommandError

PROG = "azure-batch-executor"
T = TypeVar("T")

# A command waits less than an executor for a service that does not answer.
RETRY_BUDGET = 60.0
CONNECT_BUDGET = 5.0

NO_ACCOUNT = (
    f"no Azure Batch account configured and no local stack running: set "
    f"{C.ENV_BATCH_ACCOUNT_URL} and {C.ENV_STORAGE_ACCOUNT_URL} (Entra ID: az login) or "
    f"{C.ENV_BATCH_ACCOUNT_NAME} / {C.ENV_BATCH_ACCOUNT_KEY} and "
    f"{C.ENV_STORAGE_CONNECTION_STRING} (`eval \"$({PROG} env --resource-group RG)\"` "
    f"prints them), or pass --batch-account-url ... (or run `{PROG} local` in another shell)")

# (option, setting, the variable it defaults to)
_ACCOUNT_OPTIONS = (
    ("--batch-account-url", "batch_account_url", C.ENV_BATCH_ACCOUNT_URL),
    ("--batch-account-name", "batch_account_name", C.ENV_BATCH_ACCOUNT_NAME),
    ("--batch-account-key", "batch_account_key", C.ENV_BATCH_ACCOUNT_KEY),
    ("--storage-account-url", "storage_account_url", C.ENV_STORAGE_ACCOUNT_URL),
    ("--storage-account-key", "storage_account_key", C.ENV_STORAGE_ACCOUNT_KEY),
    ("--storage-connection-string", "storage_connection_string",
     C.ENV_STORAGE_CONNECTION_STRING),
)
_SETTINGS = (*(dest for _, dest, _ in _ACCOUNT_OPTIONS), "container_name", "job_id_prefix",
             "pool_id")


def add_options(parser: argparse.ArgumentParser, *, container: bool = True,
                job_id_prefix: bool = False, output: bool = True) -> None:
    """The account options of a command (and `--container-name`, `--job-id-prefix`,
    `--output` when it has use for them)."""
    group = parser.add_argument_group(
        "account", "Resolved as the executor resolves them: these options, else the "
                   "variables named, with your `az login` (Entra ID) when no key is given. "
                   "With none configured: the newest local stack running on this machine "
                   f"(`{PROG} local`, or a LocalStack in a Python process).")
    for option, dest, variable in _ACCOUNT_OPTIONS:
        group.add_argument(option, dest=dest, metavar=dest.rsplit("_", 1)[-1].upper(),
                           help=f"default: ${variable}")
    if container:
        group.add_argument("--container-name", metavar="NAME",
                           help="the blob container of the executor's jobs (default: "
                                f"{C.DEFAULT_CONTAINER_NAME})")
    if job_id_prefix:
        parser.add_argument("--job-id-prefix", metavar="PREFIX",
                            help="the executor's job_id_prefix setting: the jobs and blob "
                                 "prefixes this package made start with PREFIX- (default: "
                                 f"{C.DEFAULT_JOB_ID_PREFIX})")
    if output:
        parser.add_argument("--output", "-o", choices=("table", "json"), default="table",
                            help="an aligned table (default) or JSON with stable keys")


def describe(text: str, *examples: str) -> str:
    """A command's description for `RawDescriptionHelpFormatter`: `text` wrapped, then its
    examples as they are typed."""
    lines = "\n".join(f"  {PROG} {e}" for e in examples)
    return f"{textwrap.fill(text, 79)}\n\nexample:\n{lines}"


def connect(args: argparse.Namespace) -> Account:
    """The account the options name, else the seed's variables, else a running local stack."""
    given = {name: getattr(args, name, None) for name in _SETTINGS}
    try:
        settings = Settings.resolve(
            argument_names={name: "--" + name.replace("_", "-") for name in _SETTINGS},
            **{k: v for k, v in given.items() if v is not None})
    except ConfigurationError as exc:
        raise CommandError(str(exc)) from None
    if not settings.local:
        return Account(settings)
    stacks = running_stacks()
    if not stacks:
        raise CommandError(NO_ACCOUNT)
    stack = stacks[0]
    note(args, f"no Azure Batch account configured: using the local stack of process "
               f"{stack['pid']} (Batch emulator {stack['batch_account_url']}, started "
               f"{stack.get('started', '?')})")
    return Account(dataclasses.replace(
        settings,
        batch_account_url=str(stack["batch_account_url"]),
        batch_account_name=str(stack["batch_account_name"]),
        batch_account_key=str(stack["batch_account_key"]),
        storage_connection_string=str(stack["storage_connection_string"])))


def note(args: argparse.Namespace, text: str) -> None:
    """One line on stderr, beside the output (which stays parseable)."""
    print(f"{PROG} {args.command}: {text}", file=sys.stderr, flush=True)


class Account:
    """One resolved account: its Batch client and blob container, built on first use, and
    `call`, one retried request whose credential or connection failure names the fix."""

    def __init__(self, settings: Settings, retry: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.stats = RequestStats()
        self.retry = retry or RetryPolicy(budget=RETRY_BUDGET, connect_budget=CONNECT_BUDGET)
        self._batch: BatchService | None = None
        self._store: BlobStore | None = None

    @property
    def batch(self) -> BatchService:
        if self._batch is None:
            self._batch = BatchService(self.settings, self.stats, self.retry)
        return self._batch

    @property
    def client(self) -> Any:
        """The SDK's `BatchClient` (what `BatchService` does not offer is read with it)."""
        return self.batch.client

    @property
    def store(self) -> BlobStore:
        if self._store is None:
            self._store = BlobStore(self.settings, self.stats, self.retry)
        return self._store

    @property
    def container(self) -> Any:
        """The SDK's container client of the settings' container: `BlobStore` lists names
        only, and the commands need sizes, times and the top-level prefixes."""
        return self.store._container

    def call(self, kind: str, fn: Callable[..., T], *a: Any, **kw: Any) -> T:
        """`fn(*a, **kw)`, retried; `kind` is ``batch.<what>`` or ``blob.<what>``. A lazy
        listing must be materialized inside `fn` (``lambda: list(...)``)."""
        with self.naming_fixes(blob=kind.startswith("blob.")):
            return self.retry.call(self.stats, kind, fn, *a, **kw)

    @contextlib.contextmanager
    def naming_fixes(self, blob: bool) -> Iterator[None]:
        """Refused credentials or no answer, in the block, as a `CommandError` naming the
        fix (`problem`); any other error unchanged."""
        try:
            yield
        except Exception as exc:
            problem = self.problem(exc, blob)
            if problem is None:
                raise
            raise problem from None

    def problem(self, exc: BaseException, blob: bool) -> CommandError | None:
        """A `CommandError` naming the fix for refused credentials or a service that does
        not answer; None for any other error."""
        s = self.settings
        if refused_credentials(exc):
            if blob:
                fix = (C.ENV_STORAGE_CONNECTION_STRING if s.storage_connection_string else
                       C.ENV_STORAGE_ACCOUNT_KEY if s.storage_account_key else
                       f"{C.ENV_STORAGE_ACCOUNT_URL} and your login (az login; the "
                       "'Storage Blob Data Contributor' role)")
            else:
                fix = (f"{C.ENV_BATCH_ACCOUNT_NAME} and {C.ENV_BATCH_ACCOUNT_KEY}"
                       if s.batch_account_key else
                       f"{C.ENV_BATCH_ACCOUNT_URL} and your login (az login), or set "
                       f"{C.ENV_BATCH_ACCOUNT_NAME} and {C.ENV_BATCH_ACCOUNT_KEY}")
            what = "storage account" if blob else "Batch account"
            code = error_code(exc) or getattr(exc, "status_code", None) or type(exc).__name__
            return CommandError(f"the {what} refused the credentials ({code}): check {fix}")
        if never_reached(exc):
            if blob:
                where = self.store.container_url.rsplit("/", 1)[0]
                fix = f"{C.ENV_STORAGE_ACCOUNT_URL} or {C.ENV_STORAGE_CONNECTION_STRING}"
            else:
                where, fix = str(s.batch_account_url), C.ENV_BATCH_ACCOUNT_URL
            return CommandError(f"no answer from {where}: check {fix} and the network "
                                f"(a local stack: is `{PROG} local` still running?)")
        return None

    def close(self) -> None:
        for side in (self._batch, self._store):
            if side is not None:
                with contextlib.suppress(Exception):  # closing is best effort
                    side.close()


@contextlib.contextmanager
def session(args: argparse.Namespace) -> Iterator[Account]:
    """`connect(args)` for the block, closed after it; any other service error the block
    raises becomes a one-line `CommandError` (never a traceback)."""
    account = connect(args)
    try:
        yield account
    except CommandError:
        raise
    except Exception as exc:
        if not is_service_error(exc):
            raise
        raise CommandError(f"the service refused a request: {first_line(exc)}") from None
    finally:
        account.close()


# ---------------------------------------------------------------------------- output
def emit(args: argparse.Namespace, value: Any, headers: Sequence[str] = (),
         rows: Sequence[Sequence[Any]] = ()) -> None:
    """`value` as JSON with ``--output json``; else the table of `headers` and `rows`."""
    if args.output == "json":
        print(json.dumps(value, indent=2))
    else:
        print(table(headers, rows))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An aligned table under its headers: numbers right-aligned, None as ``-``."""
    cells = [[cell(v) for v in row] for row in rows]
    numeric = [bool(rows) and all(isinstance(row[i], int) or row[i] is None for row in rows)
               for i in range(len(headers))]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if right else v.ljust(w)
                         for v, w, right in zip(values, widths, numeric, strict=True)).rstrip()

    return "\n".join([line(headers), *(line(r) for r in cells)])


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return str(iso(value))
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
    return str(value)


def iso(when: dt.datetime | None) -> str | None:
    """A time in ISO 8601 UTC to the second (``2025-01-31T12:00:00Z``); None stays None."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def state(value: Any) -> str:
    """An SDK enum or raw string, lowercase ('' for None)."""
    return "" if value is None else str(getattr(value, "value", value)).lower()


# ---------------------------------------------------------------------------- durations
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str, option: str = "--older-than") -> float:
    """Seconds of a duration: ``90s``, ``30m``, ``12h``, ``7d``, ``2w``, combined
    (``1d12h``), or a bare number of seconds."""
    spoken = text.strip().lower()
    try:
        seconds = float(spoken)
    except ValueError:
        parts = _DURATION.findall(spoken)
        if not parts or "".join(n + u for n, u in parts) != spoken:
            raise CommandError(f"{option} {text!r} is not a duration: use e.g. 90s, 30m, "
                               "12h, 7d or 1d12h") from None
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not seconds >= 0 or seconds == float("inf"):
        raise CommandError(f"{option} {text!r} is not a duration: use 0 or more, e.g. 7d")
    return seconds
