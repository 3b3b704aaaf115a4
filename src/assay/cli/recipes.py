"""`assay rebuild` and `assay challenge`: rebuild weights from their recipe; check a published
file against it. Exit codes: rebuild 0 built (and matching the recipe's expected identities),
1 built but differing from them; challenge 0 byte-identical, identical, close or equivalent,
1 differs; both 2 on error (a bad recipe, an input whose digest differs, a failed build).
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated

import typer

from assay import api
from assay.cli.common import EXIT_FOUND, EXIT_OK, fail, log
from assay.errors import AssayError


class Format(StrEnum):
    text = "text"
    json = "json"




def _emit(doc: dict) -> None:
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


def rebuild(
    recipe: Annotated[str, typer.Argument(help="The recipe TOML (see docs/recipes.md).")],
    output: Annotated[str | None, typer.Option("--output", "-o", metavar="DIR",
                                               help="Where to write the outputs and build.json "
                                                    "(default ./build/<recipe name>).")] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1,
                                                help="Override the recipe's thread count.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an earlier build in DIR.")] = False,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
) -> None:
    """Rebuild weights from their recipe (pinned inputs checked first, training in a child process).

    Writes the outputs and a build record (build.json). Exit 0 built, 1 the outputs differ from
    the recipe's expected identities, 2 error."""
    from assay.render import recipes as render
    try:
        rec = api.rebuild(recipe, output, threads=threads, force=force, log=log)
    except AssayError as exc:
        raise fail(exc.one_line()) from None
    if fmt is Format.json:
        _emit(render.build_json(rec))
    else:
        sys.stdout.write(render.build_text(rec))
    raise typer.Exit(EXIT_OK if rec.matches_expected else EXIT_FOUND)


def challenge(
    recipe: Annotated[str, typer.Argument(help="The recipe TOML the published weights claim to come from.")],
    published: Annotated[str, typer.Argument(help="The published weights (file or folder), or another "
                                                  "build's build.json.")],
    record: Annotated[str | None, typer.Option("--record", metavar="BUILD.json",
                                               help="Reuse this rebuild instead of building again.")] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", metavar="DIR",
                                               help="Keep the rebuild in DIR.")] = None,
    noise_threads: Annotated[int | None, typer.Option("--noise-threads", min=0,
        help="Thread count of the rebuild that measures the noise band (default: one more than the "
             "rebuild's; 0: measure none).")] = None,
    noise_record: Annotated[str | None, typer.Option("--noise-record", metavar="BUILD.json",
        help="Take the noise band from this build (another thread count) instead.")] = None,
    probe: Annotated[bool, typer.Option("--probe/--no-probe",
                                        help="Evaluate the recipe's probe set when tensors differ.")] = True,
    name: Annotated[str | None, typer.Option("--name", help="Which of the recipe's outputs "
                                                            "(default: the first).")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
) -> None:
    """Was PUBLISHED built from RECIPE? The strongest verdict that holds, from a rebuild.

    byte-identical, identical tensors, close within the noise band, equivalent on the probe set,
    or differs. Exit 0 for the first four, 1 differs, 2 error."""
    from assay.render import recipes as render
    try:
        res = api.challenge(recipe, published, record=record, out_dir=output, noise_threads=noise_threads,
                            noise_record=noise_record, probe=probe, output=name, log=log)
    except AssayError as exc:
        raise fail(exc.one_line()) from None
    if fmt is Format.json:
        _emit(render.challenge_json(res))
    else:
        sys.stdout.write(render.challenge_text(res))
    raise typer.Exit(EXIT_OK if res.reproduced else EXIT_FOUND)
