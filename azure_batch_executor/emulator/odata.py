"""OData `$filter` of list operations: grammar, filterable-property tables, evaluation.

Role: parse a `$filter` (grammar in docs/dev/emulator-rest.md) against a per-list table of
filterable properties (with the operators the service allows on each) and evaluate it on
an entity's REST JSON. Anything outside the grammar or the property table raises 400
`InvalidQueryParameterValue`; nothing is silently ignored. `paging` does the rest of the
query options (`$select`, `maxresults`, `$skiptoken`).

Imports: the standard library and `exceptions`, `wire`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import exceptions as exc
from . import wire

# AST nodes: ("or", a, b) | ("and", a, b) | ("not", a) | ("cmp", op, path, lit)
#          | ("startswith", path, prefix)
Node = tuple[Any, ...]

CMP_OPS = ("eq", "ne", "gt", "ge", "lt", "le")
ALL = frozenset(CMP_OPS) | {"startswith"}
EQ = frozenset({"eq", "ne"})
ORDERED = frozenset(CMP_OPS)


@dataclass(frozen=True)
class Prop:
    """A filterable property: its kind and the operators the service allows on it."""

    kind: str  # "str" | "enum" | "datetime" | "int" | "bool"
    ops: frozenset[str]
    values: frozenset[str] = frozenset()  # allowed enum values (lowercase)


_TASK_STATES = frozenset({"active", "preparing", "running", "completed"})
_JOB_STATES = frozenset({"active", "disabling", "disabled", "enabling", "terminating",
                         "completed", "deleting"})
_NODE_STATES = frozenset({"idle", "rebooting", "reimaging", "running", "unusable", "creating",
                          "starting", "waitingforstarttask", "starttaskfailed", "unknown",
                          "leavingpool", "offline", "preempted", "upgradingos", "deallocated",
                          "deallocating"})


def _dt_prop() -> Prop:
    return Prop("datetime", ORDERED)


FILTERABLE: dict[str, dict[str, Prop]] = {
    "tasks": {
        "id": Prop("str", ALL),
        "state": Prop("enum", EQ, _TASK_STATES),
        "stateTransitionTime": _dt_prop(),
        "creationTime": _dt_prop(),
        "lastModified": _dt_prop(),
        "executionInfo/startTime": _dt_prop(),
        "executionInfo/endTime": _dt_prop(),
        "executionInfo/exitCode": Prop("int", ORDERED),
        "executionInfo/result": Prop("enum", EQ, frozenset({"success", "failure"})),
    },
    "jobs": {
        "id": Prop("str", ALL),
        "state": Prop("enum", EQ, _JOB_STATES),
        "stateTransitionTime": _dt_prop(),
        "creationTime": _dt_prop(),
        "lastModified": _dt_prop(),
        "executionInfo/startTime": _dt_prop(),
        "executionInfo/endTime": _dt_prop(),
        "executionInfo/poolId": Prop("str", ALL),
    },
    "pools": {
        "id": Prop("str", ALL),
        "state": Prop("enum", EQ, frozenset({"active", "deleting", "upgrading"})),
        "allocationState": Prop("enum", frozenset({"eq"}),
                                frozenset({"steady", "resizing", "stopping"})),
        "stateTransitionTime": _dt_prop(),
        "allocationStateTransitionTime": _dt_prop(),
        "creationTime": _dt_prop(),
        "lastModified": _dt_prop(),
        "vmSize": Prop("str", EQ),
        "enableAutoScale": Prop("bool", EQ),
        "enableInterNodeCommunication": Prop("bool", EQ),
    },
    "nodes": {
        "state": Prop("enum", EQ, _NODE_STATES),
        "stateTransitionTime": _dt_prop(),
        "lastBootTime": _dt_prop(),
        "allocationTime": _dt_prop(),
        "startTaskInfo/state": Prop("enum", frozenset({"eq"}),
                                    frozenset({"running", "completed"})),
        "startTaskInfo/result": Prop("enum", EQ, frozenset({"success", "failure"})),
        "startTaskInfo/exitCode": Prop("int", ORDERED),
        "startTaskInfo/startTime": _dt_prop(),
        "startTaskInfo/endTime": _dt_prop(),
    },
    "nodecounts": {"poolId": Prop("str", frozenset({"eq"}))},
    "files": {"name": Prop("str", frozenset({"startswith"}))},
    # learn.microsoft.com/rest/api/batchservice/odata-filters-in-batch
    # #list-job-preparation-and-release-status
    "jobprepstatus": {
        "poolId": Prop("str", EQ),
        "nodeId": Prop("str", EQ),
        **{f"{info}/{name}": prop
           for info in ("jobPreparationTaskExecutionInfo", "jobReleaseTaskExecutionInfo")
           for name, prop in (
               ("state", Prop("enum", frozenset({"eq"}), frozenset({"running", "completed"}))),
               ("startTime", _dt_prop()), ("endTime", _dt_prop()),
               ("exitCode", Prop("int", ORDERED)),
               ("result", Prop("enum", EQ, frozenset({"success", "failure"}))))},
    },
}
FILTERABLE["tasks"]["lastModifiedTime"] = FILTERABLE["tasks"]["lastModified"]
FILTERABLE["jobs"]["lastModifiedTime"] = FILTERABLE["jobs"]["lastModified"]
FILTERABLE["pools"]["lastModifiedTime"] = FILTERABLE["pools"]["lastModified"]

_ALIASES = {"lastModifiedTime": "lastModified"}


def bad_query(name: str, value: str, reason: str) -> exc.BatchError:
    return exc.InvalidQueryParameterValue(
        f"The value {value!r} of query parameter {name} is invalid: {reason}",
        {"QueryParameterName": name, "QueryParameterValue": value, "Reason": reason},
    )


# --- $filter -----------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<dt>datetime'[^']*')
      | (?P<str>'(?:[^']|'')*')
      | (?P<num>-?\d+(?:\.\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)
      | (?P<punct>[(),])
    )""",
    re.VERBOSE | re.IGNORECASE,
)


