"""The pickle of a function, made once and reused while nothing it pickles can have changed.

Role: `submit()` of the same function many times pickles it once. `lookup(fn)` gives the
pickle made for `fn` (the codec nests it in each task spec, loaded by ``pickle.loads`` on
the node), `remember` stores one, `stamp` says whether a function may be cached and what
its pickle depends on: the objects it references, compared by identity on every call.
Only functions whose referenced globals, defaults and closure cells are immutable
(scalars, modules, classes and functions pickled by reference, or such functions by
value, checked again each time) are cached; anything else is pickled afresh.
"""

from __future__ import annotations

import operator
from types import BuiltinFunctionType, CodeType, FunctionType, ModuleType
from typing import Any

import cloudpickle

# {id(fn): (fn, its pickle, the objects it was pickled with)}
_CACHED_FN: dict[int, tuple[Any, bytes, tuple[Any, ...]]] = {}
_MAX_CACHED_FN = 256
_SCALARS = frozenset({int, float, str, bool, type(None), complex, bytes})


def lookup(fn: Any) -> bytes | None:
    """The cached pickle of `fn` (this very object), or None."""
    cached = _CACHED_FN.get(id(fn))
    return cached[1] if cached is not None and cached[0] is fn else None


def is_current(fn: Any, stamp: tuple[Any, ...]) -> bool:
    """True when `fn`'s cached pickle was made with exactly the objects of `stamp`."""
    cached = _CACHED_FN.get(id(fn))
    return (cached is not None and cached[0] is fn and len(cached[2]) == len(stamp)
            and all(map(operator.is_, cached[2], stamp)))


def forget(fn: Any) -> None:
    _CACHED_FN.pop(id(fn), None)


def remember(fn: Any, data: bytes, stamp: tuple[Any, ...]) -> None:
    if len(_CACHED_FN) >= _MAX_CACHED_FN:
        _CACHED_FN.clear()
    _CACHED_FN[id(fn)] = (fn, data, stamp)


def stamp(fn: Any) -> tuple[Any, ...] | None:
    """The objects `fn`'s pickle depends on (compared by identity), or None: not cacheable."""
    try:
        return _stamp(fn)
    except Exception:  # noqa: BLE001 - a user object's attribute access may raise anything
        return None


def _stamp(fn: Any, depth: int = 0) -> tuple[Any, ...] | None:
    """The objects `fn`'s pickle depends on (compared by identity), or None: not cacheable."""
    if type(fn) is not FunctionType or depth > 3 or fn.__dict__:
        return None
    parts: list[Any] = [fn, fn.__code__, fn.__name__, fn.__qualname__, fn.__module__,
                        fn.__doc__, fn.__defaults__, fn.__kwdefaults__]
    values: list[Any] = list(fn.__defaults__ or ())
    values += list((fn.__kwdefaults__ or {}).values())
    if fn.__annotations__:
        return None
    for cell in fn.__closure__ or ():
        try:
            values.append(cell.cell_contents)
        except ValueError:  # an empty cell
            values.append(_stamp)
    f_globals = fn.__globals__
    for name in _code_globals(fn.__code__):
        values.append(f_globals.get(name, _stamp))
    for value in values:
        cls = type(value)
        if cls in _SCALARS or value is _stamp:
            if cls is bytes and len(value) > 1024:
                return None
            parts.append(value)
        elif cls is BuiltinFunctionType:
            parts.append(value)
        elif cls is ModuleType:
            if not cloudpickle.cloudpickle._should_pickle_by_reference(value):
                return None  # a module shipped by value: its attributes may change
            parts.append(value)
        elif cls is FunctionType or isinstance(value, type):
            if cloudpickle.cloudpickle._should_pickle_by_reference(value):
                parts.append(value)
            elif cls is FunctionType:
                inner = _stamp(value, depth + 1)
                if inner is None:
                    return None
                parts.extend(inner)
            else:
                return None  # a class pickled by value: its dict may change
        else:
            return None
    return tuple(parts)


def _code_globals(code: CodeType) -> Any:
    return cloudpickle.cloudpickle._extract_code_globals(code)
