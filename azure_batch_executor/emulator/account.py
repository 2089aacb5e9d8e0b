"""Scripting what a real account meets: throttling, quotas, allocation trouble, node trouble.

Role: `AccountControls` is the part of `BatchEmulator` (a base class) that tests call to
script the account, and `admin_route` exposes the same operations on the admin API
(`admin.AdminApi` hands it `/_emulator/...` requests first). Everything is off by default
and `reset()` puts it back as the emulator was started:

    throttle(seconds, status=429|503, retry_after=, operations=, method=, path_contains=)
        POST   /_emulator/throttle        {seconds, status, code, retry_after, operations,
                                            method, path_contains}
        GET    /_emulator/throttle        what was refused, per (method, route); throttles
        DELETE /_emulator/throttle        stop throttling, counts reset
    set_quotas(pools=, active_jobs=, dedicated_cores=, low_priority_cores=), quotas()
        POST   /_emulator/quotas          {...}: the given ones change, null = unlimited
        GET    /_emulator/quotas          each quota with its use, scripted trouble
    fail_allocations(count, pool_id=, code=AllocationFailed|AllocationTimedout, message=)
        POST   /_emulator/allocation-failures   {count, pool_id, code, message}
    unusable_on_boot(count, pool_id=)
        POST   /_emulator/unusable-boots  {count, pool_id}
    make_node_unusable(pool_id, node_id), reboot_node(pool_id, node_id)
        POST   /_emulator/pools/{poolId}/nodes/{nodeId}/unusable | /reboot
    set_autoscale_min_interval(seconds), evaluate_autoscale_now(pool_id)
        POST   /_emulator/autoscale       {min_interval}: seconds standing for PT5M, or null
        POST   /_emulator/pools/{poolId}/evaluateautoscale   run the formula now
    set_scheduling_latency(lo, hi), scheduling_latency()
        POST   /_emulator/scheduling-latency  {min, max}: seconds from entering `active` to
                                               the first chance of a slot; answers as GET
        GET    /_emulator/scheduling-latency  {min, max}

The behaviours and their sources are in docs/dev/emulator-rest.md ("What real accounts
meet", "Autoscale", "Scheduling latency"); the model side is `quotas.py`, `throttling.py`,
`models/account_ops.py` and `models/autoscale_ops.py`.

Imports: the standard library and sibling emulator modules (`exceptions`, `models`,
`quotas`, `throttling`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from . import exceptions as exc
from .models import BatchBackend
from .models.core import latency_range
from .quotas import ALLOCATION_CODES, Quotas, Scripted, cores_in_use
from .throttling import Throttler

QUOTA_NAMES = ("pools", "active_jobs", "dedicated_cores", "low_priority_cores")
NO_CONTENT = object()  # an admin route's answer without a body (204)


class AccountControls:
    """BatchEmulator's methods that script the account (see the module docstring)."""

    _throttler: Throttler
    _account_defaults: dict[str, Any]  # quotas, autoscale speed and scheduling latency

    def _backend(self) -> BatchBackend:
        raise NotImplementedError

    # --- throttling ------------------------------------------------------------------------

    def throttle(self, seconds: float, *, status: int = 429, code: str | None = None,
                 retry_after: float | None = None, operations: Iterable[str] = (),
                 method: str = "*", path_contains: str = "") -> None:
        """For `seconds`, refuse matching requests with 429 `TooManyRequests` (or 503
        `ServerBusy`), `Retry-After` only when given. `operations`: route names such as
        ``create_task_collection`` (all when empty); `method` and `path_contains` narrow
        further. Mind the SDK: POST/PATCH are not retried on 429 without `Retry-After`."""
        self._throttler.add(seconds, status=status, code=code, retry_after=retry_after,
                            operations=operations, method=method, path_contains=path_contains)

    def throttling(self) -> dict[str, Any]:
        """{"refused": n, "counts": [{method, route, count}], "active": [throttles]}."""
        return self._throttler.stats()

    def clear_throttling(self) -> None:
        self._throttler.clear()

    # --- quotas ----------------------------------------------------------------------------

    def set_quotas(self, **quotas: int | None) -> dict[str, Any]:
        """Change account quotas (``pools``, ``active_jobs``, ``dedicated_cores``,
        ``low_priority_cores``); None removes one. Returns `quotas()`."""
        unknown = sorted(set(quotas) - set(QUOTA_NAMES))
        if unknown:
            raise ValueError(f"unknown quota(s) {', '.join(unknown)}; known: "
                             f"{', '.join(QUOTA_NAMES)}")
        for name, value in quotas.items():
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"quota {name} must be an integer >= 0 or None, got {value!r}")
        backend = self._backend()
        with backend.op():
            settings = backend.settings
            for name, value in quotas.items():
                if name == "active_jobs":
                    settings.max_active_jobs = value
                else:
                    setattr(settings.quotas, name, value)
        return self.quotas()

    def quotas(self) -> dict[str, Any]:
        """Each quota with what is used, and the scripted trouble still pending."""
        backend = self._backend()
        with backend.op(wake=False):
            settings, q = backend.settings, backend.settings.quotas
            return {
                "pools": {"quota": q.pools, "used": len(backend.pools)},
                "active_jobs": {"quota": settings.max_active_jobs,
                                "used": sum(j.state != "completed"
                                            for j in backend.jobs.values())},
                "dedicated_cores": {"quota": q.dedicated_cores,
                                    "used": cores_in_use(backend.pools, True)},
                "low_priority_cores": {"quota": q.low_priority_cores,
                                       "used": cores_in_use(backend.pools, False)},
                "allocation_failures": [vars(s) for s in q.allocation_failures],
                "unusable_boots": [vars(s) for s in q.unusable_boots]}

    def fail_allocations(self, count: int = 1, *, pool_id: str | None = None,
                         code: str = "AllocationFailed", message: str | None = None) -> None:
        """The next `count` nodes resizes try to add (to `pool_id`, or any pool) are not
        allocated: the resize ends `steady` short of its target, with a resize error."""
        if code not in ALLOCATION_CODES:
            raise ValueError(f"code must be one of {', '.join(ALLOCATION_CODES)}, got {code!r}")
        self._script("allocation_failures", Scripted(_count(count), pool_id, code, message))

    def unusable_on_boot(self, count: int = 1, *, pool_id: str | None = None) -> None:
        """The next `count` nodes to finish booting (in `pool_id`, or any) go `unusable`."""
        self._script("unusable_boots", Scripted(_count(count), pool_id, "unusable"))

    def _script(self, queue: str, entry: Scripted) -> None:
        backend = self._backend()
        with backend.op():
            getattr(backend.settings.quotas, queue).append(entry)

    # --- node trouble ----------------------------------------------------------------------

    def make_node_unusable(self, pool_id: str, node_id: str) -> None:
        """Node -> unusable: its running tasks are requeued; it gets no tasks until the
        service reboots it (`reboot_node`) or a resize removes it."""
        backend = self._backend()
        with backend.op():
            backend.make_node_unusable(pool_id, node_id)

    def reboot_node(self, pool_id: str, node_id: str) -> None:
        """The service reboots the node (also an unusable one): rebooting -> starting ->
        start task -> idle; running tasks are requeued."""
        backend = self._backend()
        with backend.op():
            backend.service_reboot_node(pool_id, node_id)

    # --- autoscale -------------------------------------------------------------------------

    def set_autoscale_min_interval(self, seconds: float | None) -> None:
        """Emulator seconds that stand for the service's 5-minute minimum autoscale
        interval: all autoscale time (intervals, samples, `TimeInterval_*`, the 30 s between
        enable calls) is scaled by it. None: real time."""
        if seconds is not None and not seconds > 0:
            raise ValueError(f"autoscale_min_interval must be > 0 seconds or None, got {seconds}")
        backend = self._backend()
        with backend.op():
            backend.settings.autoscale_min_interval = seconds
            backend.reschedule_autoscale(backend.now())

    def evaluate_autoscale_now(self, pool_id: str) -> None:
        """Take a sample and run the pool's autoscale formula now (the schedule restarts)."""
        backend = self._backend()
        with backend.op():
            backend.evaluate_autoscale_now(pool_id)

    # --- scheduling latency ----------------------------------------------------------------

    def set_scheduling_latency(self, lo: float, hi: float) -> dict[str, float]:
        """From now on a task that enters `active` (added, retried, requeued) waits a
        uniform draw of `lo`..`hi` seconds before it may be placed; (0, 0) turns it off.
        Tasks already waiting keep their draw. Returns `scheduling_latency()`."""
        latency = latency_range((lo, hi))
        backend = self._backend()
        with backend.op():
            backend.settings.scheduling_latency = latency
        return self.scheduling_latency()

    def scheduling_latency(self) -> dict[str, float]:
        """{"min": seconds, "max": seconds}: the scheduling latency in force."""
        backend = self._backend()
        with backend.op(wake=False):
            lo, hi = backend.settings.scheduling_latency
        return {"min": lo, "max": hi}

    # --- reset -----------------------------------------------------------------------------

    def _reset_account(self) -> None:
        """Throttling off; quotas, autoscale speed and scheduling latency (its random draws
        reseeded) as the emulator was started."""
        self._throttler.clear()
        backend = self._backend()
        defaults = self._account_defaults
        with backend.op():
            settings = backend.settings
            settings.quotas = Quotas(pools=defaults["pool_quota"],
                                     dedicated_cores=defaults["core_quota"],
                                     low_priority_cores=defaults["low_priority_core_quota"])
            settings.max_active_jobs = defaults["max_active_jobs"]
            settings.autoscale_min_interval = defaults["autoscale_min_interval"]
            settings.scheduling_latency = defaults["scheduling_latency"]
            backend.latency_rng.seed(defaults["scheduling_seed"])


