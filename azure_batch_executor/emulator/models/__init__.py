"""Model layer of the Batch emulator: pools, nodes, jobs and tasks as state machines.

Role: state and rules only; nothing here sees HTTP. `BatchBackend` is the entry point.
Split along the seams: `base` (entity, conditions), `pools`/`jobs`/`tasks` (one resource
each, with its REST JSON), `runtime` (what a task process sees), `core` (lock and shared
helpers), `pool_ops`/`job_ops`/`task_ops` (operations), `backend` (the combination).

Imports: the standard library and sibling emulator modules only.
"""

from .backend import BatchBackend, Settings
from .core import Run
from .jobs import Job
from .pools import Node, Pool
from .tasks import Task

__all__ = ["BatchBackend", "Job", "Node", "Pool", "Run", "Settings", "Task"]
