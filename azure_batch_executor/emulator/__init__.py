"""The Azure Batch REST emulator: the official SDK drives it unchanged over loopback HTTP.

    from azure_batch_executor.emulator import BatchEmulator

    with BatchEmulator(nodes=2, slots_per_node=2) as emu:
        client = BatchClient(emu.url, AzureNamedKeyCredential(emu.account_name,
                                                              emu.account_key))

Layers (after moto): `urls` routes, `responses` parse and serialize, `models` hold pools,
jobs and tasks as state machines and never see HTTP, `exceptions` render the service's
errors, `scheduler` places tasks on node slots, `runner` runs them as processes,
`admin` steers tests (faults, preemption), `server` serves it all. Users: docs/emulator.md;
the REST contract it implements, operation by operation: docs/dev/emulator-rest.md.

Imports: the standard library and sibling emulator modules only; nothing from the rest
of `azure_batch_executor`.
"""

from .server import BatchEmulator, tune_gc_for_serving

__all__ = ["BatchEmulator", "tune_gc_for_serving"]
