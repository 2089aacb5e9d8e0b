"""How the client pickles what goes up to a task: cloudpickle, with two changes.

Role: `Pickler` is cloudpickle's, except that
- code objects keep their file name (cloudpickle writes ``<dynamic-code>``), so a
  remote traceback names the user's own file and the client can show its source lines;
- an exception whose class has the default ``__reduce__`` is rebuilt without calling its
  ``__init__`` (``copyreg.__newobj__`` with its args, then its ``__dict__``), so a user
  exception with a custom ``__init__`` signature or extra attributes unpickles.
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
        return super().reducer_override(obj)


def code_reduce(obj: types.CodeType) -> tuple[Any, tuple[Any, ...]]:
    """cloudpickle's reduction of a code object, with its real ``co_filename``."""
    rebuild, args = _cp._code_reduce(obj)
    return rebuild, tuple(obj.co_filename if a == "<dynamic-code>" else a for a in args)


def dumps(obj: Any) -> bytes:
    """`obj` pickled by `Pickler` (what ``cloudpickle.dumps`` would give, but for the above)."""
    buf = io.BytesIO()
    Pickler(buf).dump(obj)
    return buf.getvalue()
