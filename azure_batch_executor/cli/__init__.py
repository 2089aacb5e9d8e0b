"""The `azure-batch-executor` command: the parser of its subcommands, and `main`.

    azure-batch-executor emulator [--host 127.0.0.1] [--port 0] [--nodes N] [--slots N]
                                  [--loose] [--realistic-casing] [--path-prefix DIR ...]
    azure-batch-executor local [--nodes N] [--slots N] [--loose]   (emulator + Azurite)
    azure-batch-executor env --resource-group NAME                 (settings from `az`)
    azure-batch-executor dockerfile [...]                          (a worker image)
    azure-batch-executor jobs [--all] [--pool-id POOL]             (this package's jobs)
    azure-batch-executor status JOB                                (a job, its pool)
    azure-batch-executor logs JOB [TASK] [--stderr] [--follow]     (what tasks printed)
    azure-batch-executor cleanup [--older-than DURATION] [--dry-run] [--environments]
    azure-batch-executor pools [--mine]                            (pools and nodes)
    azure-batch-executor --version

The account commands (`jobs`, `status`, `logs`, `cleanup`, `pools`) take the account
options and `--output table|json`, resolved as the executor resolves its settings, or
use a running local stack (`accounts`).

Role: assemble the parser and dispatch; nothing else. Each subcommand is a
module of this package (`local`, `emulator`, `env`, `dockerfile`, `jobs`, `status`,
`logs`, `cleanup`, `pools`) with
`add_parser(subparsers)`, which registers it and sets `handler`, and
`run(args)`, which returns the exit code; `COMMANDS` lists them, so adding a
tool is one module and one entry. A `CommandError` a command raises is printed
by `main` as one line on stderr, with exit code 2, like a usage error
(`serving` holds it and what `local` and `emulator` share). The commands import what they run (the
emulator, the local stack) only in `run`, so `--help` stays quick.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from .. import __version__
from . import cleanup, dockerfile, emulator, env, jobs, local, logs, pools, status
from .serving import EXIT_USAGE, CommandError

PROG = "azure-batch-executor"

COMMANDS: dict[str, ModuleType] = {
    "emulator": emulator,
    "local": local,
    "env": env,
    "dockerfile": dockerfile,
    "jobs": jobs,
    "status": status,
    "logs": logs,
    "cleanup": cleanup,
    "pools": pools,
}


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, pointing at `--help`, with argparse's exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Tools of azure-batch-executor, a concurrent.futures Executor on Azure "
                    "Batch: a local stand-in for Azure, account settings, worker images, "
                    "and the jobs, logs and pools it made in an account.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for command in COMMANDS.values():
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.handler(args)
    except CommandError as exc:
        print(f"{PROG} {args.command}: error: {exc.one_line()}", file=sys.stderr)
        return EXIT_USAGE
    return result


if __name__ == "__main__":
    sys.exit(main())
