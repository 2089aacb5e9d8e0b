"""Objects of every kind a local process pool round-trips, and how to check them.

The round-trip test runs this text three ways: as a module beside the script (imported),
inside the script itself (``__main__``), and as a notebook cell (compiled under an
``<ipython-input-...>`` name and run in a namespace whose ``__name__`` is ``__main__``).
Each check returns '' when the object came back as itself, else what is wrong.
"""

import collections
import dataclasses
import enum


@dataclasses.dataclass
class Point:
    x: int
    y: int

    def norm1(self):
        return abs(self.x) + abs(self.y)


Pair = collections.namedtuple("Pair", "a b")


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Counter:
    def __init__(self, n):
        self.n = n

    def bump(self):
        self.n += 1
        return self


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a, b):
        self.a, self.b = a, b

    def total(self):
        return self.a + self.b


class AppError(Exception):
    def __init__(self, code, *, detail):
        super().__init__(f"app error {code}")
        self.code = code
        self.detail = detail

    def describe(self):
        return f"{self.code}:{self.detail}"


VALUE_KINDS = ("dataclass", "namedtuple", "enum", "methods", "slots", "closure", "lambda")
ERROR_KINDS = ("exception", "chained", "group")


def make(kind):
    if kind == "dataclass":
        return Point(1, -2)
    if kind == "namedtuple":
        return Pair(1, 2)
    if kind == "enum":
        return Color.BLUE
    if kind == "methods":
        return Counter(3)
    if kind == "slots":
        return Slotted(1, 2)
    if kind == "closure":
        n = 5

        def add(y):
            return y + n
        return add
    if kind == "lambda":
        return lambda y: y * 3
    if kind == "exception":
        return AppError(7, detail="x")
    if kind == "chained":
        try:
            try:
                raise KeyError("the inner cause")
            except KeyError as inner:
                raise AppError(8, detail="outer") from inner
        except AppError as outer:
            return outer
    if kind == "group":
        return ExceptionGroup("many", [AppError(1, detail="a"), ValueError("b")])  # noqa: F821
    raise ValueError(kind)


def check(kind, obj):
    checks = {
        "dataclass": lambda: type(obj) is Point and obj == Point(1, -2) and obj.norm1() == 3,
        "namedtuple": lambda: type(obj) is Pair and obj == (1, 2) and obj.b == 2,
        "enum": lambda: obj is Color.BLUE,
        "methods": lambda: type(obj) is Counter and obj.bump().n == 4,
        "slots": lambda: type(obj) is Slotted and obj.total() == 3,
        "closure": lambda: obj(1) == 6,
        "lambda": lambda: obj(2) == 6,
        "exception": lambda: type(obj) is AppError and obj.describe() == "7:x",
        "chained": lambda: type(obj) is AppError and obj.describe() == "8:outer",
        "group": lambda: (type(obj).__name__ == "ExceptionGroup"
                          and [type(e) for e in obj.exceptions] == [AppError, ValueError]
                          and obj.exceptions[0].describe() == "1:a"),
    }
    try:
        return "" if checks[kind]() else f"came back as {type(obj).__qualname__}: {obj!r}"
    except Exception as exc:  # noqa: BLE001 - reported to the test
        return f"check raised {type(exc).__name__}: {exc}"


def build(kind):
    return make(kind)


def echo(obj):
    return obj


def fail(kind):
    raise make(kind)
