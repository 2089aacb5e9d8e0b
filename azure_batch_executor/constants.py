"""The wire contract and the fixed numbers of azure-batch-executor.

Role: every name that both sides of the wire (the client and `worker.py` on the
node) or the seed's SuperBatch walkthrough rely on, plus the defaults that
`config.py` falls back to. Nothing here does anything.
"""

from __future__ import annotations

# --- the seed's contract (file names; do not change) -------------------------------------
GLOBAL_CONFIG_FILE = "config.pickle"  # per job: initializer, versions
WORKER_INPUTS_FILE = "inputs.pickle"  # name inside the task's working dir
WORKER_OUTPUTS_FILE = "outputs.pickle"  # name inside the task's working dir
LOCAL_INPUTS_PATTERN = "iter_{}_inputs.pickle"  # blob name per task
LOCAL_OUTPUTS_PATTERN = "iter_{}_outputs.pickle"  # blob name per task

# --- our additions to the node-side contract ----------------------------------------------
WORKER_SCRIPT_FILE = "abx_worker.py"  # the worker, uploaded once per job
PREPARE_SCRIPT_FILE = "abx_prepare.py"  # the job preparation task: a node's environment
ENVIRONMENTS_PREFIX = "_environments/"  # <env id>/requirements.txt and wheels, shared
UV_VERSION = "0.13.8"  # the uv the nodes bootstrap (nodeenv/prepare.py)
STDOUT_PATTERN = "iter_{}_stdout.txt"  # the task's stdout.txt, beside its outputs
STDERR_PATTERN = "iter_{}_stderr.txt"  # the task's stderr.txt, beside its outputs
SHARED_PAYLOAD_PATTERN = "shared_{}.pickle"  # a map() function (per map call) or a large
# argument (per executor, named by the sha256 of its pickle)
# An array, bytes or DataFrame whose pickle is at least this large travels as its own blob,
# uploaded once per executor and referenced by every task that needs it.
SHARED_ARG_THRESHOLD = 64 * 1024
INLINE_INPUTS_ENV = "ABX_INPUTS_B64"  # a small task spec travels here, base64
INLINE_CONFIG_ENV = "ABX_CONFIG_B64"  # a small config.pickle, base64, in the job's environment
WIRE_FORMAT = 2  # bumped when the pickled shapes change (2: large arguments as URLs)
# Where a node keeps the large arguments its tasks fetched, under $AZ_BATCH_NODE_SHARED_DIR:
# one file per sha256, downloaded once per node and shared by its tasks.
NODE_OBJECTS_DIR = "abx/objects"
# Expiry markers of job prefixes: `_expires/<UTC deadline>/<job id>`, an empty blob whose
# name says when the job's blobs may be deleted (engine/cleanup.py).
EXPIRY_PREFIX = "_expires/"

# Task specs up to this many pickled bytes travel inline in the task definition (base64 in an
# environment setting; the worker writes inputs.pickle itself). Above it: one blob upload.
# Measured (benchmarks/README.md): inline costs ~0.2 ms per task and no request at any size
# up to 16 KiB, a blob ~2.5 ms and one request; the bound comes from the 1 MiB request limit
# of add-task-collection (100 tasks of 6 KiB, base64, plus their URLs: about 1 MB).
INLINE_THRESHOLD = 6 * 1024

# --- Batch request limits -----------------------------------------------------------------
BATCH_API_VERSION = "2025-06-01"  # the REST API version of azure-batch 15.x (and the emulator)
MAX_TASKS_PER_COLLECTION = 100  # Batch limit for addtaskcollection
MAX_COLLECTION_BODY = 900_000  # bytes; Batch refuses bodies of 1 MiB and more
LIST_PAGE_SIZE = 1000  # maxresults for list_tasks

# --- environment variable names (the seed's, plus STORAGE_ACCOUNT_URL) --------------------
ENV_BATCH_ACCOUNT_URL = "BATCH_ACCOUNT_URL"
ENV_BATCH_ACCOUNT_NAME = "BATCH_ACCOUNT_NAME"
ENV_BATCH_ACCOUNT_KEY = "BATCH_ACCOUNT_KEY"
ENV_STORAGE_ACCOUNT_URL = "STORAGE_ACCOUNT_URL"
ENV_STORAGE_ACCOUNT_KEY = "STORAGE_ACCOUNT_KEY"
ENV_STORAGE_CONNECTION_STRING = "STORAGE_ACCOUNT_CONNECTION_STRING"
# Set by the worker to the task id while user code runs on a node: the client package then
# refuses to start an executor (a second cloud job) and joblib's "azure_batch" is sequential.
TASK_ENV = "AZURE_BATCH_EXECUTOR_TASK"
ENV_ENVIRONMENT = "AZURE_BATCH_EXECUTOR_ENVIRONMENT"  # the `environment` setting
ENV_POOL_IDENTITY = "AZURE_BATCH_EXECUTOR_POOL_IDENTITY"  # the `pool_identity` setting
ENV_ALLOW_NESTED = "AZURE_BATCH_EXECUTOR_ALLOW_NESTED"  # "1": allow an executor in a task

