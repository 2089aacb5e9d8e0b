"""Text the settings give out: durations as Batch and people read them, and secrets masked.

Role: `iso_duration` (Batch's ISO 8601 durations), `human_duration`, `mask_secrets` (SAS
signatures, account keys and a settings object's secrets replaced by ``***``) and
`first_line` (what a log line or a wrapped error says of an exception, masked).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import Settings

SECRETS = ("batch_account_key", "storage_account_key", "storage_connection_string",
           "registry_password")
MASK = "***"


def iso_duration(seconds: float) -> str:
    """ISO 8601 duration for Batch (e.g. 90.5 -> 'PT1M30.5S')."""
    whole = int(seconds)
    frac = seconds - whole
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    time = ""
    if hours:
        time += f"{hours}H"
    if minutes:
        time += f"{minutes}M"
    if secs or frac or not (days or hours or minutes):
        time += f"{secs + frac:g}S" if frac else f"{secs}S"
    return out + ("T" + time if time else "")


def human_duration(seconds: float) -> str:
    """A duration as a log line says it: 45 -> '45s', 90 -> '1m30s', 600 -> '10m',
    3720 -> '1h02m', 2.5 -> '2.5s'."""
    if seconds < 10:
        return f"{seconds:.1f}".rstrip("0").rstrip(".") + "s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if not minutes:
        return f"{secs}s"
    return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"


def mask_secrets(text: str, settings: Settings | None = None) -> str:
    """`text` with SAS signatures, account keys and connection-string keys replaced by ***."""
    text = re.sub(r"(?i)(sig=)[^&\s'\"]+", r"\1" + MASK, text)
    text = re.sub(r"(?i)(AccountKey=)[^;\s'\"]+", r"\1" + MASK, text)
    if settings is not None:
        for name in SECRETS:
            value = getattr(settings, name)
            if value:
                text = text.replace(value, MASK)
    return text


def first_line(exc: BaseException) -> str:
    """The first line of `exc`'s message (its type name when it has none), secrets masked:
    what a log line or a wrapped error says of a service error."""
    text = str(exc)
    return mask_secrets(text.splitlines()[0] if text else type(exc).__name__)
