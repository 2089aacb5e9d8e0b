"""The strict request-body validator of the emulator: property kinds and their checks.

Role: `F` describes one property (its kind, whether it is required, its sub-schema, enum
values, range, and whether the emulator emulates it); `validate` checks a JSON object
against a schema of them (`schema.py` holds the schemas of the emulated operations).
Validation is on the hot path of task adds: each schema is compiled once into closures,
a valid body is walked without building any string (a property's name is rendered only
for the error), and `validate_owned` skips the copy of a just-parsed body. An integer or
boolean sent as a JSON string is converted as the service converts it (`_int_text`).

Imports: the standard library and `exceptions`, `wire`.
"""


from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import exceptions as exc
from . import wire


@dataclass(frozen=True)
class F:
    """One property: kind in str|int|bool|duration|enum|obj|list|any."""

    kind: str
    required: bool = False
    sub: Any = None  # obj: dict[str, F]; list: F of the items
    values: tuple[str, ...] = ()  # enum values, lowercase
    unsupported: bool = False  # a documented property the emulator does not emulate
    unsupported_value: Any = field(default=None)  # this value (only) is not emulated
    lo: int | None = None
    hi: int | None = None
    range_error: str = "InvalidPropertyValue"


def obj(required: bool = False, **props: F) -> F:
    return F("obj", required, sub=props)


def lst(item: F, required: bool = False, **kw: Any) -> F:
    return F("list", required, sub=item, **kw)


def enum(*values: str, required: bool = False) -> F:
    return F("enum", required, values=tuple(v.lower() for v in values))


# --- validation -------------------------------------------------------------------------
#
# Each schema dict and each `F` is compiled once into a closure (cached by identity), so a
# valid body costs one dict walk with no string building. A property's name is kept as a
# lazy `_Name` and rendered only when an error is raised:
#   None              the top of a request body (its members are named by their key);
#   (prefix,)         the top of a body validated with a literal `path` prefix;
#   str               a fully rendered name (a `check(..., name=...)` caller's);
#   (parent, "key")   member `key` of the object named `parent`;
#   (parent, index)   item `index` of the list named `parent`.

_Name = Any
_Checker = Callable[[Any, bool, _Name], Any]


def _render(name: _Name) -> str:
    if isinstance(name, str):
        return name
    if len(name) == 1:
        return str(name[0])
    parent, key = name
    if isinstance(key, int):
        return f"{_render(parent)}[{key}]"
    if parent is None:
        return str(key)
    if isinstance(parent, tuple) and len(parent) == 1:
        return str(parent[0]) + str(key)
    return f"{_render(parent)}.{key}"


def _loose_or_raise(name: str, loose: bool, what: str) -> None:
    if not loose:
        raise exc.InvalidPropertyValue(
            exc.with_loose_hint(f"The property '{name}' {what}."),
            {"PropertyName": name, "Reason": "Not emulated"},
        )


def _invalid(name: str, reason: str, error: str = "InvalidPropertyValue") -> exc.BatchError:
    cls = exc.InvalidConstraintValue if error == "InvalidConstraintValue" \
        else exc.InvalidPropertyValue
    return cls(f"The value provided for property '{name}' is invalid: {reason}.",
               {"PropertyName": name, "Reason": reason})


def validate(body: Any, schema: dict[str, F], *, loose: bool, path: str = "") -> dict[str, Any]:
    """Check a JSON object against `schema`; returns a copy without null members."""
    result: dict[str, Any] = _compile_schema(schema)(body, loose, (path,) if path else None)
    return result


def validate_owned(body: Any, schema: dict[str, F], *, loose: bool) -> dict[str, Any]:
    """`validate` for a body the caller owns (freshly parsed, referenced nowhere else).

    Same checks, same errors in the same order; but when no member needs dropping (no
    nulls, no OData annotations) the body itself is returned instead of a copy.
    """
    if _compile_schema(schema, True)(body, loose, None) is _DIRTY:
        return validate(body, schema, loose=loose)
    result: dict[str, Any] = body
    return result


def check(value: Any, spec: F, *, loose: bool, name: str) -> Any:
    """Check one property value against `spec`; `name` names it in errors."""
    return _compile(spec)(value, loose, name)


# Keyed by (id, verify); the cached object is kept so that its id stays unique.
_FIELD_CACHE: dict[tuple[int, bool], tuple[F, _Checker]] = {}
_SCHEMA_CACHE: dict[tuple[int, bool], tuple[dict[str, F], _Checker]] = {}
_SCHEMA_CACHE_MAX = 256  # ad-hoc schema dicts (e.g. `{}`) must not pile up


