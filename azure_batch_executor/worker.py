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

Shapes (plain pickles of builtins; the cloudpickled parts are bytes inside):
    config.pickle  {"format", "python", "cloudpickle", "initializer": bytes | None}
    inputs.pickle  {"format", "shared": file name | None, "call": bytes of (fn | None, calls),
                    "objects": {sha256: file name} (optional)}
                   (fn is None when a map() function comes as the resource file `shared`;
                   "call" holds persistent ids (sha256) for the large arguments, each a
                   resource file named in "objects")
    outputs.pickle {"format", "node": {...}, "fatal": None | (stage, *error), "results": [...]}
    error / result rows: ("ok", bytes) | ("raise", bytes | None, type, message, traceback)
                         | ("badresult", None, type, message, traceback)

Imports: the standard library and cloudpickle only.
"""

import base64
import io
import os
import pickle
import platform
import sys
import traceback

import cloudpickle

GLOBAL_CONFIG_FILE = "config.pickle"
WORKER_INPUTS_FILE = "inputs.pickle"
WORKER_OUTPUTS_FILE = "outputs.pickle"
INLINE_INPUTS_ENV = "ABX_INPUTS_B64"
INLINE_CONFIG_ENV = "ABX_CONFIG_B64"
WIRE_FORMAT = 1


def _versions():
    return {"python": "{}.{}".format(*sys.version_info[:2]),
            "cloudpickle": cloudpickle.__version__}


def _type_name(obj):
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _error(exc, skip=0):
    """An error row for `exc`: the pickled exception (or None) and its text; `skip` drops
    the worker's own outermost frames from the traceback."""
    tb_obj = exc.__traceback__
    for _ in range(skip):
        tb_obj = tb_obj.tb_next if tb_obj is not None and tb_obj.tb_next else tb_obj
    tb = "".join(traceback.format_exception(type(exc), exc, tb_obj))
    try:
        payload = cloudpickle.dumps(exc)
    except BaseException:
        payload = None
    return ("raise", payload, _type_name(exc), _safe_str(exc), tb)


def _safe_str(obj):
    try:
        return str(obj)
    except BaseException:
        return "<str() failed>"


def _result(value):
    try:
        return ("ok", cloudpickle.dumps(value))
    except BaseException as exc:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        msg = f"result of type {_type_name(value)} could not be pickled: {_safe_str(exc)}"
        return ("badresult", None, _type_name(value), msg, tb)


def _write_outputs(outcome, wd):
    tmp = os.path.join(wd, WORKER_OUTPUTS_FILE + ".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(outcome, f, protocol=4)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(wd, WORKER_OUTPUTS_FILE))


def _share_module_namespaces():
    """Give functions pickled by value from one module one namespace, as an import would.

    cloudpickle rebuilds a module's globals per pickle, so an initializer (config.pickle) and
    a task function (inputs.pickle) from the same module would not see each other's globals.
    Here the first namespace rebuilt for a module name is reused by later loads, and a later
    load only adds the names it lacks (what the initializer set is kept, as in a process).
    """
    import cloudpickle.cloudpickle as cp

    make, setstate = getattr(cp, "_make_function", None), getattr(cp, "_function_setstate", None)
    if make is None or setstate is None:
        return
    namespaces: dict = {}

    def _make_function(code, globals, name, argdefs, closure):
        key = globals.get("__name__")
        if key is not None:
            globals = namespaces.setdefault(key, globals)
        return make(code, globals, name, argdefs, closure)

    def _function_setstate(obj, state):
        state, slotstate = state
        known = obj.__globals__
        fresh = {k: v for k, v in slotstate["__globals__"].items() if k not in known}
        return setstate(obj, (state, dict(slotstate, __globals__=fresh)))

    cp._make_function = _make_function
    cp._function_setstate = _function_setstate


def _load(name):
    with open(name, "rb") as f:
        return pickle.load(f)


def _load_call(spec):
    """(fn | None, calls) of a spec; large arguments come from their own resource files,
    named in spec["objects"] by the persistent ids the client's pickler left (each loaded
    once, so a batch that passes one array to many calls sees one object)."""
    objects = spec.get("objects")
    if not objects:
        return cloudpickle.loads(spec["call"])
    loaded = {}

    class _Unpickler(pickle.Unpickler):
        def persistent_load(self, pid):
            if pid not in loaded:
                loaded[pid] = _load(objects[pid])
            return loaded[pid]

    return _Unpickler(io.BytesIO(spec["call"])).load()


def _write_inline(variable, name):
    """A file that came inline (base64 in `variable`) written to `name`, as if downloaded."""
    inline = os.environ.get(variable)
    if inline:
        with open(name + ".tmp", "wb") as f:
            f.write(base64.b64decode(inline))
        os.replace(name + ".tmp", name)


def run():
    _write_inline(INLINE_CONFIG_ENV, GLOBAL_CONFIG_FILE)
    _write_inline(INLINE_INPUTS_ENV, WORKER_INPUTS_FILE)
    config = _load(GLOBAL_CONFIG_FILE)
    node = dict(_versions(), host=platform.node())
    results: list = []
    outcome = {"format": WIRE_FORMAT, "node": node, "fatal": None, "results": results}
    client = {"python": config.get("python"), "cloudpickle": config.get("cloudpickle")}
    if client != _versions():
        message = (
            f"version mismatch: the client runs Python {client['python']} with cloudpickle "
            f"{client['cloudpickle']}, the node runs Python {node['python']} with cloudpickle "
            f"{node['cloudpickle']}; build the node image (or pool) from the client's versions"
        )
        outcome["fatal"] = ("versions", None, "VersionMismatchError", message, "")
        return outcome
    _share_module_namespaces()
    stage = "initializer"  # like a process pool: the initializer runs before any task loads
    try:
        if config.get("initializer"):
            initializer, initargs = cloudpickle.loads(config["initializer"])
            initializer(*initargs)
        stage = "inputs"
        spec = _load(WORKER_INPUTS_FILE)
        fn, calls = _load_call(spec)
        if spec.get("shared"):
            with open(spec["shared"], "rb") as f:
                fn = cloudpickle.load(f)
    except BaseException as exc:
        outcome["fatal"] = (stage,) + _error(exc)[1:]
        return outcome
    for args, kwargs in calls:
        try:
            row = _result(fn(*args, **kwargs))
        except BaseException as exc:
            row = _error(exc, skip=1)
        results.append(row)
    return outcome


def main():
    wd = os.getcwd()  # user code may chdir
    outcome = run()
    sys.stdout.flush()
    sys.stderr.flush()
    _write_outputs(outcome, wd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
