"""List query options besides `$filter`: `$select`, `maxresults` and `$skiptoken` paging.

Role: project `$select` paths (top-level and nested, e.g. `executionInfo/exitCode`),
check `maxresults` (1..1000), and page with a cursor that is a position in creation
order, so items changing state between pages are neither skipped nor duplicated. Tokens
use only unreserved characters, so they survive the SDK's re-quoting of nextLink.

Imports: the standard library and `exceptions`, `odata`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from . import exceptions as exc
from .odata import Filter, bad_query


def parse_select(text: str | None, known: Iterable[str], loose: bool,
                 nested: dict[str, frozenset[str]] | None = None) -> list[list[str]] | None:
    """`id, state,executionInfo/exitCode` -> [["id"], ["state"], ["executionInfo", "exitCode"]]."""
    if text is None:
        return None
    known_set = set(known)
    paths: list[list[str]] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise bad_query("$select", text, "empty property name")
        parts = item.split("/")
        if not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p) for p in parts):
            raise bad_query("$select", text, f"{item!r} is not a property path")
        unknown = parts[0] not in known_set or (
            len(parts) > 1 and nested is not None and parts[0] in nested
            and parts[1] not in nested[parts[0]])
        if unknown:
            if loose:
                continue
            raise bad_query("$select", text, exc.with_loose_hint(f"unknown property {item!r}."))
        paths.append(parts)
    return paths


def project(doc: dict[str, Any], paths: list[list[str]] | None) -> dict[str, Any]:
    if paths is None:
        return doc
    out: dict[str, Any] = {}
    for parts in paths:
        src: Any = doc
        for p in parts:
            if not isinstance(src, dict) or p not in src:
                break
            src = src[p]
        else:
            dst = out
            for p in parts[:-1]:
                dst = dst.setdefault(p, {})
            dst[parts[-1]] = src
    return out


# --- maxresults / paging -------------------------------------------------------------------

def parse_maxresults(text: str | None, default: int) -> int:
    """`maxresults`: 1..1000. Below 1 is the service's recorded answer (400
    `InvalidQueryParameterValue`, Reason `MaxResults cannot be less than 1`: azure-sdk-for-js
    sdk/batch/batch-rest/recordings/node/pool_operations_test/
    recording_should_fail_to_list_pools_with_invalid_max.json); above 1000 is unrecorded
    and stays `OutOfRangeQueryParameterValue`."""
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_query("maxresults", text, "not an integer") from None
    if value < 1:
        raise exc.InvalidQueryParameterValue(
            values={"QueryParameterName": "maxresults", "QueryParameterValue": text,
                    "Reason": "MaxResults cannot be less than 1"})
    if value > 1000:
        raise exc.OutOfRangeQueryParameterValue(
            f"The value {text!r} of query parameter maxresults is above 1000.",
            {"QueryParameterName": "maxresults", "QueryParameterValue": text,
             "Reason": "maxresults must be between 1 and 1000"},
        )
    return value


def encode_token(position: int) -> str:
    """A cursor made only of unreserved characters (survives the SDK's re-quoting)."""
    return f"c{position:x}"


def decode_token(token: str | None) -> int:
    if token is None:
        return 0
    if not re.fullmatch(r"c[0-9a-f]+", token):
        raise bad_query("$skiptoken", token, "not a token issued by this server")
    return int(token[1:], 16)


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_position: int | None  # None: last page


def page(
    entries: Iterable[tuple[int, Callable[[], dict[str, Any]]]],
    flt: Filter | None,
    select: list[list[str]] | None,
    limit: int,
) -> Page:
    """Walk (position, render) pairs in position order; keep matches; stop after `limit`.

    The cursor is the position after the last entry returned, so items changing state
    between pages are neither skipped nor duplicated (positions never move).
    """
    items: list[dict[str, Any]] = []
    for position, render in entries:
        if len(items) == limit:
            return Page(items, position)
        doc = render()
        if flt is None or flt.matches(doc):
            items.append(project(doc, select))
    return Page(items, None)

