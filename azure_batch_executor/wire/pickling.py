"""How the client pickles what goes up to a task: the worker's `Pickler`, cloudpickle with
three changes, so that both sides of the wire pickle alike.

Role: `Pickler` (defined in `worker.py`, which runs on the node and imports only the
standard library and cloudpickle) is cloudpickle's, except that
- code objects keep their file name (cloudpickle writes ``<dynamic-code>``), so a
  remote traceback names the user's own file and the client can show its source lines;
- an exception whose class has the default ``__reduce__`` is rebuilt without calling its
  ``__init__`` (``copyreg.__newobj__`` with its args, then its ``__dict__``), so a user
  exception with a custom ``__init__`` signature or extra attributes unpickles;
- an instance of a class with ``__slots__`` carries its attributes as slot state, set one
  by one, so it loads both into the original class and into cloudpickle's rebuild of it
  (which has a ``__dict__`` instead of slots).
docs/dev/pickling.md says why.
"""

from __future__ import annotations

from .worker import Pickler as Pickler  # re-exported
from .worker import dumps as dumps  # re-exported
from .worker import slot_state as slot_state  # re-exported
