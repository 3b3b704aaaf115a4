"""`assay audit MODEL [--tests ...] [--against BASE]`: association tests on weight files."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import Annotated

import typer

from assay.cli.common import fail
from assay.errors import AssayError


class AuditFormat(StrEnum):
    text = "text"
    json = "json"
    html = "html"



def audit(
    model: Annotated[str | None, typer.Argument(
        help="Sentence-encoder folder or word-vector file; with --data, a classifier (ONNX or "
             "scikit-learn).")] = None,
    tests: Annotated[str | None, typer.Option(
        "--tests", metavar="IDS|FILE",
        help="Comma-separated test ids (weat1,...,weat10), or a TOML file of tests.")] = None,
    against: Annotated[str | None, typer.Option(
        "--against", metavar="BASE", help="Compare with the model this one derives from.")] = None,
    fmt: Annotated[AuditFormat, typer.Option("--format", "-f", help="text, json or html.")]
    = AuditFormat.text,
    output: Annotated[str | None, typer.Option("--output", "-o", metavar="FILE",
                                               help="Write the report to FILE.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the permutations and bootstrap.")] = 0,
    permutations: Annotated[int, typer.Option("--permutations", min=100,
                                              help="Monte-Carlo permutations.")] = 10_000,
    threshold: Annotated[float, typer.Option("--threshold", min=0.0,
                                             help="Effect-size change that counts as a shift.")] = 0.5,
    alpha: Annotated[float, typer.Option("--alpha", min=0.0, max=1.0,
                                         help="Significance level of a shift.")] = 0.01,
    data: Annotated[str | None, typer.Option("--data", metavar="CSV",
                                             help="Outcome fairness on this labelled CSV.")] = None,
    label: Annotated[str, typer.Option("--label", help="CSV column of true labels.")] = "label",
    sensitive: Annotated[str, typer.Option("--sensitive", help="CSV column of the sensitive feature.")]
    = "group",
    prediction: Annotated[str | None, typer.Option("--prediction", metavar="COLUMN",
                                                   help="Predictions given as a CSV column.")] = None,
    features: Annotated[str | None, typer.Option("--features", metavar="COLS",
                                                 help="Comma-separated feature columns, in order.")] = None,
    positive: Annotated[str, typer.Option("--positive", help="The positive label.")] = "1",
) -> None:
    """What biases a model carries (WEAT/SEAT, fairness); --against: what changed, exit 1 on a shift.

    With --data, fairlearn's outcome-fairness metrics of a classifier's predictions."""
    import json

    from assay import api
    from assay.analyses.audit import Settings
    from assay.render import audit as render

    settings = Settings(seed=seed, permutations=permutations)
    doc: str | None
    try:
        if data is not None:
            feats = [f.strip() for f in features.split(",") if f.strip()] if features else None
            fr = api.audit_fairness(data, label, sensitive, model=model, prediction=prediction,
                                    features=feats, positive=positive)
            doc = json.dumps(render.fairness_json(fr), indent=2) + "\n" if fmt is AuditFormat.json else None
            rich_out = render.fairness_text(fr)
            code = 0
        elif model is None:
            raise fail("give a MODEL (or --data CSV for outcome fairness)")
        else:
            if tests and os.path.isfile(tests):
                chosen = api.load_tests(tests)
            else:
                ids = [t.strip() for t in tests.split(",") if t.strip()] if tests else None
                chosen = api.load_tests(None, ids)
            if against:
                result = api.audit_against(model, against, tests=chosen, settings=settings,
                                           threshold=threshold, alpha=alpha)
                doc = (json.dumps(render.comparison_json(result), indent=2) + "\n" if fmt is AuditFormat.json
                       else render.comparison_html(result) if fmt is AuditFormat.html else None)
                rich_out = render.comparison_text(result)
                code = 1 if result.findings else 0
            else:
                report = api.audit(model, tests=chosen, settings=settings)
                doc = (json.dumps(render.to_json(report), indent=2) + "\n" if fmt is AuditFormat.json
                       else render.to_html(report) if fmt is AuditFormat.html else None)
                rich_out = render.to_text(report)
                code = 0
    except AssayError as exc:
        raise fail(exc.one_line()) from None
    if doc is None:
        import io

        from rich.console import Console
        buf = io.StringIO()
        Console(file=buf, highlight=False, width=160, force_terminal=False).print(rich_out)
        doc = buf.getvalue()
    if output:
        try:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(doc)
        except OSError as exc:
            raise fail(f"{output}: cannot write: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(doc)
    raise typer.Exit(code)
