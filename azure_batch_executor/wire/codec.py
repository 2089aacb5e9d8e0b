"""What goes up to a task: the task spec and the job config, pickled.

Role: the task spec (``inputs.pickle``) and the job config (``config.pickle``) are built
by `encode_call` / `encode_chunk` / `encode_config`; large arguments are diverted out of
the spec (`Divert`) into `SharedObject` blobs named by their hash; a function is pickled
once and that pickle reused while nothing it pickles can have changed (`cache_function`,
`function_cache`); a map() function travels once as a `SharedPayload`. What comes back is
`outcome`'s. An argument that cannot be pickled raises `TaskPicklingError` naming it.

Code defined in the user's own modules (not under the stdlib or site-packages,
including ``__main__`` and test files) is pickled by value (`shipping`, re-exported
here as `ship_user_modules` and `is_user_module`).
The shapes are documented in `worker.py`, which must agree with this module.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import BuiltinFunctionType, CodeType, FunctionType, ModuleType
from typing import Any

import cloudpickle

from .. import constants as C
from ..errors import (
    TaskPicklingError,
)
from . import function_cache
from .pickling import Pickler, dumps
from .shipping import is_user_module as is_user_module  # re-exported
from .shipping import ship_user_modules as ship_user_modules  # re-exported

Call = tuple[tuple[Any, ...], dict[str, Any]]


def client_versions() -> dict[str, str]:
    """The version stamp written to config.pickle and checked by the worker."""
    return {"python": "{}.{}".format(*sys.version_info[:2]),
            "cloudpickle": cloudpickle.__version__}


# ------------------------------------------------------------------------------ local side
@dataclass(eq=False)
class SharedPayload:
    """A function shared by the tasks of one map() call: uploaded once, before its first task."""

    payload_id: int
    data: bytes
    uploaded: bool = False


@dataclass(eq=False)
class SharedObject:
    """A large argument, pickled once per executor: uploaded before its first task, then
    referenced by every task spec that contains an equal object (same pickle)."""

    data: bytes
    uploaded: bool = False


# ------------------------------------------------------------------------------ going up
class Divert:
    """Collects the large arguments diverted out of a task spec while it is pickled.

    An ndarray, bytes, bytearray, pandas DataFrame or Series (anywhere in the call: inside a
    joblib batch, an estimator or a dict too) whose pickle is >= `threshold` bytes is
    pickled on its own; the spec keeps a persistent id, the sha256 of that pickle, and
    `objects` maps it to the pickle. `url_of(digest)` is where a node downloads it from
    (its blob's read URL): the spec's ``"objects"`` carries it, and the worker fetches each
    object once per node into the node's shared directory (`worker._fetch_objects`).
    """

    def __init__(self, url_of: Callable[[str], str],
                 threshold: int = C.SHARED_ARG_THRESHOLD) -> None:
        self.url_of = url_of
        self.threshold = threshold
        self.objects: dict[str, bytes] = {}


class _DivertingPickler(Pickler):
    """cloudpickle whose persistent ids divert large arrays, bytes and frames (`Divert`)."""

    def __init__(self, file: Any, divert: Divert) -> None:
        super().__init__(file)
        self.divert = divert
        # id -> (the object, kept alive so that its id is not reused by a temporary, digest)
        self.seen: dict[int, tuple[Any, str | None]] = {}

    def reducer_override(self, obj: Any) -> Any:
        cached = function_cache.lookup(obj) if type(obj) is FunctionType else None
        if cached is not None:
            return _loads, (cached,)  # pickled once: a nested pickle (`function_cache`)
        return super().reducer_override(obj)

    def persistent_id(self, obj: Any) -> str | None:
        cls = type(obj)
        if cls in _SMALL or cls in _NEVER_DIVERTED:
            return None
        threshold = self.divert.threshold
        if cls is bytes or cls is bytearray:
            if len(obj) < threshold:
                return None
        elif cls.__module__ == "numpy":
            if cls.__name__ != "ndarray" or getattr(obj, "nbytes", 0) < threshold:
                return None
        elif not (cls.__module__.startswith("pandas.") and cls.__name__ in _FRAMES):
            return None
        key = id(obj)
        if key not in self.seen:
            data = cloudpickle.dumps(obj)
            digest = hashlib.sha256(data).hexdigest() if len(data) >= threshold else None
            if digest is not None:
                self.divert.objects.setdefault(digest, data)
            self.seen[key] = (obj, digest)
        return self.seen[key][1]


_SMALL = frozenset({int, float, str, bool, type(None), tuple, list, dict, set})
_NEVER_DIVERTED = frozenset({FunctionType, CodeType, ModuleType, type, frozenset, complex,
                             BuiltinFunctionType})
_loads = pickle.loads


def cache_function(fn: Any, divert: Divert | None) -> None:
    """Pickle `fn` once for the calls that follow, when that is safe (`function_cache`)."""
    if type(fn) is not FunctionType:
        return
    depends_on = function_cache.stamp(fn)
    if depends_on is None:
        function_cache.forget(fn)
        return
    if function_cache.is_current(fn, depends_on):
        return
    function_cache.forget(fn)
    try:
        probe = Divert(lambda d: d) if divert is not None else None
        if probe is None:
            data = dumps(fn)
        else:
            buf = io.BytesIO()
            _DivertingPickler(buf, probe).dump(fn)
            if probe.objects:
                return  # a nested pickle cannot hold persistent ids
            data = buf.getvalue()
    except Exception:  # noqa: BLE001 - not cacheable: the call is pickled as it comes
        return
    function_cache.remember(fn, data, depends_on)


_FRAMES = frozenset({"DataFrame", "Series"})

# Calls made of these alone (at most _PLAIN_BUDGET objects, str/bytes shorter than
# _PLAIN_BYTES) are pickled by the C pickler: nothing in them is pickled by value or diverted.
_PLAIN_LEAVES = frozenset({int, float, str, bool, type(None), complex, bytes})
_PLAIN_BUDGET = 200
_PLAIN_BYTES = 4096


def _plain(obj: Any) -> bool:
    """True when `obj` holds only builtin scalars in tuples, lists and dicts (exact types,
    at most _PLAIN_BUDGET objects in all, short strings): what plain pickle does as
    cloudpickle would, with no large argument to divert."""
    todo = [obj]
    n = 0
    while todo:
        o = todo.pop()
        n += 1
        cls = type(o)
        if n > _PLAIN_BUDGET:
            return False
        if cls in _PLAIN_LEAVES:
            if (cls is str or cls is bytes) and len(o) >= _PLAIN_BYTES:
                return False
        elif cls is tuple or cls is list:
            todo.extend(o)
        elif cls is dict:
            todo.extend(o)
            todo.extend(o.values())
        else:
            return False
    return True


class _Pickled:
    """A pickle nested in another, loaded by ``pickle.loads`` on the node (a cached function)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return _loads, (self.data,)


def _describe(obj: Any) -> str:
    try:
        text = repr(obj)
    except Exception:  # noqa: BLE001 - a user's __repr__ may raise anything
        text = f"<{type(obj).__qualname__} object>"
    return text if len(text) <= 200 else text[:197] + "..."


def _dumps(obj: Any, what: str) -> bytes:
    try:
        return dumps(obj)
    except Exception as exc:
        raise TaskPicklingError(
            f"cannot pickle {what}: {_describe(obj)} ({type(exc).__name__}: {exc}); pass "
            "what is needed to recreate it (a path, a URL, its settings) and create it in the "
            "function or the initializer"
        ) from exc


def _dumps_call(fn: Callable[..., Any] | None, calls: Sequence[Call], where: str,
                divert: Divert | None = None) -> bytes:
    """cloudpickle of (fn, calls) in one go; on failure, find the object to name."""
    try:
        if fn is not None:
            cache_function(fn, divert)
            cached = function_cache.lookup(fn)
            if cached is not None and _plain(calls):
                # the C pickler: nothing in the call needs cloudpickle or a persistent id
                return pickle.dumps((_Pickled(cached), list(calls)), protocol=5)
        elif _plain(calls):
            return pickle.dumps((None, list(calls)), protocol=5)
        if divert is None:
            return dumps((fn, list(calls)))
        buf = io.BytesIO()
        _DivertingPickler(buf, divert).dump((fn, list(calls)))
        return buf.getvalue()
    except Exception:  # noqa: BLE001, S110 - any failure: find the culprit below, and name it
        pass
    if fn is not None:
        _dumps(fn, f"the function {getattr(fn, '__qualname__', None) or _describe(fn)}")
    for n, (args, kwargs) in enumerate(calls):
        for i, arg in enumerate(args):
            _dumps(arg, f"positional argument {i} of {where}" + (f" (item {n})" if n else ""))
        for key, value in kwargs.items():
            _dumps(value, f"keyword argument {key!r} of {where}")
    return _dumps((fn, list(calls)), f"the call {where}")  # raises with the reason


def _spec(shared: str | None, call: bytes, divert: Divert | None) -> bytes:
    spec: dict[str, Any] = {"format": C.WIRE_FORMAT, "shared": shared, "call": call}
    if divert is not None and divert.objects:
        spec["objects"] = {d: divert.url_of(d) for d in divert.objects}
    return pickle.dumps(spec, protocol=4)


def encode_call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                divert: Divert | None = None) -> bytes:
    """The task spec of one submit() call (large arguments diverted into `divert` when
    given). Raises TaskPicklingError naming the culprit."""
    name = getattr(fn, "__qualname__", None) or _describe(fn)
    return _spec(None, _dumps_call(fn, [(args, kwargs)], f"submit({name}, ...)", divert),
                 divert)


def encode_shared(fn: Callable[..., Any]) -> bytes:
    name = getattr(fn, "__qualname__", None) or _describe(fn)
    return _dumps(fn, f"the function {name} given to map()")


def encode_chunk(shared_file: str, calls: Sequence[Call], divert: Divert | None = None
                 ) -> bytes:
    """The task spec of one map() chunk whose function travels as `shared_file`."""
    return _spec(shared_file, _dumps_call(None, calls, "map()", divert), divert)


def encode_config(initializer: Callable[..., Any] | None, initargs: tuple[Any, ...]) -> bytes:
    init = None
    if initializer is not None:
        init = _dumps((initializer, tuple(initargs)), "the initializer and its initargs")
    config = dict(client_versions(), format=C.WIRE_FORMAT, initializer=init)
    return pickle.dumps(config, protocol=4)
