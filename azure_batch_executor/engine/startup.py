"""What an executor's constructor made so far, undone when it fails: `Made`.

Role: the constructor (`executor.AzureBatchExecutor.__init__`) records each thing it
creates (the job's blob container, the pool, the job) on a `Made`; if construction fails
(an error, an interrupt), `undo()` deletes them, so an executor that never started leaves
nothing behind in the account.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from ..cloud.ports import BatchPort, BlobPort
from ..config import Settings, first_line
from ..wire.layout import JobLayout

log = logging.getLogger("azure_batch_executor.engine.executor")


class Made:
    """What the constructor created so far (the job's blob container, the pool, the job),
    undone when it fails (an error, an interrupt): an executor that never started leaves
    nothing behind. Each step is best effort and logged; a pool that existed before is
    kept. `store` is the shared container (the job's is a view of its account)."""

    def __init__(self, store: BlobPort, batch: BatchPort, layout: JobLayout,
                 settings: Settings) -> None:
        self.store, self.batch, self.layout, self.settings = store, batch, layout, settings
        self.blobs = self.pool = self.job = False

    def undo(self) -> None:
        steps: list[tuple[str, Callable[[], object]]] = []
        if self.job:
            steps.append((f"delete job {self.layout.job_id}",
                          lambda: self.batch.delete_job(self.layout.job_id)))
        if self.pool:
            steps.append((f"delete pool {self.settings.pool_id}, created for this executor",
                          self.batch.delete_pool))
        if self.blobs:
            steps.append((f"delete its blob container {self.layout.container}", lambda:
                          self.store.for_container(self.layout.container).delete_container()))
        for what, step in steps:
            try:
                step()
                log.info("the executor could not start: %s", what)
            except Exception as exc:  # noqa: BLE001 - the construction error is the one raised
                log.warning("the executor could not start, and could not %s: %s", what,
                            first_line(exc))
        for closer in (self.batch.close, self.store.close):
            with contextlib.suppress(Exception):  # closing is best effort
                closer()
