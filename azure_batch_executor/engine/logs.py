"""Logs: what this package prints, and when.

Role: the package's logging policy, in one place.

- With no logging configured, the user sees one line per executor saying where it
  runs and, on an account, how to reattach to its job (`announce`, with the text from
  `where_it_runs`) and nothing else: Python's
  last-resort handler shows only WARNING and above, so `announce` writes its INFO
  line to stderr itself when no handler would receive it.
- With logging configured (``logging.basicConfig(level=logging.INFO)``), the
  package's lines go to the user's handlers like any library's, and the Azure
  SDK's per-request HTTP dumps (INFO on ``azure.core.pipeline.policies.
  http_logging_policy``) stay hidden: `quiet_azure_loggers` sets the ``azure``
  logger to WARNING unless the user already set its level. The package calls it
  once, when it is imported (``azure_batch_executor/__init__.py``); a level the
  user sets afterwards wins, since it replaces ours.

docs/logging.md is the user's side of this.
"""

from __future__ import annotations

import logging
import sys
from urllib.parse import urlsplit

AZURE_LOGGER = "azure"


def quiet_azure_loggers() -> None:
    """Set the ``azure`` logger to WARNING if its level is unset (NOTSET); idempotent.

    A level the user set on ``azure`` (or on one of its children, such as
    ``azure.core.pipeline.policies.http_logging_policy``) is left alone and wins.
    """
    azure = logging.getLogger(AZURE_LOGGER)
    if azure.level == logging.NOTSET:
        azure.setLevel(logging.WARNING)


def announce(logger: logging.Logger, message: str, *args: object) -> None:
    """Log `message % args` at INFO; with logging unconfigured, print it as one stderr line.

    "Unconfigured" means no handler anywhere up the logger's hierarchy
    (`Logger.hasHandlers()` is False), where Python would drop an INFO record (the root
    logger's default level is WARNING). Then a level above INFO set on the logger or a
    parent below the root (``logging.getLogger("azure_batch_executor")
    .setLevel(logging.WARNING)``), or `logging.disable`, still silences the line.
    """
    if logger.hasHandlers():
        logger.info(message, *args)
        return
    if _silenced(logger):
        return
    text = message % args if args else message
    print(text, file=sys.stderr, flush=True)


def _silenced(logger: logging.Logger) -> bool:
    """Whether the user turned INFO off for `logger` without configuring any handler."""
    if logger.manager.disable >= logging.INFO:
        return True
    node: logging.Logger | None = logger
    while node is not None and node is not logging.root:
        if node.level != logging.NOTSET:
            return node.level > logging.INFO
        node = node.parent
    return False


def where_it_runs(*, local: bool, account_url: str | None, account_name: str | None,
                  pool_id: str, job_id: str, max_workers: int) -> str:
    """The announced line: the job id, and the local stack or the account and pool; on an
    account, how another process gets the job's results if this one dies (a local stack
    ends with its process, and its jobs with it).

    Names the account, never a key: ``AzureBatchExecutor: job abx-... on Azure Batch
    account myaccount, pool mypool, max_workers=8 (if this process dies:
    AzureBatchExecutor.attach('abx-...') gets its results)``.
    """
    if local:
        where = "the local stack (no Azure Batch account configured)"
    else:
        name = account_name or (urlsplit(account_url or "").hostname or "?").split(".")[0]
        where = f"Azure Batch account {name}"
    line = f"AzureBatchExecutor: job {job_id} on {where}, pool {pool_id}, max_workers={max_workers}"
    if not local:
        line += f" (if this process dies: AzureBatchExecutor.attach({job_id!r}) gets its results)"
    return line
