"""_logs: the one announced line, and the Azure SDK loggers kept at WARNING unless set."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from azure_batch_executor.engine.logs import announce, quiet_azure_loggers, where_it_runs


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _detached(name: str = "abx.test") -> logging.Logger:
    """A logger outside the global hierarchy: no parent, so no pytest handler above it."""
    return logging.Logger(name)


@pytest.fixture
def azure_logger() -> Iterator[logging.Logger]:
    """The real ``azure`` logger, its level unset for the test and restored after it."""
    azure = logging.getLogger("azure")
    saved = azure.level
    azure.setLevel(logging.NOTSET)
    yield azure
    azure.setLevel(saved)


def test_announce_prints_one_stderr_line_when_logging_is_unconfigured(capsys) -> None:
    announce(_detached(), "job %s on %s", "j1", "the local stack")
    captured = capsys.readouterr()
    assert captured.err == "job j1 on the local stack\n"
    assert captured.out == ""


def test_announce_prints_despite_the_root_default_warning_level(capsys) -> None:
    """The real case: a package logger under a root with no handler, at WARNING."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers[:] = []
    root.setLevel(logging.WARNING)
    try:
        announce(logging.getLogger("azure_batch_executor.test_logs"), "job %s", "j1")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert capsys.readouterr().err == "job j1\n"


def test_announce_logs_at_info_when_a_handler_is_configured(capsys) -> None:
    logger, handler = _detached(), ListHandler()
    logger.addHandler(handler)
    announce(logger, "job %s on %s", "j1", "the local stack")
    assert [(r.levelno, r.getMessage()) for r in handler.records] == [
        (logging.INFO, "job j1 on the local stack")]
    assert capsys.readouterr().err == ""


def test_announce_keeps_a_level_above_info_with_or_without_handlers(capsys) -> None:
    bare, handled, handler = _detached(), _detached(), ListHandler()
    handled.addHandler(handler)
    for logger in (bare, handled):
        logger.setLevel(logging.WARNING)
        announce(logger, "job %s", "j1")
    assert handler.records == []
    assert capsys.readouterr().err == ""


def test_announce_is_silenced_by_logging_disable(capsys) -> None:
    logging.disable(logging.INFO)
    try:
        announce(_detached(), "job %s", "j1")
    finally:
        logging.disable(logging.NOTSET)
    assert capsys.readouterr().err == ""


def test_announce_prints_a_message_without_args_as_it_is(capsys) -> None:
    announce(_detached(), "100% on the local stack")
    assert capsys.readouterr().err == "100% on the local stack\n"


def test_quiet_azure_loggers_sets_warning_when_unset(azure_logger: logging.Logger) -> None:
    quiet_azure_loggers()
    quiet_azure_loggers()  # idempotent
    assert azure_logger.level == logging.WARNING
    http = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    if http.level == logging.NOTSET:  # the SDK's request dumps (INFO) inherit WARNING
        assert not http.isEnabledFor(logging.INFO)


def test_quiet_azure_loggers_keeps_the_level_the_user_set(azure_logger: logging.Logger) -> None:
    azure_logger.setLevel(logging.INFO)
    quiet_azure_loggers()
    assert azure_logger.level == logging.INFO


def test_where_it_runs_on_the_local_stack_names_the_job_and_pool() -> None:
    line = where_it_runs(local=True, account_url="http://127.0.0.1:1234",
                         account_name="emulator", pool_id="p1", job_id="abx-1", max_workers=4)
    assert line == ("AzureBatchExecutor: job abx-1 on the local stack (no Azure Batch account "
                    "configured), pool p1, max_workers=4")


def test_where_it_runs_on_azure_names_the_account_pool_and_job() -> None:
    named = where_it_runs(local=False, account_url="https://acct.westeurope.batch.azure.com",
                          account_name="acct", pool_id="p1", job_id="abx-1", max_workers=8)
    assert named == ("AzureBatchExecutor: job abx-1 on Azure Batch account acct, pool p1, "
                     "max_workers=8 (if this process dies: AzureBatchExecutor.attach('abx-1') "
                     "gets its results)")
    from_url = where_it_runs(local=False, account_url="https://other.westeurope.batch.azure.com",
                             account_name=None, pool_id="p1", job_id="abx-1", max_workers=8)
    assert "Azure Batch account other, pool p1" in from_url
