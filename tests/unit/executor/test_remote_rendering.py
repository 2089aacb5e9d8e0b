"""The client's side of "as if local": source lines put back into remote tracebacks,
task output echoed with its task id, and the pickler's fixes to cloudpickle."""

from __future__ import annotations

import linecache
import pickle
import types

import cloudpickle
import pytest

from azure_batch_executor.engine.output import _prefixed, echo
from azure_batch_executor.wire.pickling import dumps, slot_state
from azure_batch_executor.wire.tracebacks import with_source_lines

CELL = "<ipython-input-3-feedbeef>"
SOURCE = "def f():\n    x = 1\n    raise ValueError(x)\n"


@pytest.fixture
def cell_in_linecache():
    linecache.cache[CELL] = (len(SOURCE), None, SOURCE.splitlines(True), CELL)
    yield
    linecache.cache.pop(CELL, None)


def test_missing_source_lines_are_added_from_the_clients_files(cell_in_linecache) -> None:
    text = (f'Traceback (most recent call last):\n  File "{CELL}", line 3, in f\n'
            "ValueError: 1\n")
    assert with_source_lines(text) == (
        f'Traceback (most recent call last):\n  File "{CELL}", line 3, in f\n'
        "    raise ValueError(x)\nValueError: 1\n")


def test_a_line_the_node_had_is_not_doubled(cell_in_linecache) -> None:
    text = f'  File "{CELL}", line 3, in f\n    raise ValueError(x)\nValueError: 1\n'
    assert with_source_lines(text) == text


def test_exception_group_frames_get_their_lines_inside_the_box(cell_in_linecache) -> None:
    text = f'  | Traceback (most recent call last):\n  |   File "{CELL}", line 2, in f\n  | E\n'
    assert f'  |   File "{CELL}", line 2, in f\n  |     x = 1\n' in with_source_lines(text)


def test_a_file_the_client_lacks_stays_as_it_is() -> None:
    text = '  File "/nowhere/at/all.py", line 3, in f\nValueError: 1\n'
    assert with_source_lines(text) == text


def test_echo_prefixes_each_line_with_the_task_id(capfd) -> None:
    echo("task-000007", {"stdout": (b"one\ntwo\n", 8), "stderr": (b"oops\n", 5)})
    out, err = capfd.readouterr()
    assert out == "(task-000007) one\n(task-000007) two\n"
    assert err == "(task-000007) oops\n"


def test_a_cut_tail_says_how_much_is_missing_and_drops_the_partial_line() -> None:
    text = _prefixed("task-000001", b"tial line\nlast\n", 1000, "stdout")
    first, last = text.splitlines()
    assert first.startswith("(task-000001) [994 earlier bytes of stdout not shown")
    assert "task_output(future)" in first
    assert last == "(task-000001) last"


class _Slotted:
    __slots__ = ("__hidden", "a")

    def __init__(self) -> None:
        self.a = 1
        self.__hidden = 2

    def hidden(self) -> int:
        return self.__hidden


def test_slot_state_reads_every_slot_with_private_names_mangled() -> None:
    assert slot_state(_Slotted()) == {"a": 1, "_Slotted__hidden": 2}


def test_slotted_instances_load_into_a_class_that_has_a_dict_instead() -> None:
    rebuilt = types.new_class("_Slotted", (), {}, lambda ns: ns.update(
        {"hidden": _Slotted.hidden, "__module__": __name__}))  # as cloudpickle rebuilds it
    obj = pickle.loads(dumps(_Slotted()))
    assert obj.hidden() == 2
    loaded = rebuilt.__new__(rebuilt)
    for key, value in slot_state(_Slotted()).items():  # what pickle does with (None, state)
        setattr(loaded, key, value)
    assert loaded.hidden() == 2


class _NeedsTwo(Exception):
    def __init__(self, code: int, *, detail: str) -> None:
        super().__init__(f"code {code}")
        self.detail = detail


def test_exceptions_with_a_custom_init_signature_unpickle() -> None:
    with pytest.raises(TypeError):  # what plain cloudpickle gives
        cloudpickle.loads(cloudpickle.dumps(_NeedsTwo(1, detail="d")))
    exc = pickle.loads(dumps(_NeedsTwo(1, detail="d")))
    assert type(exc) is _NeedsTwo and exc.args == ("code 1",) and exc.detail == "d"


def test_code_objects_keep_their_file_name() -> None:
    fn = cloudpickle.loads(dumps(lambda: 1))
    assert fn.__code__.co_filename == __file__
