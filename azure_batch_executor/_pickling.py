"""How the client pickles what goes up to a task: cloudpickle, with two changes.

Role: `Pickler` is cloudpickle's, except that
- code objects keep their file name (cloudpickle writes ``<dynamic-code>``), so a
  remote traceback names the user's own file and the client can show its source lines;
- an exception whose class has the default ``__reduce__`` is rebuilt without calling its
  ``__init__`` (``copyreg.__newobj__`` with its args, then its ``__dict__``), so a user
  exception with a custom ``__init__`` signature or extra attributes unpickles;
- an instance of a class with ``__slots__`` carries its attributes as slot state, set one
  by one, so it loads both into the original class and into cloudpickle's rebuild of it
  (which has a ``__dict__`` instead of slots).
`worker.py` pickles results and exceptions the same way on the node (it cannot import
this module; the two must agree).

Imports: the standard library and cloudpickle.
"""

from __future__ import annotations

import copyreg
import io
import types
from typing import Any

import cloudpickle
import cloudpickle.cloudpickle as _cp

_NEWOBJ = copyreg.__newobj__  # type: ignore[attr-defined]  # cls.__new__(cls, *args)


class Pickler(cloudpickle.Pickler):
    """cloudpickle keeping code file names and rebuilding exceptions without ``__init__``."""

    def reducer_override(self, obj: Any) -> Any:
        cls = type(obj)
        if cls is types.CodeType:
            return code_reduce(obj)
        if isinstance(obj, BaseException) and cls.__reduce__ is BaseException.__reduce__:
            return _NEWOBJ, (cls, *obj.args), obj.__dict__ or None
        if "__slots__" in cls.__dict__ and _default_reduce(cls):
            return _NEWOBJ, (cls,), (None, slot_state(obj))
        return super().reducer_override(obj)


def _default_reduce(cls: type) -> bool:
    return (cls.__reduce_ex__ is object.__reduce_ex__ and cls.__reduce__ is object.__reduce__
            and getattr(cls, "__getstate__", None) is getattr(object, "__getstate__", None)
            and not hasattr(cls, "__getnewargs_ex__") and not hasattr(cls, "__getnewargs__"))


def slot_state(obj: Any) -> dict[str, Any]:
    """Every attribute of a slotted instance, slots and ``__dict__`` alike, set again one by
    one when loaded: a class rebuilt by value (cloudpickle) has a ``__dict__`` where the
    original has slots, so the default state of one does not load into the other."""
    state = dict(getattr(obj, "__dict__", None) or {})
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name in ("__dict__", "__weakref__"):
                continue
            if name.startswith("__") and not name.endswith("__"):
                name = f"_{klass.__name__.lstrip('_')}{name}"  # a private name, mangled
            try:
                state[name] = getattr(obj, name)
            except AttributeError:  # an unset slot
                pass
    return state


def code_reduce(obj: types.CodeType) -> tuple[Any, tuple[Any, ...]]:
    """cloudpickle's reduction of a code object, with its real ``co_filename``."""
    rebuild, args = _cp._code_reduce(obj)
    return rebuild, tuple(obj.co_filename if a == "<dynamic-code>" else a for a in args)


def dumps(obj: Any) -> bytes:
    """`obj` pickled by `Pickler` (what ``cloudpickle.dumps`` would give, but for the above)."""
    buf = io.BytesIO()
    Pickler(buf).dump(obj)
    return buf.getvalue()
