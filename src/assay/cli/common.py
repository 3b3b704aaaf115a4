"""What every command module shares: exit codes and one-line messages on stderr (plain text,
so the error path never imports rich)."""

from __future__ import annotations

import sys
from typing import Any

import typer

EXIT_OK, EXIT_FOUND, EXIT_ERROR = 0, 1, 2


def fail(message: str) -> typer.Exit:
    """Print `assay: error: <message>` and return the exit to raise (code 2)."""
    sys.stderr.write(f"assay: error: {message}\n")
    return typer.Exit(EXIT_ERROR)


def log(message: str) -> None:
    sys.stderr.write(f"assay: {message}\n")


def json_rows(doc: dict[str, Any]) -> str:
    """A JSON object laid out one key per line and, for list values, one item per line (a
    file of a scan report, say), each item compact: as easy to read and to grep as `indent=2`
    for a long report, and written by the json module's C encoder (`indent` turns it off,
    which made writing a large report a noticeable part of a scan's time)."""
    import json
    enc = json.JSONEncoder(default=str).encode
    lines = []
    for key, value in doc.items():
        if isinstance(value, list) and value:
            items = ",\n".join("    " + enc(item) for item in value)
            lines.append(f"  {enc(key)}: [\n{items}\n  ]")
        else:
            lines.append(f"  {enc(key)}: {enc(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"
