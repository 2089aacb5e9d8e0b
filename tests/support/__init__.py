"""Test support: the one set of fakes the unit tests share, checked against the real
interfaces by tests/unit/test_fakes_match_ports.py.

- `memory_store.MemoryBlobStore`: a `BlobPort` keeping blobs in a dict.
- `batch_sdk_fake.FakeBatchClient`: the subset of the SDK's `BatchClient` that
  `BatchService` calls, running the real worker in subprocesses (the executor's suites).
- `batch_service_fake.ScriptedBatch`: a `BatchPort` whose tasks complete at once with a
  scripted outcome (the SuperBatch client's suites, whose tasks are Docker commands).
"""
