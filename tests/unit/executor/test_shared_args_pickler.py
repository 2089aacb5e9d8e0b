"""The diverting pickler: large arguments leave the task spec as content-addressed objects."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np

from azure_batch_executor import constants as C
from azure_batch_executor.wire import codec as _wire
from azure_batch_executor.wire import outcome
from azure_batch_executor.wire import worker as worker_module
from azure_batch_executor.wire.layout import JobLayout


def total(a, b, scale=1):
    return float(a.sum() + b.sum()) * scale


def _divert() -> _wire.Divert:
    return _wire.Divert(JobLayout.shared_file)


def test_large_array_is_diverted_once_and_small_args_stay_inline() -> None:
    big = np.arange(200_000, dtype=np.float64)  # 1.6 MB
    divert = _divert()
    spec = _wire.encode_call(total, (big, big), {"scale": np.ones(3)}, divert)
    assert len(spec) < C.INLINE_THRESHOLD  # the array is a persistent id, not data
    assert len(divert.objects) == 1  # two references, one object
    (digest, data), = divert.objects.items()
    assert len(digest) == 64 and len(data) >= big.nbytes
    assert pickle.loads(spec)["objects"] == {digest: f"shared_{digest}.pickle"}
    # an equal array (another object, same pickle) gets the same name
    other = _divert()
    _wire.encode_call(total, (big.copy(), np.zeros(2)), {}, other)
    assert list(other.objects) == [digest]


def test_nothing_diverted_below_the_threshold_or_without_divert() -> None:
    divert = _divert()
    spec = _wire.encode_call(total, (np.ones(100), b"x" * 1000), {}, divert)
    assert divert.objects == {} and "objects" not in pickle.loads(spec)
    plain = _wire.encode_call(total, (np.ones(100_000), np.ones(1)), {})
    assert len(plain) > 800_000


def test_bytes_and_nested_objects_are_diverted() -> None:
    blob = bytes(range(256)) * 512  # 128 KiB
    divert = _divert()
    _wire.encode_call(len, ({"data": [blob]},), {}, divert)
    assert len(divert.objects) == 1


def test_worker_substitutes_the_objects(tmp_path) -> None:
    """The spec carries each object's URL (a file URL here, a blob's read SAS URL on Batch);
    the worker downloads it into the node's shared directory and loads it from there."""
    _wire.ship_user_modules()
    big = np.arange(100_000, dtype=np.float64)
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    divert = _wire.Divert(lambda digest: (blobs / JobLayout.shared_file(digest)).as_uri())
    spec = _wire.encode_chunk("shared_0.pickle", [((big, big), {}), ((big, np.ones(2)), {})],
                              divert)
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "shared_0.pickle").write_bytes(_wire.encode_shared(total))
    for digest, data in divert.objects.items():
        (blobs / JobLayout.shared_file(digest)).write_bytes(data)
    (wd / C.WORKER_SCRIPT_FILE).write_bytes(Path(worker_module.__file__).read_bytes())
    (wd / C.GLOBAL_CONFIG_FILE).write_bytes(_wire.encode_config(None, ()))
    (wd / C.WORKER_INPUTS_FILE).write_bytes(spec)
    env = dict(os.environ, AZ_BATCH_NODE_SHARED_DIR=str(tmp_path / "shared"))
    subprocess.run([sys.executable, C.WORKER_SCRIPT_FILE], cwd=wd, check=True, timeout=60,
                   env=env)
    out = pickle.loads((wd / C.WORKER_OUTPUTS_FILE).read_bytes())
    rows = [outcome.decode_row(r) for r in out["results"]]
    assert rows == [(True, 2 * float(big.sum())), (True, float(big.sum()) + 2.0)]
    (digest,) = divert.objects
    assert (tmp_path / "shared" / C.NODE_OBJECTS_DIR / digest).exists()
    assert out["node"]["fetched"] == 1


class FreshBytes:
    """Reduces to a fresh large bytes object: temporaries must not share a digest by id."""

    def __init__(self, fill: int) -> None:
        self.fill = fill

    def __reduce__(self):
        return (bytes, (bytes([self.fill]) * 100_000,))


def test_temporaries_from_reducers_get_their_own_digests() -> None:
    divert = _divert()
    spec = _wire.encode_call(len, ([FreshBytes(i) for i in range(4)],), {}, divert)
    assert len(divert.objects) == 4
    assert len(pickle.loads(spec)["objects"]) == 4
