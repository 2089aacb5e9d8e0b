"""The client-node contract: what goes up to a task and what comes back.

`layout` names every job, task and blob; `codec` encodes calls and decodes outcomes;
`pickling` and `shipping` decide how user code travels (by value for the user's own
modules); `tracebacks` renders remote tracebacks with the client's sources; `worker` is
the script that runs on the node (standard library and cloudpickle only).
"""
