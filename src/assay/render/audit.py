"""`assay audit` output: a rich table, `assay.audit/1` JSON, and a self-contained HTML report.

The HTML page has an inline SVG plot of the effect sizes and their bootstrap intervals (and, for a
comparison, the base model beside the model); no scripts, fonts or images are fetched. Pure
functions: results in, strings or rich renderables out.
"""

from __future__ import annotations

import html
import math
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from assay.analyses.audit.fairness import FairnessReport
from assay.analyses.audit.weat import AuditReport, Comparison, Drift, Shift, TestResult

SCHEMA = "assay.audit/1"


def _num(x: float, digits: int = 6) -> float | None:
    return round(float(x), digits) if math.isfinite(x) else None


def _fmt(x: float, spec: str = ".2f") -> str:
    return format(x, spec) if math.isfinite(x) else "-"


def _p(r: TestResult) -> str:
    if not math.isfinite(r.p_value):
        return "-"
    if r.p_method == "monte-carlo" and r.p_value == 0:
        return f"<{1 / max(r.p_samples, 1):.0e}"
    return f"{r.p_value:.2g}" if r.p_value < 0.01 else f"{r.p_value:.3f}"


# -- JSON ------------------------------------------------------------------------------------
def _result_json(r: TestResult) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "method": r.method, "targets": list(r.targets),
            "attributes": list(r.attributes), "sizes": list(r.sizes),
            "effect_size": _num(r.effect_size),
            "p_value": {"value": _num(r.p_value), "method": r.p_method, "samples": r.p_samples,
                        "stderr": _num(r.p_stderr), "sided": "one"},
            "interval": {"low": _num(r.interval[0]), "high": _num(r.interval[1]), "level": 0.95,
                         "method": "percentile bootstrap"},
            "missing": list(r.missing), "paper": dict(sorted(r.paper.items())), "source": r.source,
            "reading": r.reading, "skipped": r.skipped}


def _report_json(r: AuditReport) -> dict[str, Any]:
    s = r.settings
    return {"model": r.model, "embedding": r.kind, "note": r.note,
            "settings": {"seed": s.seed, "permutations": s.permutations, "bootstrap": s.bootstrap,
                         "exact_limit": s.exact_limit},
            "tests": [_result_json(t) for t in r.results]}


def _shift_json(s: Shift) -> dict[str, Any]:
    return {"id": s.id, "name": s.name, "base": _num(s.base), "model": _num(s.model),
            "change": _num(s.change), "p_value": _num(s.p_value), "p_stderr": _num(s.p_stderr),
            "sign_changed": s.sign_changed, "finding": s.finding, "skipped": s.skipped}