def _count(count: int) -> int:
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be an integer >= 1, got {count!r}")
    return count


class AccountEmulator(Protocol):
    """What `admin_route` needs: `AccountControls`' methods."""

    def throttle(self, seconds: float, *, status: int = 429, code: str | None = None,
                 retry_after: float | None = None, operations: Iterable[str] = (),
                 method: str = "*", path_contains: str = "") -> None: ...
    def throttling(self) -> dict[str, Any]: ...
    def clear_throttling(self) -> None: ...
    def set_quotas(self, **quotas: int | None) -> dict[str, Any]: ...
    def quotas(self) -> dict[str, Any]: ...
    def fail_allocations(self, count: int = 1, *, pool_id: str | None = None,
                         code: str = "AllocationFailed", message: str | None = None) -> None: ...
    def unusable_on_boot(self, count: int = 1, *, pool_id: str | None = None) -> None: ...
    def make_node_unusable(self, pool_id: str, node_id: str) -> None: ...
    def reboot_node(self, pool_id: str, node_id: str) -> None: ...
    def set_autoscale_min_interval(self, seconds: float | None) -> None: ...
    def evaluate_autoscale_now(self, pool_id: str) -> None: ...
    def set_scheduling_latency(self, lo: float, hi: float) -> dict[str, float]: ...
    def scheduling_latency(self) -> dict[str, float]: ...


