"""`assay catalog`: add models to a lineage catalog, find a model's relatives, draw the graph,
remove models.

The catalog is `--catalog PATH-or-URL`, else `$ASSAY_CATALOG`, else
`$XDG_DATA_HOME/assay/catalog.sqlite`. Exit codes: 0 done (for `find`: relatives found), 1 `find`
found no relative or `remove` named a model not catalogued, 2 error (bad catalog URL or file,
unreadable model, bad usage; `add` still adds the models it can read).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

import typer

from assay import api
from assay.cli.common import EXIT_ERROR, EXIT_FOUND, EXIT_OK, fail
from assay.errors import AssayError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="A catalog of models and their lineage (SQLite file or PostgreSQL).")

Location = Annotated[str | None, typer.Option(
    "--catalog", "-c", metavar="PATH-or-URL", show_default=False,
    help="SQLite file or postgresql+psycopg:// URL [default: $ASSAY_CATALOG, else "
         "$XDG_DATA_HOME/assay/catalog.sqlite].")]
Times = Annotated[bool, typer.Option("--times", help="Show when each model was added.")]


class Format(StrEnum):
    text = "text"
    json = "json"


class GraphFormat(StrEnum):
    text = "text"
    json = "json"
    dot = "dot"
    html = "html"


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]



def _json(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


def _print(renderable: Any) -> None:
    from rich.console import Console
    out = Console(highlight=False)
    (out if out.is_terminal else Console(highlight=False, width=160)).print(renderable)


def _emit(fmt: Format, to_json: Callable[..., dict[str, Any]], to_text: Callable[..., Any],
          *args: Any) -> None:
    """One result in the asked format: the JSON document, or text for people."""
    if fmt is Format.json:
        _json(to_json(*args))
    else:
        _print(to_text(*args))


def _name(catalog: str | None) -> str:
    from assay.catalog.location import resolve
    return resolve(catalog)[1]


@app.command("add")
def add(
    paths: Annotated[list[str], typer.Argument(help="Weight files, model folders, folders of models.")],
    catalog: Location = None,
    label: Annotated[str | None, typer.Option("--label", help="Name for the one model added "
                                              "[default: its absolute path].")] = None,
    fmt: FormatOpt = Format.text,
    times: Times = False,
) -> None:
    """Add models (idempotent: a content identity already catalogued is not added twice).
    A model that cannot be read is reported and skipped; the exit code is then 2."""
    from assay.render import catalog as render
    errors: list[AssayError] = []
    try:
        name = _name(catalog)
        added = api.catalog_add(paths, catalog=catalog, label=label, on_error=errors.append)
    except AssayError as exc:
        raise fail(exc.one_line()) from None
    if fmt is Format.json:
        _json(render.add_to_json(name, added, times))
    else:
        _print(render.add_to_text(name, added))
    for exc in errors:
        sys.stderr.write(f"assay: error: {exc.one_line()}\n")
    raise typer.Exit(EXIT_ERROR if errors else EXIT_OK)


@app.command("find")
def find(
    path: Annotated[str, typer.Argument(help="A weight file or model folder.")],
    catalog: Location = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Relatives shown at most.")] = 10,
    fmt: FormatOpt = Format.text,
) -> None:
    """The nearest relatives of a model in the catalog, with relation and confidence.
    Exit 0 when some were found, 1 when none."""
    from assay.render import catalog as render
    try:
        name = _name(catalog)
        result = api.catalog_find(path, catalog=catalog, limit=limit)
    except AssayError as exc:
        raise fail(exc.one_line()) from None
    _emit(fmt, render.find_to_json, render.find_to_text, name, result)
    raise typer.Exit(EXIT_OK if result.matches else EXIT_FOUND)


@app.command("list")
def list_(catalog: Location = None, fmt: FormatOpt = Format.text, times: Times = False) -> None:
    """The catalogued models, in the order they were added."""
    from assay.render import catalog as render
    try:
        name = _name(catalog)
        entries = api.catalog_list(catalog=catalog)
    except AssayError as exc:
        raise fail(exc.one_line()) from None
    _emit(fmt, render.list_to_json, render.list_to_text, name, entries, times)


@app.command("remove")
def remove(
    targets: Annotated[list[str], typer.Argument(
        metavar="MODEL...", help="Content identities (assay-model-v1:..., or 12 or more of their "
                                 "first hex digits, as `list` shows them), or weight files and "
                                 "model folders.")],
    catalog: Location = None,
    fmt: FormatOpt = Format.text,
) -> None:
    """Take models out of the catalog, with the relations they take part in.
    Exit 0 when every one named was catalogued, 1 when some were not."""
    from assay.render import catalog as render
    try:
        name = _name(catalog)
        removed, missing = api.catalog_remove(targets, catalog=catalog)
    except AssayError as exc:
        raise fail(exc.one_line()) from None
    _emit(fmt, render.remove_to_json, render.remove_to_text, name, removed, missing)
    raise typer.Exit(EXIT_FOUND if missing else EXIT_OK)


@app.command("graph")
def graph(
    catalog: Location = None,
    fmt: Annotated[GraphFormat, typer.Option("--format", "-f", help="text, json, dot or html.")]
    = GraphFormat.text,
) -> None:
    """The catalog's lineage graph, from the relations found when models were added."""
    from assay.render import lineage as render
    try:
        forest = api.catalog_graph(catalog=catalog)
    except AssayError as exc:
        raise fail(exc.one_line()) from None
    if fmt is GraphFormat.json:
        _json(render.forest_to_json(forest))
    elif fmt is GraphFormat.dot:
        sys.stdout.write(render.forest_to_dot(forest))
    elif fmt is GraphFormat.html:
        sys.stdout.write(render.forest_to_html(forest, "assay catalog lineage"))
    else:
        _print(render.forest_to_tree(forest))
