"""The executor contract (executor_contract.py) bound to ThreadPoolExecutor and to
AzureBatchExecutor on the local stack, like CPython's create_executor_tests()."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from executor_contract import (
    AsCompletedTests,
    ExecutorTests,
    InitializerTests,
    ShutdownTests,
    WaitTests,
)


class ThreadPoolBinding:
    slow = 1.0
    interpreter_exit_script = """
        from concurrent.futures import ThreadPoolExecutor
        ex = ThreadPoolExecutor(1)
        f = ex.submit(pow, 2, 5)
        f.add_done_callback(lambda f: print(f.result(), flush=True))
    """

    def make_executor(self, max_workers=None, **kwargs):
        return ThreadPoolExecutor(max_workers=max_workers, **kwargs)

    def threads_of(self, executor):
        return list(executor._threads)


class BatchBinding:
    slow = 4.0  # long enough for two tiny tasks on the local stack
    interpreter_exit_script = """
        from azure_batch_executor import AzureBatchExecutor
        ex = AzureBatchExecutor(max_workers=1)
        f = ex.submit(pow, 2, 5)
        f.add_done_callback(lambda f: print(f.result(), flush=True))
    """

    @pytest.fixture(autouse=True)
    def _stack(self, local_stack):
        self.stack = local_stack

    def make_executor(self, max_workers=None, **kwargs):
        from azure_batch_executor import AzureBatchExecutor

        return AzureBatchExecutor(max_workers=max_workers, **kwargs)

    def threads_of(self, executor):
        return [executor._manager]


class TestThreadPoolExecutor(ThreadPoolBinding, ExecutorTests):
    pass


class TestThreadPoolWait(ThreadPoolBinding, WaitTests):
    pass


class TestThreadPoolAsCompleted(ThreadPoolBinding, AsCompletedTests):
    pass


class TestThreadPoolShutdown(ThreadPoolBinding, ShutdownTests):
    pass


class TestThreadPoolInitializer(ThreadPoolBinding, InitializerTests):
    pass


class TestBatchExecutor(BatchBinding, ExecutorTests):
    pass


class TestBatchWait(BatchBinding, WaitTests):
    pass


class TestBatchAsCompleted(BatchBinding, AsCompletedTests):
    pass


class TestBatchShutdown(BatchBinding, ShutdownTests):
    pass


class TestBatchInitializer(BatchBinding, InitializerTests):
    pass
