"""Run association tests on one model, or compare two: pure functions over embedding functions.

An `Embedder` maps items (words or sentences) to rows of a matrix; a row of NaN marks an item the
model does not know (a word missing from a vocabulary). Word-level embedders run WEAT on the
words; sentence encoders run SEAT: each word placed in the bleached templates, the test run on
the sentence embeddings. Results are frozen values; nothing here reads files or prints.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from assay.analyses.audit import stats
from assay.analyses.audit.stimuli import AssociationTest, neutral_sentences, sentences, templates_for

SIZE_WORDS = ((0.8, "large"), (0.5, "medium"), (0.2, "small"), (0.0, "negligible"))
EFFECT_NOTE = "effect size: Cohen's d with the sample standard deviation (n-1), as the paper's values imply"


@dataclass(frozen=True)
class Embedder:
    """A model as an embedding function. `kind` "words": WEAT on words; "sentences": SEAT."""

    name: str
    kind: str
    embed: Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class Settings:
    seed: int = 0
    permutations: int = stats.PERMUTATIONS
    bootstrap: int = stats.BOOTSTRAP
    exact_limit: int = stats.EXACT_LIMIT


@dataclass(frozen=True)
class TestResult:
    id: str
    name: str
    method: str                       # "WEAT" | "SEAT"
    targets: tuple[str, str]
    attributes: tuple[str, str]
    sizes: tuple[int, int, int, int]  # stimuli used in X, Y, A, B
    effect_size: float
    p_value: float
    p_method: str
    p_samples: int
    p_stderr: float
    interval: tuple[float, float]
    missing: tuple[str, ...] = ()
    paper: dict[str, float] = field(default_factory=dict, compare=False)
    source: str = ""
    skipped: str | None = None

    @property
    def reading(self) -> str:
        """A plain sentence saying what the numbers mean."""
        if self.skipped:
            return f"not run: {self.skipped}"
        d = self.effect_size
        if not math.isfinite(d):
            return "no effect size: the associations do not vary"
        x, y = self.targets
        a, b = self.attributes
        first, second = (x, y) if d >= 0 else (y, x)
        size = next(w for lim, w in SIZE_WORDS if abs(d) >= lim)
        sig = "significant" if self.p_value < 0.05 or self.p_value > 0.95 else "not significant"
        return (f"{first} are closer to {a} (and {second} to {b}) than the other way round: "
                f"{size} effect, {sig} at 5%")


@dataclass(frozen=True)
class AuditReport:
    model: str
    kind: str
    results: tuple[TestResult, ...]
    settings: Settings
    note: str = EFFECT_NOTE


@dataclass(frozen=True)
class Shift:
    id: str
    name: str
    base: float
    model: float
    change: float
    p_value: float
    p_stderr: float
    sign_changed: bool
    finding: bool
    skipped: str | None = None


@dataclass(frozen=True)
class Drift:
    probes: int
    mean_change: float                # mean |change| of pairwise cosine similarities
    max_change: float
    mean_self_cosine: float           # mean cos(model(s), base(s)) over the probes


@dataclass(frozen=True)
class Comparison:
    model: AuditReport
    base: AuditReport
    shifts: tuple[Shift, ...]
    drift: Drift | None
    threshold: float
    alpha: float

    @property
    def findings(self) -> tuple[Shift, ...]:
        return tuple(s for s in self.shifts if s.finding)


# -- one model ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Scores:
    """Per-stimulus associations of one test on one model."""

    sx: np.ndarray
    sy: np.ndarray
    sizes: tuple[int, int, int, int]
    missing: tuple[str, ...]
    keep: tuple[np.ndarray, np.ndarray]     # which target stimuli were known (for comparisons)


def _stimuli(test: AssociationTest, kind: str) -> list[tuple[str, ...]]:
    sets = [*test.targets, *test.attributes]
    if kind == "sentences":
        tmpl = templates_for(test)
        return [sentences(s.words, tmpl) for s in sets]
    return [s.words for s in sets]


def _scores(test: AssociationTest, embedder: Embedder, cache: dict[str, np.ndarray]) -> _Scores | str:
    groups = _stimuli(test, embedder.kind)
    todo = sorted({i for g in groups for i in g if i not in cache})
    if todo:
        rows = np.asarray(embedder.embed(todo), dtype=np.float64)
        for item, row in zip(todo, rows, strict=True):
            cache[item] = row
    mats, keeps, missing = [], [], []
    for g in groups:
        m = np.array([cache[i] for i in g])
        ok = np.all(np.isfinite(m), axis=1)
        missing.extend(i for i, k in zip(g, ok, strict=True) if not k)
        mats.append(stats.unit(m[ok]))
        keeps.append(ok)
    sizes = tuple(len(m) for m in mats)
    if min(sizes) < 2:
        return f"fewer than two known stimuli in a set (missing: {', '.join(sorted(set(missing)))})"
    x, y, a, b = mats
    return _Scores(stats.association(x, a, b), stats.association(y, a, b),
                   (sizes[0], sizes[1], sizes[2], sizes[3]), tuple(dict.fromkeys(missing)),
                   (keeps[0], keeps[1]))


def run_test(test: AssociationTest, embedder: Embedder, settings: Settings = Settings(),
             cache: dict[str, np.ndarray] | None = None) -> TestResult:
    method = "SEAT" if embedder.kind == "sentences" else "WEAT"
    sc = _scores(test, embedder, {} if cache is None else cache)
    labels = (test.targets[0].label, test.targets[1].label)
    attrs = (test.attributes[0].label, test.attributes[1].label)
    if isinstance(sc, str):
        nan = float("nan")
        return TestResult(test.id, test.name, method, labels, attrs, (0, 0, 0, 0), nan, nan, "none", 0,
                          nan, (nan, nan), (), test.paper, test.source, skipped=sc)
    p = stats.permutation_p(sc.sx, sc.sy, seed=settings.seed, samples=settings.permutations,
                            exact_limit=settings.exact_limit)
    ci = stats.bootstrap_interval(sc.sx, sc.sy, seed=settings.seed, samples=settings.bootstrap)
    return TestResult(test.id, test.name, method, labels, attrs, sc.sizes,
                      stats.effect_size(sc.sx, sc.sy), p.value, p.method, p.samples, p.stderr, ci,
                      sc.missing, test.paper, test.source)


def audit(tests: Sequence[AssociationTest], embedder: Embedder,
          settings: Settings = Settings()) -> AuditReport:
    """Every test on one model."""
    cache: dict[str, np.ndarray] = {}
    return AuditReport(embedder.name, embedder.kind,
                       tuple(run_test(t, embedder, settings, cache) for t in tests), settings)


# -- two models --------------------------------------------------------------------------------
def _shift(test: AssociationTest, model: Embedder, base: Embedder, settings: Settings,
           caches: tuple[dict, dict], threshold: float, alpha: float) -> Shift:
    sm = _scores(test, model, caches[0])
    sb = _scores(test, base, caches[1])
    nan = float("nan")
    if isinstance(sm, str) or isinstance(sb, str):
        return Shift(test.id, test.name, nan, nan, nan, nan, nan, False, False,
                     skipped=sm if isinstance(sm, str) else sb)  # type: ignore[arg-type]
    # pair stimuli known to both models
    kx = sm.keep[0] & sb.keep[0]
    ky = sm.keep[1] & sb.keep[1]
    mx, my = sm.sx[kx[sm.keep[0]]], sm.sy[ky[sm.keep[1]]]
    bx, by = sb.sx[kx[sb.keep[0]]], sb.sy[ky[sb.keep[1]]]
    dm, db = stats.effect_size(mx, my), stats.effect_size(bx, by)
    p = stats.shift_p(bx, by, mx, my, seed=settings.seed, samples=settings.permutations)
    change = dm - db
    flipped = bool(np.sign(dm) != np.sign(db) and min(abs(dm), abs(db)) >= 0.2)
    finding = bool(math.isfinite(change) and p.value <= alpha and (abs(change) >= threshold or flipped))
    return Shift(test.id, test.name, db, dm, change, p.value, p.stderr, flipped, finding)


def drift(model: Embedder, base: Embedder, probes: Sequence[str] | None = None) -> Drift:
    """How much the geometry of ordinary sentences moved between two models."""
    items = list(probes if probes is not None else neutral_sentences())
    em = np.asarray(model.embed(items), dtype=np.float64)
    eb = np.asarray(base.embed(items), dtype=np.float64)
    ok = np.all(np.isfinite(em), axis=1) & np.all(np.isfinite(eb), axis=1)
    em, eb = em[ok], eb[ok]
    if len(em) < 2:
        nan = float("nan")
        return Drift(int(ok.sum()), nan, nan, nan)
    delta = np.abs(stats.pairwise_cosines(em) - stats.pairwise_cosines(eb))
    selfcos = (stats.unit(em) * stats.unit(eb)).sum(axis=1) if em.shape[1] == eb.shape[1] \
        else np.array([float("nan")])
    return Drift(len(em), float(delta.mean()), float(delta.max()), float(selfcos.mean()))


def compare(tests: Sequence[AssociationTest], model: Embedder, base: Embedder, *,
            settings: Settings = Settings(), threshold: float = 0.5, alpha: float = 0.01,
            probes: Sequence[str] | None = None) -> Comparison:
    """The same tests on both models, the change of each effect size with its significance,
    and the neutral-probe drift (sentence encoders, or word models given word probes)."""
    cm: dict[str, np.ndarray] = {}
    cb: dict[str, np.ndarray] = {}
    rm = AuditReport(model.name, model.kind, tuple(run_test(t, model, settings, cm) for t in tests), settings)
    rb = AuditReport(base.name, base.kind, tuple(run_test(t, base, settings, cb) for t in tests), settings)
    shifts = tuple(_shift(t, model, base, settings, (cm, cb), threshold, alpha) for t in tests)
    dr = drift(model, base, probes) if (probes is not None or model.kind == "sentences") else None
    return Comparison(rm, rb, shifts, dr, threshold, alpha)
