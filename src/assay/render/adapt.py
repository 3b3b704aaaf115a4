"""`adapt`, `predict` and `cost` results as JSON (`assay.adapt/1`, `assay.predict/1`,
`assay.cost/1`), text, CSV, and the adapted model's card stub (Markdown). Pure functions."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assay.adapt.cost import CostReport
    from assay.adapt.plan import AdaptResult
    from assay.adapt.predict import Predictions

ADAPT_SCHEMA = "assay.adapt/1"
PREDICT_SCHEMA = "assay.predict/1"
COST_SCHEMA = "assay.cost/1"


def _mib(n: int) -> str:
    return f"{n / (1 << 20):,.0f} MiB"


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    if s < 3 * 365 * 86400:
        return f"{s / 86400:.1f} days"
    return f"{s / (365 * 86400):,.0f} years"


def _numbers(task: str, d: dict[str, Any]) -> str:
    """One evaluation (validation or holdout) in words."""
    if task == "regress":
        return f"RMSE {d['rmse']:.4g}, MAE {d['mae']:.4g}, R2 {d['r2']:.3f} (n={d['n']})"
    if task == "embed":
        return (f"nearest-neighbour label accuracy {d['recall_at_1']:.3f} "
                f"(before: {d['recall_at_1_before']:.3f}; n={d['n']})")
    return f"accuracy {d['accuracy']:.3f} ({d['correct']}/{d['n']})"


def adapt_json(r: AdaptResult) -> dict[str, Any]:
    o = r.options
    res = r.record.resources
    m = r.meta
    method: dict[str, Any] = {"name": o.method, "head": o.head}
    if o.method == "lora":
        method.update(rank=o.rank, alpha=o.alpha)
        if "targets" in m:
            method.update(targets=m["targets"], layers=m.get("lora_layers"))
    if "refit" in m:
        method["refit"] = m["refit"]
    return {
        "schema": ADAPT_SCHEMA,
        "task": o.task,
        "method": method,
        "base": {"path": r.base, "identity": r.base_identity},
        "data": {"path": r.data, "digest": r.data_digest, "text_column": o.text_column,
                 "label_column": o.label_column},
        "holdout": None if r.holdout is None else {"path": r.holdout, "digest": r.holdout_digest},
        "classes": r.classes,
        "seed": o.seed,
        "threads": o.threads,
        "training": {"train_examples": m.get("train", {}).get("n"), "best_epoch": m.get("best_epoch"),
                     "epochs_run": m.get("epochs_run"), "val_loss": m.get("val_loss"),
                     **({"target": m["target"]} if "target" in m else {})},
        "validation": m.get("validation"),
        "holdout_result": m.get("holdout"),
        "outputs": {o_.name: {"file": o_.file, "identity": o_.content} for o_ in r.record.outputs},
        "files": dict(sorted(r.files.items())),
        "resources": {"wall_seconds": round(r.wall_seconds, 3),
                      "train_wall_seconds": round(res.wall_seconds, 3),
                      "train_cpu_seconds": round(res.cpu_seconds, 3),
                      "peak_memory_bytes": res.peak_memory_bytes},
    }


def adapt_text(r: AdaptResult) -> str:
    res = r.record.resources
    o, m = r.options, r.meta
    what = "projection" if o.task == "embed" else f"{o.head} head"
    if o.method == "lora":
        where = (f"{'/'.join(m['targets'])} of layers {m['lora_layers'][0]}-{m['lora_layers'][1]}"
                 if "targets" in m else "the convolutions")
        what += f", rank {o.rank} on {where}"
    lines = [f"adapted   {r.base}",
             f"task      {o.task}, method {o.method} ({what})"]
    if r.classes:
        lines.append(f"classes   {len(r.classes)}: {', '.join(r.classes[:8])}"
                     f"{' ...' if len(r.classes) > 8 else ''}")
    refit = m.get("refit")
    lines.append(f"validation {_numbers(o.task, m['validation'])}, best epoch {m.get('best_epoch')}"
                 + (f" (then refit on all {refit['rows']} rows for {refit['epochs']} epochs)"
                    if refit else ""))
    if m.get("holdout") is not None:
        lines.append(f"holdout    {_numbers(o.task, m['holdout'])}")
    lines += [f"time      {_duration(r.wall_seconds)} in all, {_duration(res.wall_seconds)} training; "
              f"peak memory {_mib(res.peak_memory_bytes)}",
              f"output    {r.out_dir}"]
    lines += [f"  {role:<8} {path}" for role, path in sorted(r.files.items())]
    return "\n".join(lines)


def card_markdown(r: AdaptResult) -> str:
    """A model-card stub for the adapted model (front matter a hub and `assay inspect` read)."""
    o = r.options
    h = r.meta.get("holdout")
    what = {"classify": f"tell {len(r.classes)} classes apart: " + ", ".join(f"`{c}`" for c in r.classes),
            "regress": f"predict the number in column `{o.label_column}`",
            "embed": f"place items of the same label close together ({len(r.classes)} labels)"}[o.task]
    lines = ["---", "library_name: assay", f"base_model: {r.base_identity}", "tags:", "- assay-adapt",
             f"- {o.method}", f"- {o.task}", "---", "",
             f"# {o.method} adaptation of `{r.base.rstrip('/').rsplit('/', 1)[-1]}`", "",
             ("A linear projection of the frozen features" if o.task == "embed" else f"A {o.head} head")
             + (" with a rank-" + str(o.rank) + " low-rank update" if o.method == "lora" else
                " on frozen features")
             + f", trained by `assay adapt` on CPU to {what}.", "",
             "## Source", "",
             f"- base weights: `{r.base_identity}`",
             f"- training data: `{r.data_digest}` (columns `{o.text_column}`, `{o.label_column}`)"]
    if r.holdout_digest:
        lines.append(f"- holdout data: `{r.holdout_digest}`")
    lines += [f"- recipe: `{r.files.get('recipe', 'recipe/recipe.toml')}` (rebuild with "
              f"`assay rebuild {r.files.get('recipe', 'recipe/recipe.toml')} -o DIR`), seed {o.seed}, "
              f"{o.threads} thread(s)", "",
              "## Results", "",
              f"- validation: {_numbers(o.task, r.meta['validation'])}, on examples held out of the "
              "training data" + (" (measured before the head was refit on them)"
                                 if r.meta.get("refit") else "")]
    if h:
        lines.append(f"- holdout: {_numbers(o.task, h)}")
    lines += ["", "## Limitations", "",
              "Written automatically: say what the data covers, who it may fail, and what the model "
              "must not be used for.", ""]
    return "\n".join(lines)


def predict_json(p: Predictions) -> dict[str, Any]:
    doc: dict[str, Any] = {"schema": PREDICT_SCHEMA, "task": p.task, "model": p.model, "data": p.data}
    if p.task == "regress":
        doc["metrics"] = p.metrics or None
        doc["predictions"] = [{"row": i, "value": v} for i, v in enumerate(p.values)]
    elif p.task == "embed":
        doc["predictions"] = [{"row": i, "vector": [round(v, 7) for v in vec]}
                              for i, vec in enumerate(p.vectors)]
    else:
        doc.update(classes=list(p.classes), accuracy=p.accuracy)
        doc["predictions"] = [{"row": i, "label": lab, "score": round(s, 6)}
                              for i, (lab, s) in enumerate(zip(p.labels, p.scores, strict=True))]
    return doc


def predict_csv(p: Predictions) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if p.task == "regress":
        w.writerow(["row", "value"])
        w.writerows([i, repr(v)] for i, v in enumerate(p.values))
    elif p.task == "embed":
        w.writerow(["row", *(f"v{j}" for j in range(len(p.vectors[0]) if p.vectors else 0))])
        w.writerows([i, *(f"{v:.7g}" for v in vec)] for i, vec in enumerate(p.vectors))
    else:
        w.writerow(["row", "label", "score"])
        for i, (lab, s) in enumerate(zip(p.labels, p.scores, strict=True)):
            w.writerow([i, lab, f"{s:.6f}"])
    return buf.getvalue()


def cost_json(c: CostReport) -> dict[str, Any]:
    return {"schema": COST_SCHEMA, "model": c.model, "parameters": c.parameters,
            "measured": [{"mode": t.mode, "tokens_per_second": round(t.tokens_per_second, 1),
                          "batch": t.batch, "seq_len": t.seq_len, "steps": t.steps,
                          "peak_bytes": t.peak_bytes}
                         for t in c.measured],
            "workload": c.workload,
            "estimates": [{"method": e.method, "seconds": round(e.seconds, 3), "memory_bytes": e.memory_bytes,
                           "tokens": e.tokens, "epochs": e.epochs, "trainable_parameters": e.trainable,
                           "assumptions": e.assumptions} for e in c.estimates],
            "threads": c.threads}


def cost_text(c: CostReport) -> str:
    lines = [f"model     {c.model} ({c.parameters:,} parameters), {c.threads} thread(s)",
             "measured  " + ", ".join(f"{t.mode} {t.tokens_per_second:,.0f} tokens/s" for t in c.measured),
             f"workload  {c.workload['examples']:,} examples, {c.workload['tokens']:,} tokens "
             f"({c.workload['source']})", ""]
    lines.append(f"{'method':<10} {'time':>12} {'memory':>10}  assumptions")
    for e in c.estimates:
        lines.append(f"{e.method:<10} {_duration(e.seconds):>12} {_mib(e.memory_bytes):>10}  {e.assumptions}")
    return "\n".join(lines)
