"""The task-side entry point: runs on a Batch node as ``python3 abx_worker.py`` in the task's wd.

Role: shipped to the node as a resource file (the node has no copy of this
package). It writes an inline task spec to ``inputs.pickle`` and an inline job
config to ``config.pickle`` when they came in the environment (the task's and the
job's), checks the node's Python and cloudpickle against the client's
stamp in ``config.pickle``, runs the initializer, then each call, and writes the
outcome to ``outputs.pickle`` atomically (temp file + os.replace). Exceptions from
user code are caught (BaseException), pickled with their formatted traceback and
the worker exits 0, so Batch only retries real crashes. A result or exception that
cannot be pickled is replaced by a stand-in (type name, message, traceback).

While user code runs, ``AZURE_BATCH_EXECUTOR_TASK`` holds the task id (the client
package refuses to start a second executor there), and joblib's "azure_batch"
backend is joblib's sequential one (nested calls run on this node, one by one).
The tail of the task's stdout.txt and stderr.txt (Batch writes them in the task
directory, the parent of the working directory) travels back in ``outputs.pickle``
so that the client can echo it without another request.

Large arguments are kept once per node: ``$AZ_BATCH_NODE_SHARED_DIR/abx/objects/<sha256>``,
downloaded (standard library ``urllib``) by the first task of the node that needs one,
under an flock so that the node's other tasks wait for that download instead of making
their own, its sha256 checked before it is renamed into place. Objects no task used for
an hour are removed before a download (`_prune`), so that the node's disk does not fill.

Pickles are read by `_Loader` (cloudpickle's format; functions pickled by value from
one module share one namespace, as an import would: an initializer and the task
functions see each other's globals) and written by `Pickler` (cloudpickle, keeping
code objects' file names for tracebacks, exceptions rebuilt without calling their
``__init__``, slotted instances as slot state); the client imports `Pickler` from here.

Shapes (plain pickles of builtins; the cloudpickled parts are bytes inside):
    config.pickle  {"format", "python", "cloudpickle", "initializer": bytes | None}
    inputs.pickle  {"format", "shared": file name | None, "call": bytes of (fn | None, calls),
                    "objects": {sha256: read URL} (optional)}
                   (fn is None when a map() function comes as the resource file `shared`;
                   "call" holds persistent ids (sha256) for the large arguments; the worker
                   downloads each from its URL in "objects" once per node, see below)
    outputs.pickle {"format", "node": {"python", "cloudpickle", "host", "node_id", "fetched",
                    "fetched_bytes", "calls_seconds"}, "fatal": None | (stage, *error),
                    "results": [...],
                    "output": {"stdout"|"stderr": (tail bytes, total size)} (optional)}
    error / result rows: ("ok", bytes) | ("raise", bytes | None, type, message, traceback)
                         | ("badresult", None, type, message, traceback)

It runs on the node: the standard library and cloudpickle only (tests/unit/test_layer_contracts.py).
One file on purpose, though past 500 lines: each task downloads it as one resource file; its
parts (pickling, fetching large arguments, the run) would each be one more file per task.
Annotations are not evaluated at run time (``from __future__ import annotations``); what only
they use is imported under ``TYPE_CHECKING`` (`typing` itself is imported by cloudpickle anyway).
"""

from __future__ import annotations

import base64
import contextlib
import copyreg
import io
import os
import pickle
import platform
import sys
import time
import traceback
import types
from typing import IO, TYPE_CHECKING, Any, cast

import cloudpickle
import cloudpickle.cloudpickle as _cp

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from importlib.machinery import ModuleSpec
    from typing import TypeAlias

    # ("raise", pickled exception | None, type, message, traceback), or ("badresult", None, ...)
    ErrorRow: TypeAlias = tuple[str, bytes | None, str, str, str]
    Row: TypeAlias = tuple[str, bytes] | ErrorRow  # ("ok", pickled result) or an error row

