"""`challenge`: was a published file built from this recipe? The verdict ladder, strongest first:

1. `byte-identical`    the published file has the rebuilt file's bytes;
2. `identical-tensors` same canonical tensors (assay content identity), whatever the container;
3. `close`             every tensor within the tolerance: the recipe's declared one, or the noise
                       band measured by a rebuild with another thread count (times `FACTOR`);
4. `equivalent`        the entry point's `predict` gives the same answers on the recipe's probe
                       set (at least `min_agreement` of them) for both;
5. `differs`           none holds: the tensors that differ are named with how much, and with two
                       build records, the first epoch where the builds part.

Weights are read only through the `open_model` the caller gives (assay's readers).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from assay.analyses import identity
from assay.analyses.diff import compare_pair
from assay.errors import AssayError, UsageError
from assay.model.artifact import ModelArtifact
from assay.recipes import record, runner
from assay.recipes.pinning import file_digest
from assay.recipes.record import BuildRecord
from assay.recipes.schema import LoadedRecipe, RecipeError

FACTOR = 4.0            # a measured noise band is widened this much: one other thread count is one sample
LADDER = ("byte-identical", "identical-tensors", "close", "equivalent")
DIFFERS = "differs"

OpenModel = Callable[[str], ModelArtifact]
Log = Callable[[str], None]


@dataclass(frozen=True)
class Rung:
    verdict: str
    held: bool | None           # None: not checked (the detail says why)
    detail: str


@dataclass(frozen=True)
class TensorDelta:
    name: str
    status: str                 # changed | added | removed | reshaped | retyped
    rel_l2: float | None = None
    max_abs: float | None = None
    changed: float | None = None          # fraction of elements that differ
    tol_rel_l2: float | None = None
    tol_max_abs: float | None = None

    @property
    def within(self) -> bool:
        if self.status != "changed" or self.rel_l2 is None or self.tol_rel_l2 is None:
            return False
        ok = self.rel_l2 <= self.tol_rel_l2
        if self.tol_max_abs is not None and self.max_abs is not None:
            ok = ok and self.max_abs <= self.tol_max_abs
        return ok


@dataclass(frozen=True)
class Tolerance:
    source: str                             # "declared" | "measured"
    rel_l2: dict[str, float]                # per tensor
    max_abs: dict[str, float | None]
    threads: int | None = None              # measured: the other build's thread count
    factor: float = 1.0
    noise_free: bool = False                # measured: the other build gave identical tensors
    moved: frozenset[str] = frozenset()     # measured: the tensors the other thread count changed


@dataclass(frozen=True)
class ProbeOutcome:
    agree: int
    total: int
    min_agreement: float

    @property
    def agreement(self) -> float:
        return self.agree / self.total if self.total else 0.0


@dataclass(frozen=True)
class EpochComparison:
    compared: int                           # epochs present in both records
    first_divergent: int | None             # first epoch whose weights differ, None if none
    tensors: tuple[str, ...] = ()           # tensors that differ at that epoch


@dataclass(frozen=True)
class ChallengeResult:
    recipe: str
    published: str
    rebuilt: str
    record: str
    verdict: str
    summary: str
    rungs: tuple[Rung, ...]
    deltas: tuple[TensorDelta, ...]         # every tensor that is not identical
    tolerance: Tolerance | None = None
    probe: ProbeOutcome | None = None
    epochs: EpochComparison | None = None
    build: dict[str, object] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def reproduced(self) -> bool:
        """Whether a verdict other than `differs` holds."""
        return self.verdict != DIFFERS


# -- comparing tensors -------------------------------------------------------------------------
def compare_tensors(a: ModelArtifact, b: ModelArtifact) -> list[TensorDelta]:
    """Tensors of `b` that are not identical to the tensor of the same name in `a`, measured by
    `analyses.diff` (pairing by name only: a renamed tensor is a removed and an added one)."""
    by_name = {t.name: t for t in a.tensors}
    seen = set()
    out = []
    for t in b.tensors:
        seen.add(t.name)
        u = by_name.get(t.name)
        if u is None:
            out.append(TensorDelta(t.name, "added"))
            continue
        if u.shape != t.shape:
            out.append(TensorDelta(t.name, "reshaped"))
            continue
        if u.dtype.name != t.dtype.name:
            out.append(TensorDelta(t.name, "retyped"))
            continue
        ch = compare_pair(u, t, "identical")
        s = ch.stats
        if ch.kind == "same":
            continue
        if s is None:
            out.append(TensorDelta(t.name, "changed"))
        else:
            out.append(TensorDelta(t.name, "changed", s.rel_l2, s.max_abs, s.changed))
    out += [TensorDelta(t.name, "removed") for t in a.tensors if t.name not in seen]
    return out


def measured_tolerance(noise: list[TensorDelta], names: list[str], threads: int) -> Tolerance:
    moved = {d.name: d for d in noise}
    if any(d.status != "changed" or d.rel_l2 is None for d in noise):
        raise RecipeError(None, "the rebuild with another thread count has other tensors; "
                                "no noise band can be measured")
    rel = {n: FACTOR * (moved[n].rel_l2 or 0.0) if n in moved else 0.0 for n in names}
    mx: dict[str, float | None] = {n: FACTOR * (moved[n].max_abs or 0.0) if n in moved else 0.0
                                   for n in names}
    return Tolerance("measured", rel, mx, threads, FACTOR, noise_free=not noise,
                     moved=frozenset(moved))


def declared_tolerance(loaded: LoadedRecipe, names: list[str]) -> Tolerance | None:
    t = loaded.recipe.tolerance
    if t is None:
        return None
    return Tolerance("declared", dict.fromkeys(names, t.rel_l2), dict.fromkeys(names, t.max_abs))


def apply_tolerance(deltas: list[TensorDelta], tol: Tolerance) -> list[TensorDelta]:
    return [TensorDelta(d.name, d.status, d.rel_l2, d.max_abs, d.changed, tol.rel_l2.get(d.name),
                        tol.max_abs.get(d.name)) for d in deltas]


def trained_tensors(rec: BuildRecord, tol: Tolerance | None) -> frozenset[str] | None:
    """The tensors training moves: those another thread count changed (when measured), else those
    whose digest changed between the first and the last epoch the build reported."""
    if tol is not None and tol.source == "measured" and not tol.noise_free:
        return tol.moved
    if len(rec.epochs) >= 2:
        a, b = rec.epochs[0].tensors, rec.epochs[-1].tensors
        return frozenset(k for k in b if a.get(k) != b[k])
    return None


def localised(deltas: list[TensorDelta], trained: frozenset[str] | None) -> str | None:
    """Why the difference is an edit after training rather than a numerical one, or None.

    Training couples every trained tensor through the loss: a numerical difference anywhere in
    the run (thread count, instruction set, library version) reaches all of them. A file whose
    trained tensors are partly bit-identical to the rebuild and partly not was changed after
    training (or built from other code or data)."""
    if not trained or len(trained) < 2:
        return None
    differ = {d.name for d in deltas}
    moved, kept = sorted(differ & trained), sorted(trained - differ)
    if moved and kept:
        return (f"an edit after training: {', '.join(moved[:4])} differ(s) while {len(kept)} other "
                f"trained tensor(s) ({', '.join(kept[:4])}) are bit-identical to the rebuild; numerical "
                "differences spread through training to every trained tensor")
    return None


def compare_epochs(a: BuildRecord, b: BuildRecord) -> EpochComparison:
    n = min(len(a.epochs), len(b.epochs))
    for i in range(n):
        ea, eb = a.epochs[i], b.epochs[i]
        if ea.named != eb.named:
            names = sorted(k for k in set(ea.tensors) | set(eb.tensors)
                           if ea.tensors.get(k) != eb.tensors.get(k))
            return EpochComparison(n, ea.epoch, tuple(names))
    return EpochComparison(n, None)


# -- the ladder ----------------------------------------------------------------------------------
def _fmt(x: float | None) -> str:
    return "-" if x is None else ("inf" if math.isinf(x) else f"{x:.2e}")


def _close_rung(deltas: list[TensorDelta], tol: Tolerance | None, why_none: str) -> Rung:
    if tol is None:
        return Rung("close", None, why_none)
    if tol.source == "measured" and tol.noise_free:
        return Rung("close", False, f"a rebuild with {tol.threads} thread(s) gave identical tensors: "
                                    "these builds do not depend on the thread count, so there is no "
                                    "noise band to be close within")
    outside = [d for d in deltas if not d.within]
    band = (f"noise band measured with {tol.threads} thread(s), x{tol.factor:g}" if tol.source == "measured"
            else "tolerance declared in the recipe")
    if not outside:
        worst = max(deltas, key=lambda d: d.rel_l2 or 0.0)
        return Rung("close", True, f"all {len(deltas)} differing tensors within the {band} "
                                   f"(largest: {worst.name}, relative L2 {_fmt(worst.rel_l2)} <= "
                                   f"{_fmt(worst.tol_rel_l2)})")
    return Rung("close", False, f"{len(outside)} of {len(deltas)} differing tensors outside the {band}")


def _summary(verdict: str, rungs: list[Rung], deltas: list[TensorDelta],
             epochs: EpochComparison | None) -> str:
    if verdict != DIFFERS:
        return next(r.detail for r in rungs if r.verdict == verdict)
    bad = [d for d in deltas if not d.within] or deltas
    parts = []
    for d in bad[:5]:
        if d.status == "changed":
            parts.append(f"{d.name} (relative L2 {_fmt(d.rel_l2)}, max abs {_fmt(d.max_abs)})")
        else:
            parts.append(f"{d.name} ({d.status})")
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    text = f"{len(bad)} tensor(s) not reproduced: {', '.join(parts)}{more}"
    if epochs is not None and epochs.first_divergent is not None:
        text += f"; the builds part at epoch {epochs.first_divergent}"
    return text


def _arrays(art: ModelArtifact) -> dict[str, np.ndarray] | None:
    out = {}
    for t in art.tensors:
        if t.dtype.is_block or t.dtype.numpy is None:
            return None
        out[t.name] = np.array(t.read())
    return out


def _probe_rung(loaded: LoadedRecipe, rebuilt: ModelArtifact, published: ModelArtifact,
                open_model: OpenModel, threads: int) -> tuple[Rung, ProbeOutcome | None]:
    spec = loaded.recipe.probe
    assert spec is not None
    a, b = _arrays(rebuilt), _arrays(published)
    if a is None or b is None:
        return Rung("equivalent", None, "quantized block tensors cannot be handed to predict"), None
    try:
        preds = runner.probe(loaded, {"rebuilt": a, "published": b}, open_model, threads)
    except AssayError as exc:
        return Rung("equivalent", False, f"probe evaluation failed: {exc.reason}"), None
    ra, rb = preds["rebuilt"], preds["published"]
    if len(ra) != len(rb) or not ra:
        return Rung("equivalent", False, "predict gave answers of different lengths"), None
    out = ProbeOutcome(sum(x == y for x, y in zip(ra, rb)), len(ra), spec.min_agreement)
    held = out.agreement >= spec.min_agreement
    return Rung("equivalent", held, f"same answer on {out.agree} of {out.total} probe inputs "
                                    f"({out.agreement:.1%}; needed {spec.min_agreement:.1%})"), out


def _env_notes(rec: BuildRecord, pub: BuildRecord | None) -> list[str]:
    notes = list(rec.environment.get("mismatches", []))
    for o in rec.outputs:
        if o.matches is False:
            notes.append(f"the rebuild's {o.name} ({o.content}) is not the identity the recipe expects "
                         f"({o.expected})")
    if rec.threads != rec.recipe_threads:
        notes.append(f"the rebuild ran with {rec.threads} thread(s); the recipe pins {rec.recipe_threads}")
    if pub is not None:
        if pub.threads != rec.threads:
            notes.append(f"the published build ran with {pub.threads} thread(s), "
                         f"the rebuild with {rec.threads}")
        ca, cb = rec.environment.get("cpu", {}), pub.environment.get("cpu", {})
        if ca.get("model") != cb.get("model") or ca.get("flags") != cb.get("flags"):
            notes.append("the published build ran on another CPU model or instruction set")
        pa, pb = rec.environment.get("packages", {}), pub.environment.get("packages", {})
        for k in sorted(set(pa) | set(pb)):
            if pa.get(k) != pb.get(k):
                notes.append(f"{k}: {pb.get(k)} in the published build, {pa.get(k)} in the rebuild")
    return notes


def _build_summary(rec: BuildRecord) -> dict[str, object]:
    r = rec.resources
    return {"threads": rec.threads, "wall_seconds": round(r.wall_seconds, 3),
            "cpu_seconds": round(r.cpu_seconds, 3), "peak_memory_bytes": r.peak_memory_bytes,
            "epochs": len(rec.epochs)}


def judge(loaded: LoadedRecipe, rec: BuildRecord, published: str, open_model: OpenModel, *,
          pub_record: BuildRecord | None = None, output: str | None = None,
          noise: Callable[[], BuildRecord | None] | None = None, probe: bool = True,
          record_path: str = "") -> ChallengeResult:
    """Compare `published` with the rebuild described by `rec` and climb the ladder."""
    out = rec.output(output)
    rebuilt_path = rec.output_path(output)
    if not os.path.isfile(rebuilt_path) or file_digest(rebuilt_path) != out.file_digest:
        raise RecipeError(rebuilt_path, "the rebuilt output is missing or changed since its build record "
                                        "was written")
    rungs: list[Rung] = []
    if os.path.isfile(published):
        same = file_digest(published) == out.file_digest
        rungs.append(Rung("byte-identical", same, "the published file has the rebuilt file's bytes" if same
                          else "the files' bytes differ"))
    else:
        rungs.append(Rung("byte-identical", None, "the published model is a folder"))
    pub_art = open_model(published)
    pub_id = identity.identify(pub_art)
    same_content = pub_id.content == out.content
    rungs.append(Rung("identical-tensors", same_content,
                      ("same tensors and names" if pub_id.named == out.named else
                       "same tensors under other names") + f" ({out.content})" if same_content
                      else f"content identity {pub_id.content} differs from the rebuild's {out.content}"))
    deltas: list[TensorDelta] = []
    tol = None
    probe_out = None
    notes = _env_notes(rec, pub_record)
    if not same_content:
        reb_art = open_model(rebuilt_path)
        deltas = compare_tensors(reb_art, pub_art)
        names = [t.name for t in reb_art.tensors]
        tol = declared_tolerance(loaded, names)
        structural = [d for d in deltas if d.status != "changed"]
        edit = None if structural else localised(deltas, trained_tensors(rec, tol))
        if tol is None and noise is not None and not structural and not edit:
            nrec = noise()            # a rebuild is spent on the band only when it can decide
            if nrec is not None:
                nart = open_model(nrec.output_path(output))
                tol = measured_tolerance(compare_tensors(reb_art, nart), names, nrec.threads)
                edit = localised(deltas, trained_tensors(rec, tol))
        if tol is not None:
            deltas = apply_tolerance(deltas, tol)
        if structural:
            rungs.append(Rung("close", False, f"{len(structural)} tensor(s) added, removed, reshaped or "
                                              "retyped"))
        elif edit:
            rungs.append(Rung("close", False, edit))
        else:
            rungs.append(_close_rung(deltas, tol, "no tolerance declared and no noise build asked for"))
        if rungs[-1].held is not True:
            if edit:
                rungs.append(Rung("equivalent", None, "not considered: the difference is an edit after "
                                                      "training, whatever the probe set answers"))
            elif loaded.recipe.probe is None:
                rungs.append(Rung("equivalent", None, "the recipe names no probe set"))
            elif not probe:
                rungs.append(Rung("equivalent", None, "probe evaluation not asked for"))
            else:
                rung, probe_out = _probe_rung(loaded, reb_art, pub_art, open_model, rec.threads)
                rungs.append(rung)
    held = [r.verdict for r in rungs if r.held is True]
    verdict = held[0] if held else DIFFERS
    epochs = compare_epochs(rec, pub_record) if pub_record is not None else None
    return ChallengeResult(
        recipe=loaded.path, published=published, rebuilt=rebuilt_path, record=record_path,
        verdict=verdict, summary=_summary(verdict, rungs, deltas, epochs), rungs=tuple(rungs),
        deltas=tuple(deltas), tolerance=tol, probe=probe_out, epochs=epochs,
        build=_build_summary(rec), notes=tuple(notes))


def _check_record(loaded: LoadedRecipe, rec: BuildRecord, where: str) -> None:
    if rec.recipe_name != loaded.recipe.name:
        raise RecipeError(where, f"build record is of recipe {rec.recipe_name!r}, not {loaded.recipe.name!r}")


def challenge(loaded: LoadedRecipe, published: str, open_model: OpenModel, *, record_path: str | None = None,
              out_dir: str | None = None, noise_threads: int | None = None,
              noise_record: str | None = None, probe: bool = True, output: str | None = None,
              log: Log | None = None) -> ChallengeResult:
    """Rebuild (or reuse the build at `record_path`) and judge `published`: a weight file or
    folder, or another build's `build.json` (then its output is compared, and its epochs too).

    The noise band, when the recipe declares no tolerance and the tensors are not identical,
    comes from `noise_record`, or from a rebuild with `noise_threads` threads (default: one
    more than the rebuild's); `noise_threads=0` measures none."""
    if not os.path.exists(published):
        raise UsageError(published, "no such file or folder")
    pub_rec = None
    if os.path.isfile(published) and record.is_record(published):
        pub_rec = record.read(published)
        _check_record(loaded, pub_rec, published)
        published = pub_rec.output_path(output)
    kept = record_path is not None or out_dir is not None
    with tempfile.TemporaryDirectory(prefix="assay-challenge-") as tmp:
        if record_path is not None:
            rec = record.read(record_path)
            _check_record(loaded, rec, record_path)
            if rec.recipe_digest != loaded.digest:
                if log:
                    log(f"warning: {record_path} was built from another version of {loaded.path}")
        else:
            rec = runner.rebuild(loaded, out_dir or os.path.join(tmp, "rebuild"), open_model, log=log)
            record_path = os.path.join(rec.folder, record.FILE)

        def noise() -> BuildRecord | None:
            if noise_record is not None:
                nrec = record.read(noise_record)
                _check_record(loaded, nrec, noise_record)
                return nrec
            threads = rec.threads + 1 if noise_threads is None else noise_threads
            if threads <= 0:
                return None
            if log:
                log(f"measuring the noise band: another rebuild with {threads} thread(s)")
            return runner.rebuild(loaded, os.path.join(tmp, "noise"), open_model, threads=threads, log=log)

        return judge(loaded, rec, published, open_model, pub_record=pub_rec, output=output, noise=noise,
                     probe=probe, record_path=record_path if kept else "")
