"""The real service spells some enums in PascalCase ('Success', 'ClientError', 'UserError')
where the SDK's case-sensitive enums expect lowercase. The executor must not care: run it
against an emulator that answers with the service's spellings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from azure_batch_executor import AzureBatchExecutor, TaskFailedError


def crash():
    os._exit(4)


def add(x, y):
    return x + y


@pytest.fixture(scope="module")
def pascal_emulator(local_stack):
    from azure_batch_executor.emulator import BatchEmulator

    emu = BatchEmulator(nodes=1, slots_per_node=2, realistic_casing=True,
                        path_prefix=(str(Path(sys.executable).parent),)).start()
    yield emu
    emu.stop()


def test_pascal_case_statuses_and_results(pascal_emulator, local_stack) -> None:
    settings = dict(batch_account_url=pascal_emulator.url,
                    batch_account_name=pascal_emulator.account_name,
                    batch_account_key=pascal_emulator.account_key,
                    storage_connection_string=local_stack.storage_connection_string,
                    python_command=sys.executable, dedicated_nodes=1, task_slots_per_node=2)
    with AzureBatchExecutor(**settings) as ex:
        ok = [ex.submit(add, i, 1) for i in range(3)]
        bad = ex.submit(crash)
        assert [f.result(60) for f in ok] == [1, 2, 3]
        exc = bad.exception(60)
        assert isinstance(exc, TaskFailedError) and exc.exit_code == 4
        # a task added twice (as a retried add would) counts as accepted: TaskExists
        job_id = ex.job_id
        body = '{"id": "task-000000", "commandLine": "true"}'
        results = ex._ctx.services.batch.add_collection(job_id, [body])
        assert results[0].accepted
