"""The environment for a user's script run by a test in a fresh interpreter.

No Azure or registry variables (a developer's shell must not send it to a real account,
so it starts its own local stack), loopback never through a proxy, and this checkout
importable. `extra` is added last (e.g. a test's own local stack settings).
"""

from __future__ import annotations

import os
from pathlib import Path

from azure_batch_executor.config import ENV_NAMES

ROOT = Path(__file__).resolve().parents[2]


def script_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ENV_NAMES.values() and not k.startswith("REGISTRY_")}
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name, ""), "127.0.0.1", "localhost"]))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env
