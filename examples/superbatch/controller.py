# controller.py
# The SuperBatch walkthrough's controller, ported. Changes from the seed: the import of
# super_batch; COMMAND_LINE (the local stack has no container engine, so the worker's code
# travels as resource files and runs as `python3 worker.py` in the task's directory, in the
# image too); the serial loop at the end, to check the sum.
import datetime
import os
import pathlib

import joblib
import numpy as np
from constants import (
    GLOBAL_CONFIG_FILE,
    LOCAL_INPUTS_PATTERN,
    LOCAL_OUTPUTS_PATTERN,
    WORKER_INPUTS_FILE,
    WORKER_OUTPUTS_FILE,
)

from azure_batch_executor import superbatch as super_batch

# CONSTANTS
_TIMESTAMP: str = datetime.datetime.utcnow().strftime("%Y%m%d%H%M%S")
BATCH_DIRECTORY: str = os.path.expanduser("~/temp/super-batch-test")
NAME: str = "superbatchtest"
pathlib.Path(BATCH_DIRECTORY).mkdir(parents=True, exist_ok=True)

batch_client = super_batch.client(
    POOL_ID=NAME,
    JOB_ID=NAME + _TIMESTAMP,
    POOL_VM_SIZE="STANDARD_A1_v2",
    POOL_NODE_COUNT=0,
    POOL_LOW_PRIORITY_NODE_COUNT=2,
    DELETE_POOL_WHEN_DONE=False,
    BLOB_CONTAINER_NAME=NAME,
    BATCH_DIRECTORY=BATCH_DIRECTORY,
    DOCKER_IMAGE="myusername/sum-of-powers:v1",
    COMMAND_LINE="python3 worker.py",
)

# SHIP THE WORKER'S CODE (the Dockerfile also bakes it into the image)
HERE = os.path.dirname(os.path.abspath(__file__))
code_resources = [
    batch_client.build_resource_file(os.path.join(HERE, name), name)
    for name in ("worker.py", "constants.py")
]

# BUILD THE GLOBAL PARAMETER RESOURCE
global_parameters = {"power": 3, "size": (10,)}
joblib.dump( global_parameters, os.path.join(BATCH_DIRECTORY, GLOBAL_CONFIG_FILE))
global_parameters_resource = batch_client.build_resource_file(
    GLOBAL_CONFIG_FILE, GLOBAL_CONFIG_FILE
)

# BUILD THE BATCH TASKS
SEEDS = (1, 12, 123, 1234)
for i, seed in enumerate(SEEDS):
    # CREATE THE ITERATION PAREMTERS RESOURCE
    param_file = LOCAL_INPUTS_PATTERN.format(i)
    joblib.dump({"seed": seed}, os.path.join(BATCH_DIRECTORY, param_file))
    input_resource = batch_client.build_resource_file(param_file, WORKER_INPUTS_FILE)

    # CREATE AN OUTPUT RESOURCE
    output_resource = batch_client.build_output_file(
        WORKER_OUTPUTS_FILE, LOCAL_OUTPUTS_PATTERN.format(i)
    )

    # CREATE A TASK
    batch_client.add_task(
        [input_resource, global_parameters_resource, *code_resources], [output_resource]
    )

# RUN THE BATCH JOB
batch_client.run()

# AGGREGATE INTERMEDIATE STATISTICS
out = [None] * len(SEEDS)
for i in range(len(SEEDS)):
    fpath = os.path.join(BATCH_DIRECTORY, LOCAL_OUTPUTS_PATTERN.format(i))
    out[i] = joblib.load(fpath)
print("batch sum: ", sum(out))

# THE SEED'S ORIGINAL SERIAL LOOP, FOR COMPARISON
POWER = 3
SIZE = (10,)
serial = np.zeros((len(SEEDS),))
for i, seed in enumerate(SEEDS):
    np.random.seed(seed)
    tmp = np.random.uniform(size=SIZE)
    serial[i] = sum(np.power(tmp, POWER))
print("serial sum:", sum(serial))