GLOBAL_CONFIG_FILE = "config.pickle"
WORKER_INPUTS_FILE = "inputs.pickle"
WORKER_OUTPUTS_FILE = "outputs.pickle"
INLINE_INPUTS_ENV = "ABX_INPUTS_B64"
INLINE_CONFIG_ENV = "ABX_CONFIG_B64"
TASK_ENV = "AZURE_BATCH_EXECUTOR_TASK"
OUTPUT_TAIL_BYTES = 64 * 1024
WIRE_FORMAT = 2
NODE_OBJECTS_DIR = "abx/objects"  # under $AZ_BATCH_NODE_SHARED_DIR: large arguments, by sha256
OBJECT_IDLE_SECONDS = 3600  # a node's object unused this long is removed before a download
FETCH_PATIENCE = 180.0  # seconds an object download is retried (throttling, lost connections)
_TRANSIENT_HTTP = frozenset({408, 429, 500, 502, 503, 504})
_NEWOBJ = copyreg.__newobj__  # type: ignore[attr-defined]  # cls.__new__(cls, *args)


def _versions() -> dict[str, str]:
    return {"python": "{}.{}".format(*sys.version_info[:2]),
            "cloudpickle": cloudpickle.__version__}


def _type_name(obj: object) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


# ------------------------------------------------------------------------------ pickling
class Pickler(cloudpickle.Pickler):  # type: ignore[misc]  # cloudpickle ships no types: Any
    """cloudpickle that keeps code objects' file names (tracebacks name the user's files),
    rebuilds exceptions without calling ``__init__`` (a custom signature unpickles) and
    sends slotted instances as slot state (`slot_state`). The client pickles with it
    too (``azure_batch_executor.wire.pickling``)."""

    def reducer_override(self, obj: object) -> object:  # a reduce value or NotImplemented
        cls = type(obj)
        if cls is types.CodeType:
            return code_reduce(cast(types.CodeType, obj))
        if isinstance(obj, BaseException) and cls.__reduce__ is BaseException.__reduce__:
            return _NEWOBJ, (cls, *obj.args), obj.__dict__ or None
        if "__slots__" in cls.__dict__ and _default_reduce(cls):
            return _NEWOBJ, (cls,), (None, slot_state(obj))
        return super().reducer_override(obj)


def _default_reduce(cls: type) -> bool:
    # mypy types cls.__reduce__ as bound to the class object; both sides are the functions
    # found on the classes
    return (cls.__reduce_ex__ is object.__reduce_ex__  # type: ignore[comparison-overlap]
            and cls.__reduce__ is object.__reduce__  # type: ignore[comparison-overlap]
            and getattr(cls, "__getstate__", None) is getattr(object, "__getstate__", None)
            and not hasattr(cls, "__getnewargs_ex__") and not hasattr(cls, "__getnewargs__"))


def slot_state(obj: object) -> dict[str, Any]:
    """Every attribute of a slotted instance, slots and ``__dict__`` alike, set again one by
    one when loaded: a class rebuilt by value (cloudpickle) has a ``__dict__`` where the
    original has slots, so the default state of one does not load into the other."""
    state = dict(getattr(obj, "__dict__", None) or {})
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name in ("__dict__", "__weakref__"):
                continue
            if name.startswith("__") and not name.endswith("__"):
                name = f"_{klass.__name__.lstrip('_')}{name}"
            with contextlib.suppress(AttributeError):  # an empty slot
                state[name] = getattr(obj, name)
    return state


def code_reduce(obj: types.CodeType) -> tuple[Callable[..., types.CodeType], tuple[Any, ...]]:
    """cloudpickle's reduction of a code object, with its real ``co_filename``."""
    rebuild, args = _cp._code_reduce(obj)
    return rebuild, tuple(obj.co_filename if a == "<dynamic-code>" else a for a in args)


def dumps(obj: object) -> bytes:
    """`obj` pickled by `Pickler` (what ``cloudpickle.dumps`` would give, but for the above)."""
    buf = io.BytesIO()
    Pickler(buf).dump(obj)
    return buf.getvalue()


_namespaces: dict[str, dict[str, Any]] = {}


def _make_function(code: types.CodeType, globals: dict[str, Any], name: str | None,
                   argdefs: tuple[Any, ...] | None,
                   closure: tuple[types.CellType, ...] | None) -> types.FunctionType:
    """cloudpickle's, but the first namespace rebuilt for a module is reused by later
    loads (cloudpickle rebuilds a module's globals per pickle)."""
    key = globals.get("__name__")
    if key is not None:
        globals = _namespaces.setdefault(key, globals)
    fn: types.FunctionType = _cp._make_function(code, globals, name, argdefs, closure)
    return fn