def _compile_schema(schema: dict[str, F], verify: bool = False) -> _Checker:
    """verify=False: checkers return the checked copy; True: they return `_DIRTY` when
    a copy is needed (something to drop), anything else when the value can be kept."""
    hit = _SCHEMA_CACHE.get((id(schema), verify))
    if hit is not None and hit[0] is schema:
        return hit[1]
    checker = _compile_obj(schema, verify)
    if len(_SCHEMA_CACHE) >= _SCHEMA_CACHE_MAX:
        _SCHEMA_CACHE.clear()
    _SCHEMA_CACHE[(id(schema), verify)] = (schema, checker)
    return checker


def _compile(spec: F, verify: bool = False) -> _Checker:
    hit = _FIELD_CACHE.get((id(spec), verify))
    if hit is not None and hit[0] is spec:
        return hit[1]
    checker = _compile_field(spec, verify)
    _FIELD_CACHE[(id(spec), verify)] = (spec, checker)
    return checker


_PLAIN_STR: Any = None  # marks a "str" member, checked inline without a call
_UNCHECKED: Any = 0  # marks an "any" member, taken as it is
_UNKNOWN: Any = ()  # lookup default: not a member of the schema
_DIRTY: Any = object()  # a verifying checker's answer: the value needs a copy


def _compile_obj(schema: dict[str, F], verify: bool) -> _Checker:
    members: dict[str, Any] = {}
    for key, spec in schema.items():
        if key.startswith("odata."):
            continue  # never looked up: such members are skipped as annotations
        if spec.unsupported or spec.unsupported_value is not None:
            members[key] = _guarded(spec, _compile(spec, verify))
        elif spec.kind == "any":
            members[key] = _UNCHECKED
        elif spec.kind == "str":
            members[key] = _PLAIN_STR
        else:
            members[key] = _compile(spec, verify)
    required = tuple(key for key, spec in schema.items() if spec.required)
    lookup = members.get

    def check_obj(body: Any, loose: bool, name: _Name) -> dict[str, Any]:
        if not isinstance(body, dict):
            if name is None:
                raise exc.InvalidRequestBody("The request body must be a JSON object.")
            raise _invalid(_render(name).rstrip("."), "expected a JSON object")
        out: dict[str, Any] = {}
        for key, value in body.items():
            if value is None:
                continue
            member = lookup(key, _UNKNOWN)
            if member is _PLAIN_STR:
                if not isinstance(value, str):
                    raise _invalid(_render((name, key)), "expected a string")
                out[key] = value
            elif member is _UNKNOWN:
                if key.startswith("odata."):
                    continue  # OData annotations (an SDK model read from a response echoes them)
                _loose_or_raise(_render((name, key)), loose,
                                "is not a known property of this request")
                out[key] = value
            elif member is _UNCHECKED:
                out[key] = value
            else:
                out[key] = member(value, loose, (name, key))
        _check_required(body, required, name)
        return out

    def verify_obj(body: Any, loose: bool, name: _Name) -> Any:
        if not isinstance(body, dict):
            if name is None:
                raise exc.InvalidRequestBody("The request body must be a JSON object.")
            raise _invalid(_render(name).rstrip("."), "expected a JSON object")
        clean = True
        for key, value in body.items():
            if value is None:
                clean = False
                continue
            member = lookup(key, _UNKNOWN)
            if member is _PLAIN_STR:
                if not isinstance(value, str):
                    raise _invalid(_render((name, key)), "expected a string")
            elif member is _UNKNOWN:
                if key.startswith("odata."):
                    clean = False
                    continue
                _loose_or_raise(_render((name, key)), loose,
                                "is not a known property of this request")
            elif member is not _UNCHECKED and member(value, loose, (name, key)) is _DIRTY:
                clean = False
        _check_required(body, required, name)
        return True if clean else _DIRTY

    return verify_obj if verify else check_obj


def _guarded(spec: F, inner: _Checker) -> _Checker:
    """A member that is not emulated, or not with one value: refused unless loose."""
    unsupported, bad = spec.unsupported, spec.unsupported_value

    def check_guarded(value: Any, loose: bool, name: _Name) -> Any:
        if unsupported or (bad is not None and value == bad):
            shown = f"with value {value!r} " if bad is not None else ""
            _loose_or_raise(_render(name), loose, f"{shown}is not supported")
        return inner(value, loose, name)

    return check_guarded


def _compile_field(spec: F, verify: bool) -> _Checker:
    kind = spec.kind
    if kind == "obj":
        return _compile_obj(spec.sub, verify)
    if kind == "list":
        return _compile_list(spec, verify)
    return _compile_leaf(spec, verify)


