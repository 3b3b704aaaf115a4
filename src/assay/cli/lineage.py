"""`assay lineage`: the relation of two models, or the lineage forest of many.

Exit codes: for a pair, 0 when B holds the same weights as A, 1 for any other relation
(including `unrelated`), 2 on error, as `assay diff`; for a forest, 0 when it was inferred,
2 on error.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from assay import api
from assay.cli.common import EXIT_FOUND, EXIT_OK, fail
from assay.errors import AssayError


class LineageFormat(StrEnum):
    text = "text"
    json = "json"
    dot = "dot"
    html = "html"



def _write(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise fail(f"{output}: cannot write: {exc.strerror or exc}") from None


def _emit_rich(renderable: Any, output: str | None) -> None:
    """Print for people: styled on a terminal, plain text to a pipe or a file."""
    import io

    from rich.console import Console
    if output is None:
        out = Console(highlight=False)
        (out if out.is_terminal else Console(highlight=False, width=160)).print(renderable)
        return
    rec = Console(highlight=False, width=160, record=True, file=io.StringIO())
    rec.print(renderable)
    _write(rec.export_text(), output)


class _Progress:
    """Models fingerprinted, then pairs compared, on stderr when it is a terminal."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.tasks: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.bar is None:
            if not sys.stderr.isatty():
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
            self.bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            self.bar.start()
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(stage, total=total)
        self.bar.update(self.tasks[stage], completed=done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def lineage(
    paths: Annotated[list[str], typer.Argument(metavar="PATH...",
        help="Two models (A B: the relation of B to A), or three or more, or folders of models "
             "(their lineage forest).")],
    fmt: Annotated[LineageFormat, typer.Option("--format", "-f", help="text, json, dot or html.")]
    = LineageFormat.text,
    output: Annotated[str | None, typer.Option("--output", "-o", metavar="FILE",
                                               help="Write the result to FILE instead of stdout.")] = None,
    forest: Annotated[bool, typer.Option("--forest", help="Infer a forest even for two models.")] = False,
    min_confidence: Annotated[float, typer.Option("--min-confidence", min=0.0, max=1.0,
                                                  help="Ignore relations less certain than this.")] = 0.5,
) -> None:
    """Which model derives from which, judged from the weights; declared metadata shown beside.

    Exit 0 same weights (pair) or forest inferred, 1 any other relation of a pair, 2 error."""
    from assay.render import lineage as render
    try:
        models = api.lineage_inputs(paths)
        if len(models) < 2:
            raise fail(f"{paths[0]}: lineage needs two models (A B) or more, or a folder of models")
        pair = (not forest and len(paths) == 2 and len(models) == 2 and models == paths
                and fmt in (LineageFormat.text, LineageFormat.json))
        if pair:
            verdict = api.lineage_pair(models[0], models[1])
        else:
            bar = _Progress()
            try:
                result = api.lineage_forest(models, min_confidence=min_confidence, progress=bar)
            finally:
                bar.close()
    except AssayError as exc:
        raise fail(exc.one_line()) from None
    if pair:
        a, b = models
        if fmt is LineageFormat.json:
            _write(json.dumps(render.pair_to_json(a, b, verdict), indent=2) + "\n", output)
        else:
            _emit_rich(render.pair_to_text(a, b, verdict), output)
        raise typer.Exit(EXIT_OK if verdict.relation == "same" else EXIT_FOUND)
    if fmt is LineageFormat.json:
        _write(json.dumps(render.forest_to_json(result), indent=2) + "\n", output)
    elif fmt is LineageFormat.dot:
        _write(render.forest_to_dot(result), output)
    elif fmt is LineageFormat.html:
        _write(render.forest_to_html(result, title=f"assay lineage of {len(result.nodes)} models"), output)
    else:
        _emit_rich(render.forest_to_tree(result), output)
    raise typer.Exit(EXIT_OK)