class _Parser:
    def __init__(self, text: str, props: dict[str, Prop]) -> None:
        self.text, self.props = text, props
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise self.error(f"unexpected text at position {pos}: {text[pos:pos + 20]!r}")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def error(self, reason: str) -> exc.BatchError:
        return bad_query("$filter", self.text, reason)

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise self.error("unexpected end of expression")
        self.i += 1
        return tok

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "name" and tok[1].lower() == word:
            self.i += 1
            return True
        return False

    def expect_punct(self, p: str) -> None:
        tok = self.take()
        if tok != ("punct", p):
            raise self.error(f"expected {p!r} but found {tok[1]!r}")

    def parse(self) -> Node:
        if not self.tokens:
            raise self.error("the filter is empty")
        node = self.expr()
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return node

    def expr(self) -> Node:
        node = self.term()
        while self.keyword("or"):
            node = ("or", node, self.term())
        return node

    def term(self) -> Node:
        node = self.factor()
        while self.keyword("and"):
            node = ("and", node, self.factor())
        return node

    def factor(self) -> Node:
        if self.keyword("not"):
            return ("not", self.factor())
        tok = self.peek()
        if tok == ("punct", "("):
            self.take()
            node = self.expr()
            self.expect_punct(")")
            return node
        if tok and tok[0] == "name" and tok[1].lower() == "startswith":
            self.take()
            self.expect_punct("(")
            path = self.path("startswith")
            self.expect_punct(",")
            lit = self.take()
            if lit[0] != "str":
                raise self.error("startswith needs a quoted string as its second argument")
            self.expect_punct(")")
            return ("startswith", path, _unquote(lit[1]))
        path = self.path(None)
        op_tok = self.take()
        op = op_tok[1].lower()
        if op_tok[0] != "name" or op not in CMP_OPS:
            raise self.error(f"expected a comparison operator after {path!r}, found {op_tok[1]!r}")
        prop = self.props[path]
        if op not in prop.ops:
            raise self.error(f"operator {op!r} is not supported on property {path!r}")
        return ("cmp", op, path, self.literal(path, prop))

    def path(self, op: str | None) -> str:
        tok = self.take()
        if tok[0] != "name" or tok[1].lower() in ("and", "or", "not"):
            raise self.error(f"expected a property name, found {tok[1]!r}")
        path = _ALIASES.get(tok[1], tok[1])
        if path not in self.props:
            raise self.error(f"property {tok[1]!r} is not filterable here; filterable: "
                             + ", ".join(sorted(self.props)))
        if op and op not in self.props[path].ops:
            raise self.error(f"operator {op!r} is not supported on property {tok[1]!r}")
        return path

    def literal(self, path: str, prop: Prop) -> Any:
        kind, text = self.take()
        if kind == "name" and text.lower() == "null":
            return None
        if prop.kind == "datetime":
            if kind != "dt":
                raise self.error(f"property {path!r} needs a DateTime'...' literal")
            moment = wire.parse_iso(text[text.index("'") + 1:-1])
            if moment is None:
                raise self.error(f"invalid DateTime literal {text!r}")
            return moment
        if prop.kind == "int":
            if kind != "num" or "." in text:
                raise self.error(f"property {path!r} needs an integer literal")
            return int(text)
        if prop.kind == "bool":
            if kind != "name" or text.lower() not in ("true", "false"):
                raise self.error(f"property {path!r} needs true or false")
            return text.lower() == "true"
        if kind != "str":
            raise self.error(f"property {path!r} needs a quoted string literal")
        value = _unquote(text)
        if prop.kind == "enum" and value.lower() not in prop.values:
            raise self.error(f"{value!r} is not a valid value for {path!r}; valid: "
                             + ", ".join(sorted(prop.values)))
        return value


