"""The seed's sum-of-powers walkthrough, run by AzureBatchExecutor.

The seed's example is a nested loop: for each seed, draw SIZE uniform numbers
with numpy and sum their POWER-th powers; then add up the per-seed sums. The
outer loop is what goes to Batch: one task per seed. The inner function is the
seed's worker.py, unchanged but for taking its parameters as arguments; the
sum equals the SuperBatch walkthrough's (examples/superbatch/).

With no Azure settings this runs on the local stack (Batch emulator +
Azurite); set BATCH_ACCOUNT_URL and friends (see docs/configuration.md) and
the same code runs on Azure Batch.

    python examples/sum_of_powers.py
"""

from __future__ import annotations

import logging
import sys

import numpy as np

from azure_batch_executor import AzureBatchExecutor

SEEDS = (1, 12, 123, 1234)
SIZE = (10,)
POWER = 3


def sum_of_powers(seed: int, size: tuple[int, ...] = SIZE, power: int = POWER) -> float:
    """The inner loop (the seed's worker): runs on a Batch node."""
    np.random.seed(seed)
    return float(sum(np.power(np.random.uniform(size=size), power)))


def main() -> int:
    serial = sum(sum_of_powers(seed) for seed in SEEDS)
    with AzureBatchExecutor(max_workers=len(SEEDS)) as ex:
        distributed = sum(ex.map(sum_of_powers, SEEDS))
    print(f"serial sum:      {serial!r}")
    print(f"distributed sum: {distributed!r}")
    if serial != distributed:
        print("MISMATCH", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    sys.exit(main())
