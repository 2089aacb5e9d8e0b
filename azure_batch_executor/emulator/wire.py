"""Wire formats shared by every emulator layer: times, durations, ETags, ids, enum casing.

Role: the one place that knows how the Batch REST API spells a date (ISO 8601 in bodies
with up to 7 fractional digits, trailing zeros dropped; RFC 1123 in headers), a duration
(ISO 8601, "unbounded" as the service's magic value), an ETag (unquoted ``0x8D...``) and
which enum strings the service emits in which casing (docs/dev/emulator-rest.md,
"Conventions").

Imports: the standard library only.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import itertools
import json
import re
from typing import Any

JSON_CONTENT_TYPE = "application/json; odata=minimalmetadata"

# --- times -----------------------------------------------------------------------------

_UTC = _dt.timezone.utc


_last_second: tuple[_dt.datetime | None, str] = (None, "")  # the last whole second formatted


def iso(ts: float) -> str:
    """Epoch seconds -> ``2025-01-01T00:00:00.123456Z``, as the service writes body times.

    The service writes .NET's ``yyyy-MM-ddTHH:mm:ss.FFFFFFFZ``: up to 7 fractional digits
    with trailing zeros dropped, and no fraction at all on a whole second (recorded
    "2023-10-17T08:48:43.423611Z" next to "2023-10-17T08:48:43.7161816Z":
    azure-sdk-for-python sdk/batch/azure-batch/tests/recordings/
    test_batch.pyTestBatchtest_batch_jobs[sync].json). Our clock has microseconds, so at
    most 6 digits.
    """
    global _last_second
    d = _dt.datetime.fromtimestamp(ts, tz=_UTC)
    micros = d.microsecond
    whole = d.replace(microsecond=0) if micros else d
    last = _last_second
    if last[0] != whole:  # strftime once per second: a burst of adds shares the prefix
        last = _last_second = (whole, whole.strftime("%Y-%m-%dT%H:%M:%S"))
    if not micros:
        return f"{last[1]}Z"
    return f"{last[1]}.{f'{micros:06d}'.rstrip('0')}Z"


def iso7(ts: float) -> str:
    """Epoch seconds -> ``2025-01-01T00:00:00.1234560Z``: the fixed 7 digits of the
    ``Time:`` line of error messages (recorded "Time:2024-01-05T03:23:18.4262750Z":
    azure-sdk-for-js sdk/batch/batch-rest/recordings/node/job_operations_test/
    recording_should_fail_to_job_preprelease_status.json)."""
    d = _dt.datetime.fromtimestamp(ts, tz=_UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond:06d}0Z"


def rfc1123(ts: float) -> str:
    """Epoch seconds -> ``Tue, 24 Nov 2026 06:37:44 GMT`` (headers)."""
    return email.utils.formatdate(ts, usegmt=True)


def parse_rfc1123(value: str) -> float | None:
    """RFC 1123 header value -> epoch seconds, or None when unparseable."""
    try:
        d = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if d is None:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=_UTC)
    return d.timestamp()


_ISO_DT = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)


def parse_iso(value: str) -> _dt.datetime | None:
    """ISO 8601 date-time (any fraction length, ``Z`` or offset; no zone = UTC) or None."""
    m = _ISO_DT.match(value.strip())
    if not m:
        return None
    year, month, day, hh, mm, ss, frac, zone = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    tz = _UTC
    if zone and zone.upper() != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        tz = _dt.timezone(sign * _dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        return _dt.datetime(
            int(year), int(month), int(day), int(hh or 0), int(mm or 0), int(ss or 0), micro,
            tzinfo=tz,
        )
    except ValueError:
        return None


# --- durations ---------------------------------------------------------------------------

UNBOUNDED = "P10675199DT2H48M5.4775807S"
UNBOUNDED_SECONDS = 10675199 * 86400.0  # anything at or beyond this is "unbounded"

_DURATION = re.compile(
    r"^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)


def parse_duration(value: str) -> float | None:
    """ISO 8601 duration (``PT15M00S``, ``P1D``, ``PT0.5S``, ``P1DT01H``) -> seconds."""
    if not isinstance(value, str) or value.upper() in ("P", "PT") or value.upper().endswith("T"):
        return None
    m = _DURATION.match(value.strip())
    if not m:
        return None
    weeks, days, hours, minutes, seconds = (float(g) if g else 0.0 for g in m.groups())
    return (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds


def format_duration(seconds: float | None) -> str:
    """Seconds -> canonical ISO duration (``PT15M``, ``P7D``, ``PT2.5S``); None -> unbounded."""
    if seconds is None or seconds >= UNBOUNDED_SECONDS:
        return UNBOUNDED
    micros = round(seconds * 1_000_000)
    days, micros = divmod(micros, 86_400_000_000)
    hours, micros = divmod(micros, 3_600_000_000)
    minutes, micros = divmod(micros, 60_000_000)
    secs, micros = divmod(micros, 1_000_000)
    out = "P" + (f"{days}D" if days else "")
    time_part = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if secs or micros:
        time_part += f"{secs}.{micros:06d}".rstrip("0").rstrip(".") + "S" if micros else f"{secs}S"
    if time_part:
        out += "T" + time_part
    return out if out != "P" else "PT0S"


# --- ETags -------------------------------------------------------------------------------

_etag_counter = itertools.count(0xDC000_0000_0000)


def new_etag() -> str:
    """A fresh unquoted ETag like the service's ``0x8DBCEEDDE12323A`` (monotonic)."""
    return f"0x8D{next(_etag_counter) & 0xF_FFFF_FFFF_FFFF:013X}"


def strip_etag(value: str) -> str:
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value


# --- ids ---------------------------------------------------------------------------------

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def valid_id(value: Any) -> bool:
    return isinstance(value, str) and bool(_ID.match(value))


# --- enum casing (docs/dev/emulator-rest.md) ---------------------------------------------

# Enum values the service echoes in its own spelling whatever the case sent: recorded
# "uploadCondition": "TaskCompletion" / "TaskFailure" (azure-sdk-for-js sdk/batch/batch-rest/
# recordings/node/task_operations_test/recording_should_list_all_tasks_successfully.json)
# and "nodeFillType": "Spread" (every recorded pool, e.g. .../pool_operations_test/
# recording_should_get_a_pool_reference_successfully.json). Other echoed enums come back
# lowercase as the REST specification spells them (elevationLevel, scope, onAllTasksComplete,
# dynamicVNetAssignmentScope in the same recordings), so they are left as sent.
_ECHOED = {
    "spread": "Spread",
    "pack": "Pack",
    "tasksuccess": "TaskSuccess",
    "taskfailure": "TaskFailure",
    "taskcompletion": "TaskCompletion",
}


def echoed_enum(value: Any) -> Any:
    """An echoed `uploadCondition` / `nodeFillType` in the service's spelling."""
    if isinstance(value, str):
        return _ECHOED.get(value.lower(), value)
    return value

_PASCAL = {
    "success": "Success",
    "clienterror": "ClientError",
    "servererror": "ServerError",
    "usererror": "UserError",
    "spread": "Spread",
    "pack": "Pack",
    "tasksuccess": "TaskSuccess",
    "taskfailure": "TaskFailure",
    "taskcompletion": "TaskCompletion",
}


class Casing:
    """Spells service-generated enum values: SDK lowercase by default, or PascalCase."""

    def __init__(self, realistic: bool = False) -> None:
        self.realistic = realistic

    def __call__(self, value: str) -> str:
        if self.realistic:
            return _PASCAL.get(value.lower(), value)
        return value


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
