"""Drive the Batch emulator with the az CLI's batch commands, as a user types them.

Runs in the CLI's own virtualenv (`pip install azure-cli`), started by
`test_compat_clients.py`: `python drive_az_cli.py URL ACCOUNT KEY WORKDIR`. The commands
run in this one process through `azure.cli.core.get_default_cli().invoke` (one CLI start,
not one per command), with their configuration in WORKDIR. Prints one JSON object: the CLI
version and, per command, its name, whether it succeeded and the error otherwise.

Imports: the standard library and azure-cli only (not the package under test).
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

POOL, JOB = "compatcli-pool", "compatcli-job"
steps: list[dict[str, object]] = []


def main() -> None:
    url, account, key, workdir = sys.argv[1:5]
    os.environ["AZURE_CONFIG_DIR"] = str(Path(workdir) / "azure-config")
    os.environ["AZURE_CORE_COLLECT_TELEMETRY"] = "false"
    os.environ["AZURE_CORE_NO_COLOR"] = "true"
    from azure.cli.core import __version__ as cli_version
    from azure.cli.core import get_default_cli

    auth = ["--account-name", account, "--account-key", key, "--account-endpoint", url]

    def az(name: str, *args: str) -> object:
        out, err = io.StringIO(), io.StringIO()
        stderr, sys.stderr = sys.stderr, err
        try:
            code = get_default_cli().invoke(["batch", *args, *auth, "--output", "json"],
                                            out_file=out)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            sys.stderr = stderr
        ok = code == 0
        steps.append({"op": name, "ok": ok, "error": "" if ok else err.getvalue()[-600:]})
        text = out.getvalue().strip()
        return json.loads(text) if ok and text else None

    def wait(name: str, probe, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if probe():
                steps.append({"op": name, "ok": True})
                return
            time.sleep(0.1)
        steps.append({"op": name, "ok": False, "error": "condition not reached"})

    tasks_file = Path(workdir) / "tasks.json"
    tasks_file.write_text(json.dumps([
        {"id": f"t{i:03d}", "commandLine": "/bin/sh -c 'exit 0'"} for i in range(120)]))

    az("pool create", "pool", "create", "--id", POOL, "--vm-size", "standard_d2s_v3",
       "--image", "canonical:0001-com-ubuntu-server-jammy:22_04-lts",
       "--node-agent-sku-id", "batch.node.ubuntu 22.04", "--target-dedicated-nodes", "1",
       "--task-slots-per-node", "2", "--start-task-command-line", "/bin/sh -c 'echo started'",
       "--start-task-wait-for-success")
    az("pool show", "pool", "show", "--pool-id", POOL)
    az("pool list", "pool", "list", "--filter", f"id eq '{POOL}'", "--select", "id,state")
    az("pool set", "pool", "set", "--pool-id", POOL, "--metadata", "k=v")
    wait("pool steady", lambda: (az("pool show (poll)", "pool", "show", "--pool-id", POOL)
                                 or {}).get("allocationState") == "steady")
    az("pool node-counts list", "pool", "node-counts", "list")
    nodes = az("node list", "node", "list", "--pool-id", POOL) or []
    node_id = nodes[0]["id"] if nodes else None
    if node_id:
        az("node show", "node", "show", "--pool-id", POOL, "--node-id", node_id)
    az("job create", "job", "create", "--id", JOB, "--pool-id", POOL, "--priority", "10")
    az("job show", "job", "show", "--job-id", JOB)
    az("job list", "job", "list", "--filter", "startswith(id,'compatcli-')")
    az("job set", "job", "set", "--job-id", JOB, "--priority", "20")
    az("task create", "task", "create", "--job-id", JOB, "--task-id", "single",
       "--command-line", "/bin/sh -c 'echo hello > out.txt'")
    az("task create --json-file (120 tasks)", "task", "create", "--job-id", JOB,
       "--json-file", str(tasks_file))
    az("task show", "task", "show", "--job-id", JOB, "--task-id", "single")
    az("task list", "task", "list", "--job-id", JOB, "--select", "id,state")
    wait("tasks completed", lambda: ((az("job task-counts show (poll)", "job", "task-counts",
                                         "show", "--job-id", JOB) or {})
                                     .get("taskCounts", {}).get("completed") == 121))
    az("job task-counts show", "job", "task-counts", "show", "--job-id", JOB)
    az("task file list", "task", "file", "list", "--job-id", JOB, "--task-id", "single",
       "--recursive")
    # `task file show` / `node file show` are left out: azure-cli 2.91 fails on its own
    # output (AttributeError in the batch module's transformer) after the service's 200.
    az("task file download", "task", "file", "download", "--job-id", JOB, "--task-id",
       "single", "--file-path", "wd/out.txt", "--destination", str(Path(workdir) / "out.txt"))
    az("task file delete", "task", "file", "delete", "--job-id", JOB, "--task-id", "single",
       "--file-path", "wd/out.txt", "--yes")
    if node_id:
        az("node file list", "node", "file", "list", "--pool-id", POOL, "--node-id", node_id)
    az("task create (long)", "task", "create", "--job-id", JOB, "--task-id", "long",
       "--command-line", "/bin/sh -c 'sleep 30'")
    az("task stop", "task", "stop", "--job-id", JOB, "--task-id", "long")
    az("task reactivate", "task", "reactivate", "--job-id", JOB, "--task-id", "long")
    az("task delete", "task", "delete", "--job-id", JOB, "--task-id", "single", "--yes")
    az("job stop", "job", "stop", "--job-id", JOB, "--terminate-reason", "done")
    az("job delete", "job", "delete", "--job-id", JOB, "--yes")
    az("pool resize", "pool", "resize", "--pool-id", POOL, "--target-dedicated-nodes", "0")
    az("pool delete", "pool", "delete", "--pool-id", POOL, "--yes")
    print(json.dumps({"client": f"azure-cli {cli_version}", "steps": steps}))


if __name__ == "__main__":
    main()
