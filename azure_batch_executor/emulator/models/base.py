"""What every Batch entity shares: ETag / lastModified, states with their transition tables.

Role: `Entity` keeps `eTag`, `lastModified`, `creationTime` and a state with
`previousState` bookkeeping; a subclass declares its state machine as data
(`TRANSITIONS`: state -> states it may move to) and every change goes through
`_move_to`, which refuses transitions the table does not list.
`conditions` implements If-Match / If-None-Match / If-(Un)Modified-Since.

Imports: the standard library and `..exceptions`, `..wire`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from .. import exceptions as exc
from .. import wire


class IllegalTransition(RuntimeError):
    """A model tried a state change its transition table does not allow (an emulator bug)."""


class Entity:
    TRANSITIONS: ClassVar[dict[str, frozenset[str]]] = {}
    observer: Callable[[Entity, str, str], None] | None = None  # told of every state change

    def __init__(self, id: str, now: float, state: str) -> None:
        self.id = id
        self.creation_time = now
        self.last_modified = now
        self.etag = wire.new_etag()
        self.state = state
        self.state_transition_time = now
        self.previous_state: str | None = None
        self.previous_state_transition_time: float | None = None

    @property
    def key(self) -> str:
        return self.id.lower()

    def touch(self, now: float) -> None:
        """A user write: new ETag and lastModified (scheduler changes do not call this)."""
        self.etag = wire.new_etag()
        self.last_modified = now

    def _move_to(self, state: str, now: float) -> None:
        if state not in self.TRANSITIONS.get(self.state, frozenset()):
            raise IllegalTransition(f"{type(self).__name__} {self.id}: {self.state} -> {state}")
        old = self.state
        self.previous_state = old
        self.previous_state_transition_time = self.state_transition_time
        self.state = state
        self.state_transition_time = now
        if self.observer is not None:
            self.observer(self, old, state)

    def base_json(self, url: str) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "url": url,
            "eTag": self.etag,
            "lastModified": wire.iso(self.last_modified),
            "creationTime": wire.iso(self.creation_time),
            "state": self.state,
            "stateTransitionTime": wire.iso(self.state_transition_time),
        }
        if self.previous_state is not None and self.previous_state_transition_time is not None:
            doc["previousState"] = self.previous_state
            doc["previousStateTransitionTime"] = wire.iso(self.previous_state_transition_time)
        return doc


def conditions(entity: Entity, headers: Mapping[str, str], *, read: bool) -> None:
    """Apply conditional headers: reads get 304, writes 412 `ConditionNotMet`."""
    lower = {k.lower(): v for k, v in headers.items()}
    fail = exc.NotModified if read else exc.ConditionNotMet
    if_match = lower.get("if-match")
    if if_match is not None:
        tags = [wire.strip_etag(t) for t in if_match.split(",")]
        if "*" not in tags and entity.etag not in tags:
            raise exc.ConditionNotMet()
    if_none_match = lower.get("if-none-match")
    if if_none_match is not None:
        tags = [wire.strip_etag(t) for t in if_none_match.split(",")]
        if "*" in tags or entity.etag in tags:
            raise fail()
    modified = math.floor(entity.last_modified)
    since = lower.get("if-modified-since")
    if since is not None:
        ts = wire.parse_rfc1123(since)
        if ts is None:
            raise exc.InvalidHeaderValue(values={"HeaderName": "If-Modified-Since"})
        if modified <= ts:
            raise fail()
    unmodified = lower.get("if-unmodified-since")
    if unmodified is not None:
        ts = wire.parse_rfc1123(unmodified)
        if ts is None:
            raise exc.InvalidHeaderValue(values={"HeaderName": "If-Unmodified-Since"})
        if modified > ts:
            raise exc.ConditionNotMet()


def name_value_list(items: list[dict[str, Any]] | None) -> dict[str, str]:
    return {i["name"]: i.get("value", "") or "" for i in items or []}
