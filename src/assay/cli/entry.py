"""The `assay` program's entry point: starts what a command will need before the command line
library is imported, then hands over to `assay.cli.main`.

A scan reads files in worker processes forked from a nursery that first imports every reader
and rule (see `assay.jobs`); started here, that happens while this process imports Typer and
parses the arguments, instead of after."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["scan"] and not {"-h", "--help"} & set(sys.argv[2:]):
        try:
            from assay.api import prestart_scan
            prestart_scan()
        except OSError:         # no fork here (a process limit): the scan forks later
            pass
    from assay.cli.main import main as run
    run()


if __name__ == "__main__":
    main()
