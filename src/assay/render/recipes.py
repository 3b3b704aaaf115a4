"""`assay rebuild` and `assay challenge` output: JSON documents and plain text."""

from __future__ import annotations

from typing import Any

from assay.recipes.challenge import ChallengeResult
from assay.recipes.record import BuildRecord
from assay.recipes.record import to_json as record_json

SCHEMA = "assay.challenge/1"


def build_json(rec: BuildRecord) -> dict[str, Any]:
    return record_json(rec)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB"


def build_text(rec: BuildRecord) -> str:
    r = rec.resources
    env = rec.environment
    lines = [f"{rec.recipe_name}: built with {rec.threads} thread(s), seed {rec.seed}",
             f"  time     {r.wall_seconds:.1f} s wall, {r.cpu_seconds:.1f} s CPU, peak memory "
             f"{_mib(r.peak_memory_bytes)}",
             f"  python   {env.get('python')}  cpu {env.get('cpu', {}).get('model')}",
             f"  epochs   {len(rec.epochs)} reported"]
    for o in rec.outputs:
        lines.append(f"  output   {o.name}: {o.file}")
        lines.append(f"           content {o.content}")
        if o.matches is not None:
            lines.append(f"           {'matches' if o.matches else 'DIFFERS FROM'} the recipe's expected "
                         f"identity {o.expected}")
    for m in env.get("mismatches", []):
        lines.append(f"  warning  {m}")
    lines.append(f"  record   {rec.folder}/build.json")
    return "\n".join(lines) + "\n"


def challenge_json(res: ChallengeResult) -> dict[str, Any]:
    tol = res.tolerance
    return {
        "schema": SCHEMA,
        "recipe": res.recipe,
        "published": res.published,
        "rebuilt": res.rebuilt,
        "record": res.record or None,
        "verdict": res.verdict,
        "summary": res.summary,
        "ladder": [{"verdict": r.verdict, "held": r.held, "detail": r.detail} for r in res.rungs],
        "tensors": [{"name": d.name, "status": d.status, "rel_l2": d.rel_l2, "max_abs": d.max_abs,
                     "changed_fraction": d.changed, "tolerance_rel_l2": d.tol_rel_l2,
                     "tolerance_max_abs": d.tol_max_abs, "within": d.within} for d in res.deltas],
        "tolerance": None if tol is None else {
            "source": tol.source, "threads": tol.threads, "factor": tol.factor, "noise_free": tol.noise_free},
        "probe": None if res.probe is None else {
            "agree": res.probe.agree, "total": res.probe.total, "agreement": res.probe.agreement,
            "min_agreement": res.probe.min_agreement},
        "epochs": None if res.epochs is None else {
            "compared": res.epochs.compared, "first_divergent": res.epochs.first_divergent,
            "tensors": list(res.epochs.tensors)},
        "build": res.build,
        "notes": list(res.notes),
    }


def _mark(held: bool | None) -> str:
    return {True: "yes", False: "no", None: "n/a"}[held]


def challenge_text(res: ChallengeResult) -> str:
    lines = [f"{res.published}", f"  verdict  {res.verdict.upper()}: {res.summary}", "  ladder"]
    for r in res.rungs:
        lines.append(f"    {r.verdict:<18} {_mark(r.held):<4} {r.detail}")
    if res.deltas:
        lines.append("  tensors that differ (relative L2 / max abs; tolerance; !! outside it)")
        for d in res.deltas[:30]:
            if d.status == "changed":
                tol = "" if d.tol_rel_l2 is None else f"  (<= {d.tol_rel_l2:.2e}" + (
                    f" / {d.tol_max_abs:.2e})" if d.tol_max_abs is not None else ")")
                mark = "   " if d.within else "!! "
                lines.append(f"    {mark}{d.name}: {d.rel_l2 or 0:.2e} / {d.max_abs or 0:.2e}, "
                             f"{(d.changed or 0):.1%} of elements{tol}")
            else:
                lines.append(f"    !! {d.name}: {d.status}")
        if len(res.deltas) > 30:
            lines.append(f"    ... and {len(res.deltas) - 30} more")
    if res.epochs is not None:
        e = res.epochs
        where = (f"first differ at epoch {e.first_divergent} ({', '.join(e.tensors[:5])})"
                 if e.first_divergent is not None else "agree")
        lines.append(f"  epochs   {e.compared} compared; the two builds {where}")
    b = res.build
    lines.append(f"  rebuild  {b.get('threads')} thread(s), {b.get('wall_seconds')} s wall, "
                 f"{b.get('cpu_seconds')} s CPU" + (f"; record {res.record}" if res.record else ""))
    for n in res.notes:
        lines.append(f"  note     {n}")
    return "\n".join(lines) + "\n"