def _function_setstate(obj: types.FunctionType,
                       state: tuple[dict[str, Any] | None, dict[str, Any]]) -> None:
    """cloudpickle's, but a later load only adds the globals its module lacks (what the
    initializer set is kept, as in a process)."""
    own, slotstate = state
    known = obj.__globals__
    fresh = {k: v for k, v in slotstate["__globals__"].items() if k not in known}
    _cp._function_setstate(obj, (own, dict(slotstate, __globals__=fresh)))


def _loads(data: bytes) -> Any:
    return _Loader(io.BytesIO(data)).load()


class _Loader(pickle.Unpickler):
    """Reads cloudpickle's pickles with `_make_function` / `_function_setstate` in place of
    cloudpickle's own, for these loads only (nothing is patched process-wide, so whatever
    arrived by value can be pickled again); nested pickles load the same way. Persistent
    ids name large arguments in the node's object files (`objects`, each loaded once)."""

    _SWAP = types.MappingProxyType({
        ("cloudpickle.cloudpickle", "_make_function"): _make_function,
        ("cloudpickle.cloudpickle", "_function_setstate"): _function_setstate,
        ("_pickle", "loads"): _loads, ("pickle", "loads"): _loads})

    def __init__(self, file: IO[bytes], objects: dict[str, str] | None = None,
                 loaded: dict[str, Any] | None = None) -> None:
        super().__init__(file)
        self.objects = objects
        self.loaded = {} if loaded is None else loaded

    def find_class(self, module: str, name: str) -> Any:
        swap = self._SWAP.get((module, name))
        return swap if swap is not None else super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if not self.objects or pid not in self.objects:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        if pid not in self.loaded:
            self.loaded[pid] = _load(self.objects[pid])
        return self.loaded[pid]


def _load(name: str) -> Any:
    with open(name, "rb") as f:
        return pickle.load(f)


def _load_user(name: str) -> Any:
    with open(name, "rb") as f:
        return _Loader(f).load()


# ------------------------------------------------------------------------------ node objects
def _fetch_objects(urls: dict[str, str], node: dict[str, Any]) -> dict[str, str]:
    """The node's copy of each large argument (sha256 -> its file), downloaded at most once
    per node into ``$AZ_BATCH_NODE_SHARED_DIR/abx/objects/<sha256>`` and shared by every
    task there; `node` gets how many this task downloaded ("fetched") and their bytes."""
    if not urls:
        return {}
    shared = os.environ.get("AZ_BATCH_NODE_SHARED_DIR") or os.getcwd()
    directory = os.path.join(shared, *NODE_OBJECTS_DIR.split("/"))
    os.makedirs(directory, exist_ok=True)
    paths: dict[str, str] = {}
    fetched = nbytes = 0
    for digest, url in urls.items():
        paths[digest], n = _fetch(directory, digest, url)
        if n:
            fetched, nbytes = fetched + 1, nbytes + n
    node["fetched"], node["fetched_bytes"] = fetched, nbytes
    return paths


def _fetch(directory: str, digest: str, url: str) -> tuple[str, int]:
    """(path, bytes downloaded: 0 when the node had it). Under the object's lock, so that
    concurrent tasks of a node download it once; written whole, after its sha256 was
    checked (temp file + os.replace), so a file under that name is always complete."""
    if len(digest) != 64 or digest.strip("0123456789abcdef"):
        raise ValueError(f"bad object name {digest!r}")
    path = os.path.join(directory, digest)
    with _locked(path + ".lock"):
        if os.path.exists(path):
            os.utime(path)  # in use: `_prune` keeps it
            return path, 0
        _prune(directory)
        return path, _download(url, path, digest)


@contextlib.contextmanager
def _locked(name: str, block: bool = True) -> Iterator[bool]:
    """An exclusive flock on `name` (yields False when `block` is off and another process
    holds it). Without fcntl (not Linux) nothing is locked: a concurrent download is then
    repeated, never wrong."""
    try:
        import fcntl
    except ImportError:
        yield True
        return
    with open(name, "a+b") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _prune(directory: str) -> None:
    """Remove the objects no task of this node used for OBJECT_IDLE_SECONDS (and leftover
    temp files), so that the node's disk does not fill; a busy object is skipped."""
    import time

    cutoff = time.time() - OBJECT_IDLE_SECONDS
    for entry in os.scandir(directory):
        with contextlib.suppress(OSError):
            if entry.name.endswith(".lock") or entry.stat().st_mtime >= cutoff:
                continue
            if entry.name.endswith(".tmp"):
                os.remove(entry.path)
                continue
            with _locked(entry.path + ".lock", block=False) as mine:
                if mine and os.stat(entry.path).st_mtime < cutoff:
                    os.remove(entry.path)
                    os.remove(entry.path + ".lock")


