# worker.py
import joblib
import numpy as np
from constants import GLOBAL_CONFIG_FILE, WORKER_INPUTS_FILE, WORKER_OUTPUTS_FILE

# read the designated global config and iteration parameter files
global_config = joblib.load(GLOBAL_CONFIG_FILE)
parameters = joblib.load(WORKER_INPUTS_FILE)

# DO WORK
np.random.seed(parameters["seed"])
out = sum( np.power(np.random.uniform(size=global_config["size"]), global_config["power"]))

# write the results to the designated output file
joblib.dump(out, WORKER_OUTPUTS_FILE)
