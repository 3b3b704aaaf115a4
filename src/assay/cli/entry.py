"""The `assay` program's entry point: starts what a command will need before the command line
library is imported, then hands over to `assay.cli.main`.

A scan reads files in worker processes forked from a nursery that first imports every reader
and rule (see `assay.jobs`); started here, that happens while this process imports Typer and
parses the arguments, instead of after."""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def main() -> None:
    scan = sys.argv[1:2] == ["scan"] and not {"-h", "--help"} & set(sys.argv[2:])
    code = run(scan)
    if scan:
        _leave(code)
    sys.exit(code)


def run(scan: bool) -> int | str | None:
    """Run the command in `sys.argv` (a scan's nursery started first); its exit code."""
    if scan:
        try:
            from assay.api import prestart_scan
            prestart_scan()
        except OSError:         # no fork here (a process limit): the scan forks later
            pass
    from assay.cli.main import main as command
    try:
        command()
    except SystemExit as exc:
        return exc.code
    return 0


def _leave(code: int | str | None) -> NoReturn:
    """End a scan once its report is written, without the interpreter's teardown (freeing every
    module and object, a few milliseconds that a command run once per file set would pay every
    time). Output is flushed first, and a message exit code printed, as Python's exit would."""
    if isinstance(code, str):
        sys.stderr.write(code + "\n")
    status = code if isinstance(code, int) else 0 if code is None else 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):     # a closed pipe: the reader went away
            status = status or 1
    os._exit(status)


if __name__ == "__main__":
    main()