def _download(url: str, path: str, digest: str) -> int:
    """Download `url` to `path`, checking its sha256. Throttling (429, 503), server errors
    and lost connections are retried for FETCH_PATIENCE seconds, backing off from 1 s to
    15 s, never sooner than a ``Retry-After``; any other refusal (403: an expired SAS,
    404) is final."""
    import hashlib
    import http.client
    import itertools
    import urllib.error
    import urllib.request

    where = url.split("?", 1)[0]  # never the SAS in a message
    tmp = f"{path}.{os.getpid()}.tmp"
    give_up = time.monotonic() + FETCH_PATIENCE
    for attempt in itertools.count():
        sha, n = hashlib.sha256(), 0
        try:
            with urllib.request.urlopen(url, timeout=60) as reply, open(tmp, "wb") as f:
                while chunk := reply.read(1 << 20):
                    sha.update(chunk)
                    f.write(chunk)
                    n += len(chunk)
                length = reply.headers.get("Content-Length")
                if length is not None and length.isdigit() and n < int(length):
                    # http.client's read(amt) returns a body cut short by a closed
                    # connection without raising: a lost connection, retried
                    raise ConnectionError(f"the connection closed after {n} of {length} bytes")
        except (OSError, http.client.HTTPException) as exc:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            refused = exc if isinstance(exc, urllib.error.HTTPError) else None
            pause = min(15.0, 2.0 ** attempt)
            if refused is not None:
                with contextlib.suppress(TypeError, ValueError):
                    pause = max(pause, float(refused.headers.get("Retry-After") or 0))
            if time.monotonic() + pause > give_up or (refused is not None
                                                      and refused.code not in _TRANSIENT_HTTP):
                reason = (f"HTTP {refused.code} {refused.reason}" if refused is not None
                          else _safe_str(exc))
                raise OSError(f"could not download the large argument {where} to this "
                              f"node's {NODE_OBJECTS_DIR}: {reason}") from None
            time.sleep(pause)
            continue
        if sha.hexdigest() != digest:  # never under its name: the next task tries again
            os.remove(tmp)
            raise OSError(f"the large argument {where} downloaded to this node is not the "
                          f"one its name says: its sha256 is {sha.hexdigest()} ({n} bytes)")
        os.replace(tmp, path)
        return n
    raise AssertionError("unreachable")


# ------------------------------------------------------------------------------ rows
def _error(exc: BaseException, skip: int = 0) -> ErrorRow:
    """An error row for `exc`: the pickled exception (or None) and its text; `skip` drops
    the worker's own outermost frames from the traceback."""
    tb_obj = exc.__traceback__
    for _ in range(skip):
        tb_obj = tb_obj.tb_next if tb_obj is not None and tb_obj.tb_next else tb_obj
    tb = "".join(traceback.format_exception(type(exc), exc, tb_obj))
    try:
        payload = dumps(exc)
    except BaseException:  # noqa: BLE001 - unpicklable: the type, text and traceback go back
        payload = None
    return ("raise", payload, _type_name(exc), _safe_str(exc), tb)


def _safe_str(obj: object) -> str:
    try:
        return str(obj)
    except BaseException:  # noqa: BLE001 - a broken __str__ must not lose the error row
        return "<str() failed>"


def _result(value: object) -> Row:
    try:
        return ("ok", dumps(value))
    except BaseException as exc:  # noqa: BLE001 - any pickling failure becomes a "badresult" row
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        msg = f"result of type {_type_name(value)} could not be pickled: {_safe_str(exc)}"
        return ("badresult", None, _type_name(value), msg, tb)


