"""Run every benchmark module in this folder: `python -m benchmarks`."""

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> int:
    folder = Path(__file__).parent
    for info in sorted(pkgutil.iter_modules([str(folder)]), key=lambda m: m.name):
        if info.name.startswith("bench_"):
            print(f"== {info.name}", flush=True)
            module = importlib.import_module(f"benchmarks.{info.name}")
            module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
