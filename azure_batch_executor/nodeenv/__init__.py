"""Node environments: what the nodes run the worker with, when no image provides it.

`lock` makes, on the client, a content-addressed `EnvironmentLock` from the `environment`
setting (the client's own Python and distributions by default); `prepare` is the script a
job preparation task runs on each node (standard library only: a stock Batch image has
python3 and nothing else) to bootstrap uv and install the lock into the node's shared
directory, once per node and environment. docs/environments.md is the user's side.
"""
