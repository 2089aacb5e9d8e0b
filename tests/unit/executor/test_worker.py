"""worker.py run as the node runs it: a subprocess in a fresh directory, stdlib + cloudpickle."""

from __future__ import annotations

import base64
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import cloudpickle
import pytest

from azure_batch_executor import constants as C
from azure_batch_executor.wire import codec as _wire
from azure_batch_executor.wire import outcome
from azure_batch_executor.wire import worker as worker_module

WORKER = Path(worker_module.__file__)

STATE = "unset"


def set_state(value):
    global STATE
    STATE = value


def read_state(suffix):
    return STATE + suffix


def boom(x):
    raise KeyError(x)


def make_lock():
    return threading.Lock()


def run_worker(tmp_path: Path, spec: bytes, config: bytes, inline: bool = True,
               config_inline: bool = False) -> dict:
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / C.WORKER_SCRIPT_FILE).write_bytes(WORKER.read_bytes())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if config_inline:  # as the job's common environment brings it
        env[C.INLINE_CONFIG_ENV] = base64.b64encode(config).decode()
    else:
        (wd / C.GLOBAL_CONFIG_FILE).write_bytes(config)
    if inline:
        env[C.INLINE_INPUTS_ENV] = base64.b64encode(spec).decode()
    else:
        (wd / C.WORKER_INPUTS_FILE).write_bytes(spec)
    proc = subprocess.run([sys.executable, C.WORKER_SCRIPT_FILE], cwd=wd, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert not (wd / (C.WORKER_OUTPUTS_FILE + ".tmp")).exists()
    assert (wd / C.WORKER_INPUTS_FILE).exists()
    assert (wd / C.GLOBAL_CONFIG_FILE).read_bytes() == config
    return pickle.loads((wd / C.WORKER_OUTPUTS_FILE).read_bytes())


@pytest.fixture(autouse=True)
def _by_value() -> None:
    _wire.ship_user_modules()  # this test module is user code: pickled by value


def test_constants_agree_with_the_worker_copy() -> None:
    for name in ("GLOBAL_CONFIG_FILE", "WORKER_INPUTS_FILE", "WORKER_OUTPUTS_FILE",
                 "INLINE_INPUTS_ENV", "INLINE_CONFIG_ENV", "WIRE_FORMAT", "TASK_ENV",
                 "NODE_OBJECTS_DIR"):
        assert getattr(worker_module, name) == getattr(C, name), name


def test_call_result_and_inline_inputs(tmp_path) -> None:
    out = run_worker(tmp_path, _wire.encode_call(pow, (2, 10), {}), _wire.encode_config(None, ()))
    assert out["fatal"] is None
    assert outcome.decode_row(out["results"][0]) == (True, 1024)


def test_inputs_as_a_file(tmp_path) -> None:
    out = run_worker(tmp_path, _wire.encode_call(pow, (3, 2), {}),
                     _wire.encode_config(None, ()), inline=False)
    assert outcome.decode_row(out["results"][0]) == (True, 9)


def test_exception_comes_back_with_traceback(tmp_path) -> None:
    out = run_worker(tmp_path, _wire.encode_call(boom, ("k",), {}), _wire.encode_config(None, ()))
    ok, exc = outcome.decode_row(out["results"][0])
    assert not ok and isinstance(exc, KeyError) and exc.args == ("k",)
    assert "in boom" in str(exc.__cause__)


def test_unpicklable_result_becomes_a_stand_in(tmp_path) -> None:
    out = run_worker(tmp_path, _wire.encode_call(make_lock, (), {}), _wire.encode_config(None, ()))
    ok, exc = outcome.decode_row(out["results"][0])
    assert not ok and "_thread.lock" in str(exc) and "could not be pickled" in str(exc)


def test_initializer_globals_are_seen_by_the_task(tmp_path) -> None:
    out = run_worker(tmp_path, _wire.encode_call(read_state, ("!",), {}),
                     _wire.encode_config(set_state, ("initialized",)))
    assert out["fatal"] is None, out["fatal"]
    assert outcome.decode_row(out["results"][0]) == (True, "initialized!")


def test_config_inline_in_the_environment(tmp_path) -> None:
    """A small config comes in the job's environment: the worker writes config.pickle and the
    initializer runs as if it had been downloaded."""
    out = run_worker(tmp_path, _wire.encode_call(read_state, ("?",), {}),
                     _wire.encode_config(set_state, ("from env",)), config_inline=True)
    assert out["fatal"] is None, out["fatal"]
    assert outcome.decode_row(out["results"][0]) == (True, "from env?")


def test_failing_initializer_is_fatal(tmp_path) -> None:
    out = run_worker(tmp_path, _wire.encode_call(pow, (1, 1), {}), _wire.encode_config(boom, (1,)))
    assert out["fatal"][0] == "initializer"
    assert isinstance(outcome.rebuild_error(("raise", *out["fatal"][1:])), KeyError)


def test_version_mismatch_names_both_versions(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(_wire, "client_versions", lambda: {"python": "2.7", "cloudpickle": "0.1"})
    out = run_worker(tmp_path, _wire.encode_call(pow, (1, 1), {}), _wire.encode_config(None, ()))
    stage, _, _, message, _ = out["fatal"]
    assert stage == "versions"
    here = "{}.{}".format(*sys.version_info[:2])
    assert "Python 2.7" in message and "cloudpickle 0.1" in message
    assert f"Python {here}" in message and cloudpickle.__version__ in message


def test_chunk_rows_one_per_call(tmp_path) -> None:
    wd_payload = _wire.encode_shared(divmod)
    spec = _wire.encode_chunk("shared_0.pickle", [((7, 2), {}), ((1, 0), {}), ((9, 3), {})])
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "shared_0.pickle").write_bytes(wd_payload)
    # the shared payload is a resource file in the task's directory
    (wd / C.WORKER_SCRIPT_FILE).write_bytes(WORKER.read_bytes())
    (wd / C.GLOBAL_CONFIG_FILE).write_bytes(_wire.encode_config(None, ()))
    (wd / C.WORKER_INPUTS_FILE).write_bytes(spec)
    subprocess.run([sys.executable, C.WORKER_SCRIPT_FILE], cwd=wd, check=True, timeout=60)
    out = pickle.loads((wd / C.WORKER_OUTPUTS_FILE).read_bytes())
    rows = [outcome.decode_row(r) for r in out["results"]]
    assert rows[0] == (True, (3, 1)) and rows[2] == (True, (3, 0))
    assert not rows[1][0] and isinstance(rows[1][1], ZeroDivisionError)


def test_unpicklable_argument_is_named() -> None:
    with pytest.raises(_wire.TaskPicklingError, match=r"keyword argument 'lock'.*lock"):
        _wire.encode_call(pow, (1,), {"lock": threading.Lock()})


def test_user_modules_detection() -> None:
    assert _wire.is_user_module(__name__, sys.modules[__name__])
    assert not _wire.is_user_module("json", sys.modules["json"])
    assert not _wire.is_user_module("cloudpickle", sys.modules["cloudpickle"])
