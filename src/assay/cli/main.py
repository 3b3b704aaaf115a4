"""`assay` command line. Results to stdout, errors as one line to stderr; exit 0 / 1 / 2."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console

from assay import api
from assay.errors import AssayError
from assay.render import inspect as render_inspect

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Read, scan, identify and trace model weights without executing them.")
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_OK, EXIT_FOUND, EXIT_ERROR = 0, 1, 2


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


def fail(message: str) -> typer.Exit:
    err.print(f"assay: error: {message}", markup=False)
    return typer.Exit(EXIT_ERROR)


@app.command()
def inspect(
    path: Annotated[str, typer.Argument(help="A weight file or a model folder.")],
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]
    = OutputFormat.text,
    tensors: Annotated[bool, typer.Option("--tensors", help="List every tensor.")] = False,
) -> None:
    """What is in a weight file or model folder: format, tensors, dtypes, metadata."""
    try:
        summary = api.inspect(path, tensors=tensors)
    except AssayError as exc:
        raise fail(exc.one_line()) from None
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(render_inspect.to_json(summary), indent=2, default=str) + "\n")
    else:
        out = Console(highlight=False)
        if not out.is_terminal:
            out = Console(highlight=False, width=160)
        out.print(render_inspect.to_text(summary))


@app.callback()
def _root() -> None:
    """assay: pretrained model weights, treated like binaries."""


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("assay: interrupted")
        sys.exit(130)
    except SystemExit:
        raise
    except BaseException as exc:  # a bug in assay: still one line, never a traceback
        err.print(f"assay: internal error: {type(exc).__name__}: {exc}", markup=False)
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
