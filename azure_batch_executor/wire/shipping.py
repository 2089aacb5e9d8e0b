"""Which of the user's modules travel by value: the code a node cannot import.

Role: `ship_user_modules` registers every imported module that lives neither in the
standard library nor in site-packages (``__main__``, notebooks, test files, a source
tree, this package itself when it runs from one) with cloudpickle's pickle-by-value, so
functions, classes and exceptions defined there are pickled whole and run on a node that
has only the installed packages. `submit`, `map` and the executor's construction call it;
it looks again only when `sys.modules` grew.
"""

from __future__ import annotations

import contextlib
import os
import sys
import sysconfig
import threading
from typing import Any

import cloudpickle

_NOT_USER_PATHS: tuple[str, ...] = ()
_checked: set[str] = set()
_seen_count = 0
_ship_lock = threading.Lock()


def _new_lock_after_fork() -> None:  # another thread may have held the parent's at the fork
    global _ship_lock
    _ship_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_after_fork)


def _system_paths() -> tuple[str, ...]:
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    found = sysconfig.get_paths()
    paths.update(found[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")
                 if key in found)
    return tuple(os.path.realpath(p) + os.sep for p in paths if p)


def is_user_module(name: str, module: Any) -> bool:
    """True for modules a node cannot import: neither in the stdlib nor in site-packages.

    (This package too, when it runs from a source tree: worker images do not contain it.)"""
    global _NOT_USER_PATHS
    path = getattr(module, "__file__", None)
    if not path or not isinstance(path, str):
        return False
    if not _NOT_USER_PATHS:
        _NOT_USER_PATHS = _system_paths()
    real = os.path.realpath(path)
    return not real.startswith(_NOT_USER_PATHS) and "site-packages" not in real


def ship_user_modules() -> None:
    """Register every user module imported so far with cloudpickle's pickle-by-value."""
    global _seen_count
    if len(sys.modules) == _seen_count:  # nothing imported since the last look
        return
    with _ship_lock:
        _seen_count = len(sys.modules)
        for name, module in list(sys.modules.items()):
            if name in _checked:
                continue
            _checked.add(name)
            if module is not None and is_user_module(name, module):
                # not a real module, or not in sys.modules under its name: nothing to ship
                with contextlib.suppress(ValueError, TypeError):
                    cloudpickle.register_pickle_by_value(module)
