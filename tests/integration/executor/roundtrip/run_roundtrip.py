"""Run by test_round_trip.py as a script: every kind, from every origin, every direction.

Prints one JSON line per case: {"origin", "kind", "direction", "problem", "traceback"}.
"""

import json
import linecache
import pathlib
import sys

from azure_batch_executor import AzureBatchExecutor

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))
import user_defs  # noqa: E402 - a local module beside the script

DEFS = (HERE / "user_defs.py").read_text()
exec(compile(DEFS, str(HERE / "user_defs.py"), "exec"), globals())  # as if defined in __main__

CELL = "<ipython-input-7-0123abcd>"  # a notebook cell: IPython puts its text in linecache
linecache.cache[CELL] = (len(DEFS), None, DEFS.splitlines(True), CELL)
notebook = {"__name__": "__main__"}
exec(compile(DEFS, CELL, "exec"), notebook)  # as if run in a notebook cell

ORIGINS = {"module": vars(user_defs), "main": globals(), "notebook": notebook}
KINDS = user_defs.VALUE_KINDS + (user_defs.ERROR_KINDS if sys.version_info >= (3, 11)
                                 else ("exception", "chained"))


def main():
    cases = []
    with AzureBatchExecutor(max_workers=4) as ex:
        for origin, ns in ORIGINS.items():
            for kind in KINDS:
                cases.append((origin, kind, "result", ex.submit(ns["build"], kind)))
                cases.append((origin, kind, "argument", ex.submit(ns["echo"], ns["make"](kind))))
                if kind in user_defs.ERROR_KINDS:
                    cases.append((origin, kind, "raised", ex.submit(ns["fail"], kind)))
        for origin, kind, direction, future in cases:
            ns = ORIGINS[origin]
            tb = ""
            if direction == "raised":
                exc = future.exception()
                problem = ns["check"](kind, exc)
                tb = str(exc.__cause__) if exc is not None else ""
                if not problem and kind == "exception":
                    try:  # caught by the user's own type, as locally
                        future.result()
                    except ns["AppError"] as caught:
                        problem = "" if caught.describe() == "7:x" else "wrong AppError"
            else:
                try:
                    problem = ns["check"](kind, future.result())
                except BaseException as exc:  # noqa: BLE001 - reported to the test
                    problem = f"{type(exc).__name__}: {exc}"
            print(json.dumps({"origin": origin, "kind": kind, "direction": direction,
                              "problem": problem, "traceback": tb}), flush=True)


if __name__ == "__main__":
    main()
