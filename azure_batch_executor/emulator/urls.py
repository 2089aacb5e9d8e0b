"""Route table of the emulated Batch REST API (docs/dev/emulator-rest.md, "Operations").

Role: map (method, path) to a route name (the SDK method's name, also the name of the
`responses` handler and of the request counter) and the query options that route
accepts. Paths are matched on percent-*decoded* segments (the SDK encodes ids with no
safe characters, so a file path `wd/out.txt` arrives as `wd%2Fout.txt`); a trailing
`{name+}` parameter takes the rest of the path. Known SDK operations the emulator does
not emulate map to `not_emulated`.

Imports: the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

LIST = ("maxresults", "$filter", "$select", "$expand", "$skiptoken")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    name: str
    query: tuple[str, ...] = ()

    @property
    def segments(self) -> list[str]:
        return self.pattern.split("/")


ROUTES: tuple[Route, ...] = (
    # pools
    Route("POST", "pools", "create_pool"),
    Route("GET", "pools", "list_pools", LIST),
    Route("GET", "pools/{poolId}", "get_pool", ("$select", "$expand")),
    Route("HEAD", "pools/{poolId}", "pool_exists"),
    Route("PATCH", "pools/{poolId}", "update_pool"),
    Route("DELETE", "pools/{poolId}", "delete_pool"),
    Route("POST", "pools/{poolId}/resize", "resize_pool"),
    Route("POST", "pools/{poolId}/stopresize", "stop_pool_resize"),
    Route("POST", "pools/{poolId}/enableautoscale", "enable_pool_auto_scale"),
    Route("POST", "pools/{poolId}/disableautoscale", "disable_pool_auto_scale"),
    Route("POST", "pools/{poolId}/evaluateautoscale", "evaluate_pool_auto_scale"),
    Route("GET", "nodecounts", "list_pool_node_counts", ("maxresults", "$filter", "$skiptoken")),
    # nodes
    Route("GET", "pools/{poolId}/nodes", "list_nodes", ("maxresults", "$filter", "$select",
                                                         "$skiptoken")),
    Route("GET", "pools/{poolId}/nodes/{nodeId}", "get_node", ("$select",)),
    Route("POST", "pools/{poolId}/nodes/{nodeId}/reboot", "reboot_node"),
    Route("GET", "pools/{poolId}/nodes/{nodeId}/files", "list_node_files",
          ("recursive", "maxresults", "$filter", "$skiptoken")),
    Route("GET", "pools/{poolId}/nodes/{nodeId}/files/{filePath+}", "download_node_file"),
    Route("HEAD", "pools/{poolId}/nodes/{nodeId}/files/{filePath+}", "get_node_file_properties"),
    Route("DELETE", "pools/{poolId}/nodes/{nodeId}/files/{filePath+}", "delete_node_file",
          ("recursive",)),
    # jobs
    Route("POST", "jobs", "create_job"),
    Route("GET", "jobs", "list_jobs", LIST),
    Route("GET", "jobs/{jobId}", "get_job", ("$select", "$expand")),
    Route("PATCH", "jobs/{jobId}", "update_job"),
    Route("PUT", "jobs/{jobId}", "replace_job"),
    Route("DELETE", "jobs/{jobId}", "delete_job", ("force",)),
    Route("POST", "jobs/{jobId}/disable", "disable_job"),
    Route("POST", "jobs/{jobId}/enable", "enable_job"),
    Route("POST", "jobs/{jobId}/terminate", "terminate_job", ("force",)),
    Route("GET", "jobs/{jobId}/taskcounts", "get_job_task_counts"),
    Route("GET", "jobs/{jobId}/jobpreparationandreleasetaskstatus",
          "list_job_preparation_and_release_task_status",
          ("maxresults", "$filter", "$select", "$skiptoken")),
    # tasks
    Route("POST", "jobs/{jobId}/tasks", "create_task"),
    Route("POST", "jobs/{jobId}/addtaskcollection", "create_task_collection"),
    Route("GET", "jobs/{jobId}/tasks", "list_tasks", LIST),
    Route("GET", "jobs/{jobId}/tasks/{taskId}", "get_task", ("$select", "$expand")),
    Route("PUT", "jobs/{jobId}/tasks/{taskId}", "replace_task"),
    Route("DELETE", "jobs/{jobId}/tasks/{taskId}", "delete_task"),
    Route("POST", "jobs/{jobId}/tasks/{taskId}/terminate", "terminate_task"),
    Route("POST", "jobs/{jobId}/tasks/{taskId}/reactivate", "reactivate_task"),
    Route("GET", "jobs/{jobId}/tasks/{taskId}/subtasksinfo", "list_subtasks", ("$select",)),
    # task files
    Route("GET", "jobs/{jobId}/tasks/{taskId}/files", "list_task_files",
          ("recursive", "maxresults", "$filter", "$skiptoken")),
    Route("GET", "jobs/{jobId}/tasks/{taskId}/files/{filePath+}", "download_task_file"),
    Route("HEAD", "jobs/{jobId}/tasks/{taskId}/files/{filePath+}", "get_task_file_properties"),
    Route("DELETE", "jobs/{jobId}/tasks/{taskId}/files/{filePath+}", "delete_task_file",
          ("recursive",)),
)

# Resource families the SDK can reach but the emulator does not emulate.
NOT_EMULATED_ROOTS = frozenset({
    "applications", "jobschedules", "poolusagemetrics", "supportedimages", "certificates",
    "lifetimepoolstats", "lifetimejobstats",
})
NOT_EMULATED_ACTIONS = frozenset({
    "removenodes", "updateproperties", "upgradeos", "users", "reimage", "deallocate", "start",
    "disablescheduling", "enablescheduling", "remoteloginsettings", "uploadbatchservicelogs",
    "extensions", "redeploy",
})


@dataclass(frozen=True)
class Match:
    route: Route | None  # None: the path exists but not for this method, or not emulated
    params: dict[str, str]
    name: str  # route name, "not_emulated", "method_not_allowed" or "unknown"


def split_path(raw_path: str) -> list[str]:
    """Raw (percent-encoded) path -> decoded segments, empty segments dropped."""
    return [unquote(s) for s in raw_path.split("/") if s]


def _match_pattern(pattern: list[str], parts: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for i, seg in enumerate(pattern):
        if seg.startswith("{") and seg.endswith("+}"):
            if i >= len(parts):
                return None
            params[seg[1:-2]] = "/".join(parts[i:])
            return params
        if i >= len(parts):
            return None
        if seg.startswith("{"):
            params[seg[1:-1]] = parts[i]
        elif seg != parts[i]:
            return None
    return params if len(parts) == len(pattern) else None


def match(method: str, raw_path: str) -> Match:
    parts = split_path(raw_path)
    path_exists = False
    for route in ROUTES:
        params = _match_pattern(route.segments, parts)
        if params is None:
            continue
        if route.method == method:
            return Match(route, params, route.name)
        path_exists = True
    if path_exists:
        return Match(None, {}, "method_not_allowed")
    if parts and (parts[0] in NOT_EMULATED_ROOTS
                  or any(p.lower() in NOT_EMULATED_ACTIONS for p in parts[1:])):
        return Match(None, {}, "not_emulated")
    return Match(None, {}, "unknown")
