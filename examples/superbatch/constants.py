# constants.py
GLOBAL_CONFIG_FILE = "config.pickle"
WORKER_INPUTS_FILE = "inputs.pickle"
WORKER_OUTPUTS_FILE = "outputs.pickle"
LOCAL_INPUTS_PATTERN = "iter_{}_inputs.pickle"
LOCAL_OUTPUTS_PATTERN = "iter_{}_outputs.pickle"