def _write_outputs(outcome: dict[str, Any], wd: str) -> None:
    tmp = os.path.join(wd, WORKER_OUTPUTS_FILE + ".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(outcome, f, protocol=4)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(wd, WORKER_OUTPUTS_FILE))


def _output_tails(wd: str) -> dict[str, tuple[bytes, int]]:
    """The last OUTPUT_TAIL_BYTES of the task's stdout.txt and stderr.txt (written by Batch
    in the task directory, the parent of `wd`) with their sizes; missing files are left out."""
    tails: dict[str, tuple[bytes, int]] = {}
    for stream in ("stdout", "stderr"):
        try:
            with open(os.path.join(wd, os.pardir, stream + ".txt"), "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - OUTPUT_TAIL_BYTES))
                tails[stream] = (f.read(OUTPUT_TAIL_BYTES), size)
        except OSError:
            pass
    return tails


def _write_inline(variable: str, name: str) -> None:
    """A file that came inline (base64 in `variable`) written to `name`, as if downloaded."""
    inline = os.environ.get(variable)
    if inline:
        with open(name + ".tmp", "wb") as f:
            f.write(base64.b64decode(inline))
        os.replace(name + ".tmp", name)


# ------------------------------------------------------------------------------ nesting
def _register_sequential(joblib: types.ModuleType) -> None:
    # joblib imports its _parallel_backends module itself; a joblib without this API:
    # nothing to register
    with contextlib.suppress(Exception):
        joblib.register_parallel_backend("azure_batch",
                                         joblib._parallel_backends.SequentialBackend)


class _JoblibHook:
    """A meta-path finder that registers the sequential "azure_batch" backend the moment
    joblib is imported (without importing joblib into tasks that never use it)."""

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> ModuleSpec | None:
        if name != "joblib":
            return None
        sys.meta_path.remove(self)
        import importlib.util
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_register(module: types.ModuleType) -> None:
            exec_module(module)
            _register_sequential(module)

        spec.loader.exec_module = exec_and_register  # type: ignore[method-assign]
        return spec


def _nest_sequentially() -> None:
    os.environ[TASK_ENV] = os.environ.get("AZ_BATCH_TASK_ID") or "unknown"
    if "joblib" in sys.modules:
        _register_sequential(sys.modules["joblib"])
    else:
        sys.meta_path.insert(0, _JoblibHook())


# ------------------------------------------------------------------------------ the run
def run() -> dict[str, Any]:
    _write_inline(INLINE_CONFIG_ENV, GLOBAL_CONFIG_FILE)
    _write_inline(INLINE_INPUTS_ENV, WORKER_INPUTS_FILE)
    config = _load(GLOBAL_CONFIG_FILE)
    node: dict[str, Any] = dict(_versions(), host=platform.node(),
                                node_id=os.environ.get("AZ_BATCH_NODE_ID", ""))
    results: list[Row] = []
    outcome: dict[str, Any] = {"format": WIRE_FORMAT, "node": node, "fatal": None,
                               "results": results}
    client = {"python": config.get("python"), "cloudpickle": config.get("cloudpickle")}
    if client != _versions():
        message = (
            f"version mismatch: the client runs Python {client['python']} with cloudpickle "
            f"{client['cloudpickle']}, the node runs Python {node['python']} with cloudpickle "
            f"{node['cloudpickle']}; build the node image (or pool) from the client's versions"
        )
        outcome["fatal"] = ("versions", None, "VersionMismatchError", message, "")
        return outcome
    _nest_sequentially()
    stage = "initializer"  # like a process pool: the initializer runs before any task loads
    try:
        if config.get("initializer"):
            initializer, initargs = _loads(config["initializer"])
            initializer(*initargs)
        stage = "inputs"
        spec = _load(WORKER_INPUTS_FILE)
        objects = _fetch_objects(spec.get("objects") or {}, node)
        fn, calls = _Loader(io.BytesIO(spec["call"]), objects).load()
        if spec.get("shared"):
            fn = _load_user(spec["shared"])
    except BaseException as exc:  # noqa: BLE001 - reported in outputs.pickle, the worker exits 0
        outcome["fatal"] = (stage, *_error(exc)[1:])
        return outcome
    began = time.perf_counter()
    for args, kwargs in calls:
        try:
            row = _result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - user code: any error goes back as its row
            row = _error(exc, skip=1)
        results.append(row)
    node["calls_seconds"] = time.perf_counter() - began  # map(chunksize=None) sizes by it
    return outcome


def main() -> int:
    wd = os.getcwd()  # user code may chdir
    outcome = run()
    sys.stdout.flush()
    sys.stderr.flush()
    outcome["output"] = _output_tails(wd)
    _write_outputs(outcome, wd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