def _compile_list(spec: F, verify: bool) -> _Checker:
    item_spec: F = spec.sub
    item = _compile(item_spec, verify)
    plain = item_spec.kind == "any"
    strings = item_spec.kind == "str"

    def check_list(value: Any, loose: bool, name: _Name) -> list[Any]:
        if not isinstance(value, list):
            raise _invalid(_render(name), "expected a JSON array")
        if plain:
            return list(value)
        if strings:
            for i, v in enumerate(value):
                if not isinstance(v, str):
                    raise _invalid(_render((name, i)), "expected a string")
            return list(value)
        return [item(v, loose, (name, i)) for i, v in enumerate(value)]

    def verify_list(value: Any, loose: bool, name: _Name) -> Any:
        if not isinstance(value, list):
            raise _invalid(_render(name), "expected a JSON array")
        if plain:
            return True
        if strings:
            for i, v in enumerate(value):
                if not isinstance(v, str):
                    raise _invalid(_render((name, i)), "expected a string")
            return True
        clean = True
        for i, v in enumerate(value):
            if item(v, loose, (name, i)) is _DIRTY:
                clean = False
        return True if clean else _DIRTY

    return verify_list if verify else check_list


def _check_required(body: dict[str, Any], required: Any, name: _Name) -> None:
    for key in required:
        if body.get(key) is None:
            prop = _render((name, key))
            raise exc.MissingRequiredProperty(
                f"The property '{prop}' is required but was not specified.",
                {"PropertyName": prop},
            )


def _type_check(cls: type, reason: str) -> _Checker:
    def check_type(value: Any, loose: bool, name: _Name) -> Any:
        if not isinstance(value, cls):
            raise _invalid(_render(name), reason)
        return value
    return check_type


# Integers and booleans sent as JSON strings ("2", "true"): the service reads request
# bodies with the OData library (Microsoft.Data.OData, its log names the type: Azure/
# azure-batch-cli-extensions#119), whose JSON reader converts a string to the declared
# primitive type ("For string types, we support conversion to all possible primitive
# types": Convert.ChangeType(value, targetType, CultureInfo.InvariantCulture) in OData .NET
# 5.6 ODataJsonLightReaderUtils / ODataVerboseJsonReaderUtils.ConvertStringValue). So "2"
# is the integer 2 and " +2 " too (Int32.Parse: blanks and a sign), "2.0", "two" and
# out-of-range values are refused; "True"/"false" are booleans (Boolean.Parse). The az
# CLI's batch commands send integer options this way (azure-batch 15.0.0b1 models keep
# the string the command line gave), and the converted value is what is stored and echoed.


def _int_text(value: str) -> int | None:
    body = value.strip()
    digits = body[1:] if body[:1] in ("+", "-") else body
    if not (digits.isascii() and digits.isdigit()):
        return None
    number = int(body)
    return number if -2**31 <= number < 2**31 else None


def _bool_text(value: str) -> bool | None:
    return {"true": True, "false": False}.get(value.strip().lower())


def _compile_leaf(spec: F, verify: bool = False) -> _Checker:
    """A leaf keeps its value (one checker for both modes), except a string holding an
    integer or boolean: converted in copy mode, `_DIRTY` when verifying (a copy is due)."""
    kind = spec.kind
    if kind == "any":
        return lambda value, loose, name: value
    if kind == "str":
        return _type_check(str, "expected a string")
    if kind == "bool":
        def check_bool(value: Any, loose: bool, name: _Name) -> Any:
            if isinstance(value, bool):
                return value
            parsed = _bool_text(value) if isinstance(value, str) else None
            if parsed is None:
                raise _invalid(_render(name), "expected true or false")
            return _DIRTY if verify else parsed
        return check_bool
    if kind == "int":
        lo, hi = spec.lo, spec.hi

        def check_int(value: Any, loose: bool, name: _Name) -> Any:
            if isinstance(value, bool) or not isinstance(value, int):
                converted = _int_text(value) if isinstance(value, str) else None
                if converted is None:
                    raise _invalid(_render(name), "expected an integer")
                checked = check_int(converted, loose, name)
                return _DIRTY if verify else checked
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                bounds = f"{lo if lo is not None else '-inf'}.." \
                         f"{hi if hi is not None else 'inf'}"
                raise _invalid(_render(name), f"{value} is outside the allowed range {bounds}",
                               spec.range_error)
            return value
        return check_int
    if kind == "duration":
        def check_duration(value: Any, loose: bool, name: _Name) -> Any:
            seconds = wire.parse_duration(value) if isinstance(value, str) else None
            if seconds is None or seconds < 0:
                raise _invalid(_render(name), f"{value!r} is not an ISO 8601 duration")
            return value
        return check_duration
    if kind == "enum":
        values = spec.values
        allowed = frozenset(values)

        def check_enum(value: Any, loose: bool, name: _Name) -> Any:
            if not isinstance(value, str) or value.lower() not in allowed:
                raise _invalid(_render(name), f"{value!r} is not one of {', '.join(values)}")
            return value
        return check_enum
    raise AssertionError(kind)  # pragma: no cover

