"""The response layer: parse a request, call one backend method with Python names, serialize.

Role: `BatchResponses` combines one handler mixin per resource family; each handler is
named after its route (= the SDK method) in `urls.ROUTES` and receives the decoded path
parameters as keyword arguments.

Imports: the standard library and sibling emulator modules.
"""

from __future__ import annotations

from .base import Headers, Request, Response
from .files import FileResponses
from .jobs import JobResponses
from .pools import PoolResponses
from .tasks import TaskResponses


class BatchResponses(PoolResponses, JobResponses, TaskResponses, FileResponses):
    """All handlers of the emulated Batch REST API."""


__all__ = ["BatchResponses", "Headers", "Request", "Response"]