# --- defaults -----------------------------------------------------------------------------
DEFAULT_POOL_ID = "azure-batch-executor"
DEFAULT_VM_SIZE = "standard_d2s_v3"
DEFAULT_CONTAINER_NAME = "azure-batch-executor"
DEFAULT_JOB_ID_PREFIX = "abx"
DEFAULT_PYTHON_COMMAND = "python3"
DEFAULT_POLL_INTERVAL = 0.7  # seconds: the cap of the poller's backoff, the tick while results flow
MIN_POLL_INTERVAL = 0.1  # seconds: the poller's first tick after new tasks, doubling to the cap
# Seconds: the cap of the idle backoff (while nothing completes, ticks come further apart,
# up to this), on Azure and on the local stack; the max_poll_interval setting overrides it.
DEFAULT_MAX_POLL_INTERVAL = 10.0
LOCAL_MAX_POLL_INTERVAL = 2.0
# Tasks queued at Batch beyond max_workers, per worker (the queue_depth setting's default).
# A task added when a slot frees waits the scheduling latency L (2-5 s on Azure, as the
# emulator models it) before it may start, and the queue of Q tasks lasts Q x D / S seconds
# (tasks of D seconds on S slots): Q >= S x L / D keeps every slot busy. With D = 2 s and
# L = 5 s that is 2.5 per slot (benchmarks/README.md, "Slots never idle").
QUEUE_DEPTH_PER_WORKER = 3
# map(chunksize=None): seconds a task should run (the chunk_target setting's defaults). On
# Azure a task's fixed cost is seconds (add, schedule, start, transfer: benchmarks/README.md,
# "Chunks"), so 30 s keeps it under a tenth; on the local stack it is ~0.1 s.
DEFAULT_CHUNK_TARGET = 30.0
LOCAL_CHUNK_TARGET = 1.0
HEALTH_CHECK_INTERVAL = 10.0  # seconds between checks that the job and pool still exist
JOB_MAX_WALL_CLOCK_DAYS = 6  # the default of the job's wall-clock limit (job_max_wall_clock) ...
SAS_EXPIRY_MARGIN = 3600.0  # ... the task SAS tokens outlive it by this many seconds ...
SAS_MAX_DAYS = 7  # ... and by no more than this (a user delegation key: <= 7 days)
STDERR_TAIL_BYTES = 2048  # how much of a failed task's stderr goes into TaskFailedError
IO_THREADS = 16  # bounded pool for uploads, collection adds and downloads
DEFAULT_TASK_RETENTION = 3600.0  # seconds a completed task's directory stays on its node
DEFAULT_BLOB_RETENTION = 7 * 86400.0  # seconds a job's blobs stay after its executor ended
SWEEP_LIMIT = 20  # expired job prefixes one executor deletes, at most, when it starts
# --- pools the executor creates, and the wait for their nodes ------------------------------
POOL_CREATOR = ("created-by", "azure-batch-executor")  # the metadata entry of its pools
POOL_MAX_NODES_KEY = "abx-max-nodes"  # metadata: the most nodes its autoscale formula asks
# The autoscale formula runs every 5 minutes, the service's minimum ("Create an automatic
# formula for scaling compute nodes in a Batch pool",
# https://learn.microsoft.com/azure/batch/batch-automatic-scaling).
AUTOSCALE_INTERVAL = "PT5M"
DEFAULT_IDLE_TIMEOUT = 600.0  # seconds without a pending task before the pool goes to 0
MIN_IDLE_TIMEOUT = 60.0  # two of Batch's 30 s samples of the pending tasks
# Seconds the futures wait for a usable node: the 5-minute autoscale interval plus Batch's
# default resize timeout, 15 minutes (REST "Pools - Resize Pool", `resizeTimeout`), in which
# nodes usually have been allocated and booted.
DEFAULT_POOL_START_TIMEOUT = 1200.0
DEFAULT_POOL_STATUS_INTERVAL = 60.0  # seconds between two status lines while waiting
