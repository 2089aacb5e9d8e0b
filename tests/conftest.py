"""Test-wide settings: loopback traffic never goes through a proxy; executors prepare no
node environment unless a test asks (tests/integration/nodeenv/ does, on bare nodes):
the suites' nodes stand in for an image of the client's environment; and no progress bar
unless a test asks (a `progress=` setting wins over the variable)."""

import os

os.environ.setdefault("AZURE_BATCH_EXECUTOR_ENVIRONMENT", "none")
os.environ.setdefault("AZURE_BATCH_EXECUTOR_LOCAL_NODE_IMAGE", "client")
os.environ.setdefault("AZURE_BATCH_EXECUTOR_PROGRESS", "false")  # no bar unless a test asks

for _name in ("NO_PROXY", "no_proxy"):
    _hosts = [h for h in os.environ.get(_name, "").split(",") if h]
    for _host in ("127.0.0.1", "localhost"):
        if _host not in _hosts:
            _hosts.append(_host)
    os.environ[_name] = ",".join(_hosts)