def admin_route(emu: AccountEmulator, method: str, parts: list[str],
                body: Callable[[], dict[str, Any]]) -> Any:
    """The answer to an account admin route (a JSON document, or `NO_CONTENT`), or None
    when `parts` (the path after `_emulator`) is not one of them."""
    route = (method, "/".join(parts))
    try:
        if route == ("GET", "throttle"):
            return emu.throttling()
        if route == ("POST", "throttle"):
            b = body()
            emu.throttle(float(b["seconds"]), status=int(b.get("status", 429)),
                         code=b.get("code"), retry_after=_number(b.get("retry_after")),
                         operations=list(b.get("operations") or ()),
                         method=str(b.get("method", "*")),
                         path_contains=str(b.get("path_contains", "")))
            return NO_CONTENT
        if route == ("DELETE", "throttle"):
            emu.clear_throttling()
            return NO_CONTENT
        if route == ("GET", "quotas"):
            return emu.quotas()
        if route == ("POST", "quotas"):
            return emu.set_quotas(**{k: (None if v is None else int(v))
                                     for k, v in body().items()})
        if route == ("POST", "allocation-failures"):
            b = body()
            emu.fail_allocations(int(b.get("count", 1)), pool_id=b.get("pool_id"),
                                 code=str(b.get("code", "AllocationFailed")),
                                 message=b.get("message"))
            return NO_CONTENT
        if route == ("POST", "unusable-boots"):
            b = body()
            emu.unusable_on_boot(int(b.get("count", 1)), pool_id=b.get("pool_id"))
            return NO_CONTENT
        if route == ("POST", "autoscale"):
            emu.set_autoscale_min_interval(_number(body().get("min_interval")))
            return NO_CONTENT
        if route == ("GET", "scheduling-latency"):
            return emu.scheduling_latency()
        if route == ("POST", "scheduling-latency"):
            b = body()
            return emu.set_scheduling_latency(float(b["min"]), float(b.get("max", b["min"])))
    except (KeyError, TypeError, ValueError) as error:
        raise exc.InvalidRequestBody(f"Bad admin request {method} /_emulator/{route[1]}: "
                                     f"{error}. See emulator/account.py for the fields.") from None
    if method == "POST" and len(parts) == 5 and parts[0] == "pools" and parts[2] == "nodes":
        if parts[4] == "unusable":
            emu.make_node_unusable(parts[1], parts[3])
            return NO_CONTENT
        if parts[4] == "reboot":
            emu.reboot_node(parts[1], parts[3])
            return NO_CONTENT
    if method == "POST" and len(parts) == 3 and parts[0] == "pools" \
            and parts[2] == "evaluateautoscale":
        emu.evaluate_autoscale_now(parts[1])
        return NO_CONTENT
    return None


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
