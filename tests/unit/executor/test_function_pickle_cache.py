"""submit() pickles a function once and reuses that pickle while nothing it holds changed."""

from __future__ import annotations

import pickle

import cloudpickle
import numpy as np
from test_worker import run_worker  # rootdir-relative, like the other test modules

from azure_batch_executor.wire import codec as _wire
from azure_batch_executor.wire import function_cache, outcome

STATE = "unset"
SCALE = 2
ITEMS = [1]
BIG = np.zeros(100_000)


def set_state(value):
    global STATE
    STATE = value


def read_state(suffix):
    return STATE + suffix


def scaled(x):
    return x * SCALE


def items(_):
    return list(ITEMS)


def uses_big(_):
    return float(BIG.sum())


def helper(x):
    return x + SCALE


def outer(x):
    return helper(x)


def _call(fn, *args):
    divert = _wire.Divert(lambda digest: digest)
    spec = pickle.loads(_wire.encode_call(fn, args, {}, divert))
    loaded_fn, calls = cloudpickle.loads(spec["call"])
    (call_args, kwargs), = calls
    return loaded_fn(*call_args, **kwargs)


def setup_function() -> None:
    _wire.ship_user_modules()  # this test module is user code: pickled by value


def test_the_pickle_is_reused_and_calls_still_differ() -> None:
    assert _call(scaled, 3) == 6
    assert function_cache._CACHED_FN[id(scaled)][0] is scaled
    assert _call(scaled, 4) == 8


def test_a_rebound_global_is_seen() -> None:
    global SCALE
    assert _call(scaled, 1) == 2 and _call(outer, 1) == 3
    SCALE = 10
    try:
        assert _call(scaled, 1) == 10
        assert _call(outer, 1) == 11  # through a helper function pickled by value
    finally:
        SCALE = 2


def test_mutable_globals_and_diverted_objects_are_never_cached() -> None:
    assert _call(items, 0) == [1]
    ITEMS.append(2)
    try:
        assert _call(items, 0) == [1, 2]
    finally:
        ITEMS.pop()
    assert id(items) not in function_cache._CACHED_FN
    assert id(uses_big) not in function_cache._CACHED_FN  # a diverted global: pickled each time
    divert = _wire.Divert(lambda digest: digest)
    _wire.encode_call(uses_big, (0,), {}, divert)
    assert divert.objects and id(uses_big) not in function_cache._CACHED_FN


def test_a_changed_closure_cell_is_seen() -> None:
    value = 1

    def closure(x):
        return x + value

    assert _call(closure, 1) == 2
    value = 5
    assert _call(closure, 1) == 6


def test_worker_runs_a_reused_pickle_with_the_initializer_globals(tmp_path) -> None:
    divert = _wire.Divert(lambda digest: digest)
    _wire.encode_call(read_state, ("?",), {}, divert)
    spec = _wire.encode_call(read_state, ("!",), {}, _wire.Divert(lambda digest: digest))
    assert function_cache._CACHED_FN[id(read_state)][0] is read_state
    out = run_worker(tmp_path, spec, _wire.encode_config(set_state, ("initialized",)))
    assert out["fatal"] is None, out["fatal"]
    assert outcome.decode_row(out["results"][0]) == (True, "initialized!")


def test_a_module_shipped_by_value_is_pickled_afresh(tmp_path, monkeypatch) -> None:
    """A global that is a user module (pickled by value) may change between calls."""
    import importlib
    import sys

    (tmp_path / "abx_user_settings.py").write_text("FACTOR = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("abx_user_settings")
    cloudpickle.register_pickle_by_value(module)
    try:
        namespace = {"abx_user_settings": module}
        exec("def times_factor(x):\n    return x * abx_user_settings.FACTOR\n", namespace)
        fn = namespace["times_factor"]
        assert _call(fn, 2) == 6
        module.FACTOR = 5
        assert _call(fn, 2) == 10
        assert id(fn) not in function_cache._CACHED_FN
    finally:
        cloudpickle.unregister_pickle_by_value(module)
        sys.modules.pop("abx_user_settings", None)


class Point:
    def __init__(self, x):
        self.x = x


def same(x):
    return x


def test_plain_calls_take_the_c_pickler_and_everything_else_cloudpickle(monkeypatch) -> None:
    """Arguments of builtin scalars in tuples/lists/dicts go through plain pickle (the
    cached function nested); anything else - an instance of a user class, a long string,
    a large array - still goes through cloudpickle (by value, diverted)."""
    _call(same, 1)  # cached now
    used = []
    real = cloudpickle.Pickler.dump
    monkeypatch.setattr(cloudpickle.Pickler, "dump",
                        lambda self, obj: used.append(obj) or real(self, obj))
    plain = ((1, 2.5, "s", b"b", None, True, 1j), [1, [2, (3,)]], {"k": {"n": [None]}})
    assert _call(same, plain) == plain
    assert used == []
    assert _call(same, Point(3)).x == 3 and len(used) == 1  # by value: a user class
    long = "x" * 10_000
    assert _call(same, long) == long and len(used) == 2
    array = np.arange(20_000)
    divert = _wire.Divert(lambda digest: digest)
    spec = pickle.loads(_wire.encode_call(same, (array,), {}, divert))
    assert len(used) > 2 and len(divert.objects) == 1 and spec["objects"]


def test_plain_means_exact_builtin_types_within_a_budget() -> None:
    class MyInt(int):
        pass

    assert _wire._plain([((1, "a", (2.0, None)), {"k": [1, 2]})])
    assert not _wire._plain([((MyInt(1),), {})])
    assert not _wire._plain([((set([1]),), {})])
    assert not _wire._plain([((list(range(_wire._PLAIN_BUDGET)),), {})])
    assert not _wire._plain([((b"x" * _wire._PLAIN_BYTES,), {})])
