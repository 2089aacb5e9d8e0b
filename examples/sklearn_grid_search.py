"""scikit-learn's GridSearchCV on Azure Batch, unchanged but for one `with` line.

    .venv/bin/python examples/sklearn_grid_search.py

Fits an SVC on (a subset of) scikit-learn's bundled digits dataset for 4 parameter
combinations x 3 folds = 12 fits, once with joblib's backend "azure_batch" and
``n_jobs=-1`` (each fit a Batch task, or a few per task once auto-batching kicks in),
once sequentially in this process; prints both best scores, which must be equal, and
exits non-zero if they are not. With no Azure account configured it runs on the local
stack (Batch emulator + Azurite); set the variables of docs/configuration.md to run it
on Azure (the pool's nodes then need scikit-learn: see docs/images.md).
"""

from __future__ import annotations

import sys
import time

from joblib import parallel_config
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.svm import SVC

from azure_batch_executor import register_joblib

PARAM_GRID = {"C": [1.0, 10.0], "gamma": [0.001, 0.01]}
N_SAMPLES = 600  # of the 1,797 digits: enough to tell the parameters apart, fast to fit


def search(n_jobs: int | None) -> GridSearchCV:
    X, y = load_digits(return_X_y=True)
    grid = GridSearchCV(SVC(), PARAM_GRID, cv=3, n_jobs=n_jobs)
    return grid.fit(X[:N_SAMPLES], y[:N_SAMPLES])


def main() -> int:
    register_joblib()
    start = time.perf_counter()
    with parallel_config(backend="azure_batch"):
        remote = search(n_jobs=-1)
    remote_s = time.perf_counter() - start
    start = time.perf_counter()
    local = search(n_jobs=None)  # outside the `with`: sequential, in this process
    local_s = time.perf_counter() - start
    print(f"best score on Azure Batch: {remote.best_score_:.6f} with {remote.best_params_} "
          f"({remote_s:.1f} s)")
    print(f"best score sequential:     {local.best_score_:.6f} with {local.best_params_} "
          f"({local_s:.1f} s)")
    equal = (remote.best_score_ == local.best_score_
             and remote.best_params_ == local.best_params_)
    print(f"equal: {equal}")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
