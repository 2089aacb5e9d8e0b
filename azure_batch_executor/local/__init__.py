"""The local stack: Azurite (Blob storage) + our Batch emulator, on loopback.

Role: the package's public face; it holds no code of its own. Used by tests,
by `make demo`, and by `AzureBatchExecutor` when no Batch account is
configured.

- `azurite`: `Azurite`, the Azure Storage emulator as a subprocess (finding
  the executable, starting it, its connection string), and `LocalStackError`.
- `stack`: `LocalStack` (Azurite + the Batch emulator, with the settings a
  client needs) and `shared_local_stack()`, the process-wide one, with its
  fork and exit handling.
- `images`: the node images (`client`, `bare`): which `python3` the nodes run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .azurite import AZURITE_ACCOUNT_KEY, AZURITE_ACCOUNT_NAME, Azurite, LocalStackError
from .stack import LocalStack, shared_local_stack

__all__ = [
    "AZURITE_ACCOUNT_KEY",
    "AZURITE_ACCOUNT_NAME",
    "Azurite",
    "LocalStack",
    "LocalStackError",
    "shared_local_stack",
]

if not TYPE_CHECKING:  # hidden from mypy, which keeps checking the names above

    def __getattr__(name: str) -> Any:
        """`_shared_lock` is read from `stack` at each access: a forked child replaces it
        there, so a copy bound here at import would be the parent's (maybe held) lock."""
        if name == "_shared_lock":
            from . import stack

            return stack._shared_lock
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
