"""The engine: `AzureBatchExecutor`, its one manager thread, dispatch and their shared state.

The executor (`executor`) enqueues work items; the manager thread (`manager`) turns them
into Batch tasks (`dispatch`) and completed tasks into resolved futures; `state` is what
the two share; `accounts` connects the Azure side (or the local stack) for them;
`output` echoes what tasks printed; `logs` is the package's logging policy.
"""
