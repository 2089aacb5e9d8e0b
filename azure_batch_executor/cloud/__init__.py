"""The Azure side: the only code that imports ``azure.*``.

`batch` (the Batch service: pool, job, task collections, task counts and completions),
`storage` (the blob container), `taskdef` (task definitions as JSON text), `retry`
(the retry policy and request counts), `codes` (what an error reply means).
"""
