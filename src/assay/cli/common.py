"""What every command module shares: exit codes and one-line messages on stderr (plain text,
so the error path never imports rich)."""

from __future__ import annotations

import sys

import typer

EXIT_OK, EXIT_FOUND, EXIT_ERROR = 0, 1, 2


def fail(message: str) -> typer.Exit:
    """Print `assay: error: <message>` and return the exit to raise (code 2)."""
    sys.stderr.write(f"assay: error: {message}\n")
    return typer.Exit(EXIT_ERROR)


def log(message: str) -> None:
    sys.stderr.write(f"assay: {message}\n")