def _drift_json(d: Drift | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {"probes": d.probes, "mean_change": _num(d.mean_change), "max_change": _num(d.max_change),
            "mean_self_cosine": _num(d.mean_self_cosine)}


def to_json(r: AuditReport) -> dict[str, Any]:
    return {"schema": SCHEMA, "kind": "model", **_report_json(r)}


def comparison_json(c: Comparison) -> dict[str, Any]:
    return {"schema": SCHEMA, "kind": "comparison", "threshold": c.threshold, "alpha": c.alpha,
            "findings": len(c.findings), "shifts": [_shift_json(s) for s in c.shifts],
            "drift": _drift_json(c.drift), "model": _report_json(c.model), "base": _report_json(c.base)}


# -- text ------------------------------------------------------------------------------------
def to_text(r: AuditReport) -> Group:
    t = Table(title=f"{r.model}: {r.results[0].method if r.results else ''} association tests",
              show_lines=False)
    for col in ("test", "n (X/Y/A/B)", "effect size", "95% interval", "p", "paper", "reading"):
        t.add_column(col, overflow="fold")
    for x in r.results:
        paper = ", ".join(f"{k} {v:.2f}" for k, v in sorted(x.paper.items()))
        t.add_row(x.id, "/".join(map(str, x.sizes)), _fmt(x.effect_size),
                  f"{_fmt(x.interval[0])} .. {_fmt(x.interval[1])}", _p(x), paper or "-", x.reading)
    notes = [Text(r.note, style="dim"),
             Text("p: one-sided permutation test (exact or seeded Monte-Carlo); interval: bootstrap",
                  style="dim")]
    missing = [f"{x.id}: {', '.join(x.missing)}" for x in r.results if x.missing]
    if missing:
        notes.append(Text("not in the model's vocabulary (left out): " + "; ".join(missing)))
    return Group(t, *notes)


def comparison_text(c: Comparison) -> Group:
    t = Table(title=f"{c.model.model} against {c.base.model}")
    for col in ("test", "base", "model", "change", "p (change)", "finding"):
        t.add_column(col)
    for s in c.shifts:
        mark = "SHIFT" + (" (sign flipped)" if s.sign_changed else "") if s.finding else \
            (s.skipped or "")
        t.add_row(s.id, _fmt(s.base), _fmt(s.model), _fmt(s.change, "+.2f"), _fmt(s.p_value, ".3g"), mark)
    parts: list[Any] = [t]
    d = c.drift
    if d is not None:
        parts.append(Text(f"neutral-probe drift over {d.probes} sentences: mean change of pairwise "
                          f"cosine {_fmt(d.mean_change, '.4f')}, max {_fmt(d.max_change, '.4f')}; "
                          f"mean self-cosine {_fmt(d.mean_self_cosine, '.4f')}"))
    n = len(c.findings)
    parts.append(Text(f"{n} shift{'s' if n != 1 else ''} past the threshold (|change| >= {c.threshold} "
                      f"or a sign flip, p <= {c.alpha})", style="bold red" if n else "green"))
    return Group(*parts)


# -- HTML ------------------------------------------------------------------------------------
PLOT_W, ROW_H, LEFT, RIGHT, TOP = 720, 28, 170, 40, 30
CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f4f4f4}.finding{color:#b00;font-weight:bold}.note{color:#666;font-size:90%}
svg text{font-size:12px;font-family:system-ui,sans-serif}"""


def _scale(lo: float, hi: float) -> Any:
    width = PLOT_W - LEFT - RIGHT
    return lambda v: LEFT + (min(max(v, lo), hi) - lo) / (hi - lo) * width


def _plot(rows: list[tuple[str, list[tuple[str, TestResult]]]]) -> str:
    """Forest plot: one row per test, one dot and interval line per model."""
    values = [v for _, series in rows for _, r in series
              for v in (r.effect_size, *r.interval) if math.isfinite(v)]
    bound = max(2.0, math.ceil(max((abs(v) for v in values), default=2.0)))
    lo, hi = -bound, bound
    x = _scale(lo, hi)
    colors = {"model": "#1f5fbf", "base": "#999999"}
    height = TOP + ROW_H * len(rows) + 40
    out = [f'<svg id="effects" xmlns="http://www.w3.org/2000/svg" width="{PLOT_W}" height="{height}" '
           f'viewBox="0 0 {PLOT_W} {height}" role="img" aria-label="effect sizes with 95% intervals" '
           f'data-tests="{len(rows)}">']
    for tick in range(int(lo), int(hi) + 1):
        tx = x(tick)
        out.append(f'<line x1="{tx:.1f}" y1="{TOP - 10}" x2="{tx:.1f}" y2="{height - 30}" '
                   f'stroke="{"#444" if tick == 0 else "#e4e4e4"}" stroke-width="1"/>')
        out.append(f'<text x="{tx:.1f}" y="{height - 14}" text-anchor="middle">{tick}</text>')
    out.append(f'<text x="{LEFT + (PLOT_W - LEFT - RIGHT) / 2:.0f}" y="{height - 1}" '
               'text-anchor="middle">effect size (d)</text>')
    for i, (label, series) in enumerate(rows):
        y0 = TOP + i * ROW_H + ROW_H / 2
        out.append(f'<text x="{LEFT - 8}" y="{y0 + 4:.1f}" text-anchor="end">{html.escape(label)}</text>')
        for k, (which, r) in enumerate(series):
            y = y0 + (k - (len(series) - 1) / 2) * 7
            c = colors.get(which, "#1f5fbf")
            if not math.isfinite(r.effect_size):
                continue
            a, b = r.interval
            if math.isfinite(a) and math.isfinite(b):
                out.append(f'<line class="interval" data-test="{html.escape(r.id)}" x1="{x(a):.1f}" '
                           f'y1="{y:.1f}" x2="{x(b):.1f}" y2="{y:.1f}" stroke="{c}" stroke-width="2"/>')
            out.append(f'<circle class="effect {which}" data-test="{html.escape(r.id)}" '
                       f'data-value="{r.effect_size:.4f}" cx="{x(r.effect_size):.1f}" cy="{y:.1f}" r="5" '
                       f'fill="{c}"><title>{html.escape(r.id)} ({which}): d = {r.effect_size:.2f}'
                       f'</title></circle>')
    out.append("</svg>")
    return "\n".join(out)


def _table(r: AuditReport) -> str:
    rows = ["<tr><th>test</th><th>n (X/Y/A/B)</th><th>effect size</th><th>95% interval</th>"
            "<th>p</th><th>paper</th><th>reading</th></tr>"]
    for x in r.results:
        paper = ", ".join(f"{k} {v:.2f}" for k, v in sorted(x.paper.items()))
        rows.append(f"<tr><td>{html.escape(x.id)}: {html.escape(x.name)}</td>"
                    f"<td>{'/'.join(map(str, x.sizes))}</td><td>{_fmt(x.effect_size)}</td>"
                    f"<td>{_fmt(x.interval[0])} .. {_fmt(x.interval[1])}</td><td>{html.escape(_p(x))}</td>"
                    f"<td>{html.escape(paper or '-')}</td><td>{html.escape(x.reading)}</td></tr>")
    return "<table>" + "\n".join(rows) + "</table>"


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")


def to_html(r: AuditReport) -> str:
    plot = _plot([(x.id, [("model", x)]) for x in r.results])
    body = (f"{plot}{_table(r)}<p class=note>{html.escape(r.note)}. p: one-sided permutation test "
            f"(exact when partitions are few, else seeded Monte-Carlo, seed {r.settings.seed}); "
            "interval: percentile bootstrap.</p>")
    return _page(f"assay audit: {r.model}", body)


def comparison_html(c: Comparison) -> str:
    by_id = {x.id: x for x in c.base.results}
    plot = _plot([(x.id, [("base", by_id[x.id]), ("model", x)]) for x in c.model.results
                  if x.id in by_id])
    rows = ["<tr><th>test</th><th>base</th><th>model</th><th>change</th><th>p (change)</th>"
            "<th>finding</th></tr>"]
    for s in c.shifts:
        cls = ' class="finding"' if s.finding else ""
        mark = ("shift" + (" (sign flipped)" if s.sign_changed else "")) if s.finding else ""
        rows.append(f"<tr{cls}><td>{html.escape(s.id)}</td><td>{_fmt(s.base)}</td><td>{_fmt(s.model)}</td>"
                    f"<td>{_fmt(s.change, '+.2f')}</td><td>{_fmt(s.p_value, '.3g')}</td><td>{mark}</td></tr>")
    d = c.drift
    drift = "" if d is None else (
        f"<p>Neutral-probe drift over {d.probes} sentences: mean change of pairwise cosine similarity "
        f"{_fmt(d.mean_change, '.4f')}, largest {_fmt(d.max_change, '.4f')}.</p>")
    body = (f"<p>Grey: {html.escape(c.base.model)} (base); blue: {html.escape(c.model.model)}.</p>{plot}"
            f"<table>{''.join(rows)}</table>{drift}<p>{len(c.findings)} shift(s) past the threshold "
            f"(|change| &ge; {c.threshold} or a sign flip, p &le; {c.alpha}).</p>")
    return _page(f"assay audit: {c.model.model} against {c.base.model}", body)


# -- fairness --------------------------------------------------------------------------------
FAIRNESS_SCHEMA = "assay.fairness/1"


def fairness_json(r: FairnessReport) -> dict[str, Any]:
    return {"schema": FAIRNESS_SCHEMA, "predictions": r.predictions, "positive": r.positive,
            "demographic_parity_difference": _num(r.demographic_parity_difference),
            "demographic_parity_ratio": _num(r.demographic_parity_ratio),
            "equalized_odds_difference": _num(r.equalized_odds_difference), "accuracy": _num(r.accuracy),
            "groups": [{"group": g.group, "count": g.count, "selection_rate": _num(g.selection_rate),
                        "true_positive_rate": _num(g.true_positive_rate),
                        "false_positive_rate": _num(g.false_positive_rate), "accuracy": _num(g.accuracy)}
                       for g in r.groups]}


def fairness_text(r: FairnessReport) -> Group:
    t = Table(title=f"outcome fairness (predictions: {r.predictions}; positive label {r.positive!r})")
    for col in ("group", "count", "selection rate", "TPR", "FPR", "accuracy"):
        t.add_column(col)
    for g in r.groups:
        t.add_row(g.group, str(g.count), _fmt(g.selection_rate, ".3f"), _fmt(g.true_positive_rate, ".3f"),
                  _fmt(g.false_positive_rate, ".3f"), _fmt(g.accuracy, ".3f"))
    return Group(t, Text(f"demographic parity difference {_fmt(r.demographic_parity_difference, '.3f')} "
                         f"(ratio {_fmt(r.demographic_parity_ratio, '.3f')}), equalized odds difference "
                         f"{_fmt(r.equalized_odds_difference, '.3f')}, accuracy {_fmt(r.accuracy, '.3f')} "
                         "(fairlearn's metrics)"))