def _unquote(text: str) -> str:
    return text[1:-1].replace("''", "'")


class Filter:
    """A parsed `$filter`; `matches(json)` evaluates it on an entity's REST JSON."""

    def __init__(self, text: str, kind: str) -> None:
        self.text = text
        self.props = FILTERABLE[kind]
        self.ast = _Parser(text, self.props).parse()

    def matches(self, doc: dict[str, Any]) -> bool:
        return _eval(self.ast, doc, self.props)


def parse_filter(text: str | None, kind: str) -> Filter | None:
    if text is None:
        return None
    return Filter(text, kind)


def _lookup(doc: Any, path: str) -> Any:
    for part in path.split("/"):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def _eval(node: Node, doc: dict[str, Any], props: dict[str, Prop]) -> bool:
    tag = node[0]
    if tag == "or":
        return _eval(node[1], doc, props) or _eval(node[2], doc, props)
    if tag == "and":
        return _eval(node[1], doc, props) and _eval(node[2], doc, props)
    if tag == "not":
        return not _eval(node[1], doc, props)
    if tag == "startswith":
        value = _lookup(doc, node[1])
        return isinstance(value, str) and value.lower().startswith(node[2].lower())
    _, op, path, lit = node
    value = _lookup(doc, path)
    if lit is None:
        return (value is None) == (op == "eq") if op in ("eq", "ne") else False
    if value is None:
        return False
    kind = props[path].kind
    left: Any = value
    right: Any = lit
    if kind == "datetime":
        left = wire.parse_iso(str(value))
        if left is None:
            return False
    elif kind in ("str", "enum"):
        left, right = str(value).lower(), str(lit).lower()
    return _compare(op, left, right)


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if op == "gt":
        return bool(left > right)
    if op == "ge":
        return bool(left >= right)
    if op == "lt":
        return bool(left < right)
    return bool(left <= right)
