"""The statistics of an embedding association test (Caliskan, Bryson, Narayanan 2017).

For target sets X, Y and attribute sets A, B of embeddings:

    s(w, A, B) = mean_a cos(w, a) - mean_b cos(w, b)
    S(X, Y)    = sum_x s(x, A, B) - sum_y s(y, A, B)               (test statistic)
    d          = (mean_x s(x) - mean_y s(y)) / stdev_{w in X u Y} s(w)   (effect size)

The standard deviation is the sample one (n-1): it is what reproduces the paper's published
values. The p-value is one-sided, Pr[S(X_i, Y_i) > S(X, Y)] over the equal-size partitions
(X_i, Y_i) of X u Y: exact when there are at most `EXACT_LIMIT` partitions, otherwise a seeded
Monte-Carlo estimate with its standard error. The interval is a seeded percentile bootstrap of
d, resampling X and Y with replacement. Pure NumPy; deterministic for a given seed.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

EXACT_LIMIT = 50_000
PERMUTATIONS = 10_000
BOOTSTRAP = 1_000


@dataclass(frozen=True)
class PValue:
    value: float
    method: str            # "exact" | "monte-carlo"
    samples: int           # partitions enumerated or drawn
    stderr: float          # 0 for exact


def unit(m: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    m = np.asarray(m, dtype=np.float64)
    n = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(n == 0, 1.0, n)


def association(w: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """s(w, A, B) for every row of `w` (all inputs unit rows)."""
    return (w @ a.T).mean(axis=1) - (w @ b.T).mean(axis=1)


def effect_size(sx: np.ndarray, sy: np.ndarray) -> float:
    """Cohen's-d style effect size with the sample standard deviation of all s values."""
    sd = float(np.concatenate([sx, sy]).std(ddof=1))
    if not sd > 0:
        return float("nan")
    return float((sx.mean() - sy.mean()) / sd)


def _effect_rows(sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
    """Effect sizes of many resampled rows at once: sx (k, nx), sy (k, ny)."""
    both = np.concatenate([sx, sy], axis=1)
    sd = both.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, (sx.mean(axis=1) - sy.mean(axis=1)) / sd, np.nan)


def partitions(n: int, k: int) -> int:
    return math.comb(n, k)


def permutation_p(sx: np.ndarray, sy: np.ndarray, *, seed: int = 0,
                  samples: int = PERMUTATIONS, exact_limit: int = EXACT_LIMIT) -> PValue:
    """One-sided p-value of S(X, Y) over the partitions of X u Y into sets of |X| and |Y|."""
    s = np.concatenate([sx, sy])
    n, k = len(s), len(sx)
    total = float(s.sum())
    observed = 2 * float(sx.sum()) - total
    eps = 1e-12 * max(1.0, abs(observed))
    count = partitions(n, k)
    if count <= exact_limit:
        idx = np.fromiter(itertools.chain.from_iterable(itertools.combinations(range(n), k)),
                          dtype=np.int64, count=count * k).reshape(count, k)
        stats = 2 * s[idx].sum(axis=1) - total
        return PValue(float((stats > observed + eps).mean()), "exact", count, 0.0)
    rng = np.random.default_rng(seed)
    hits = 0
    done = 0
    while done < samples:
        m = min(2_000, samples - done)
        order = rng.random((m, n)).argsort(axis=1)[:, :k]
        stats = 2 * s[order].sum(axis=1) - total
        hits += int((stats > observed + eps).sum())
        done += m
    p = hits / samples
    return PValue(p, "monte-carlo", samples, math.sqrt(max(p * (1 - p), 0.0) / samples))


def bootstrap_interval(sx: np.ndarray, sy: np.ndarray, *, seed: int = 0, samples: int = BOOTSTRAP,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the effect size (X and Y resampled with replacement)."""
    rng = np.random.default_rng(seed + 1)
    bx = sx[rng.integers(0, len(sx), size=(samples, len(sx)))]
    by = sy[rng.integers(0, len(sy), size=(samples, len(sy)))]
    d = _effect_rows(bx, by)
    d = d[np.isfinite(d)]
    if not len(d):
        return float("nan"), float("nan")
    lo, hi = np.quantile(d, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def shift_p(bx: np.ndarray, by: np.ndarray, mx: np.ndarray, my: np.ndarray, *, seed: int = 0,
            samples: int = PERMUTATIONS) -> PValue:
    """Two-sided significance of the change of effect size between two models.

    `bx, by` are s values of the targets under the base model, `mx, my` under the other. Under
    the null of no change, which model a stimulus' pair of s values came from is exchangeable:
    each draw swaps the pair for a random subset of stimuli and recomputes d(model) - d(base)."""
    observed = effect_size(mx, my) - effect_size(bx, by)
    if not math.isfinite(observed):
        return PValue(float("nan"), "monte-carlo", 0, float("nan"))
    rng = np.random.default_rng(seed + 2)
    base = np.concatenate([bx, by])
    model = np.concatenate([mx, my])
    k = len(bx)
    hits = done = 0
    while done < samples:
        m = min(2_000, samples - done)
        swap = rng.random((m, len(base))) < 0.5
        a = np.where(swap, model, base)
        b = np.where(swap, base, model)
        deltas = _effect_rows(b[:, :k], b[:, k:]) - _effect_rows(a[:, :k], a[:, k:])
        hits += int((np.abs(deltas) >= abs(observed) - 1e-12).sum())
        done += m
    p = (hits + 1) / (samples + 1)
    return PValue(p, "monte-carlo", samples, math.sqrt(p * (1 - p) / samples))


def pairwise_cosines(e: np.ndarray) -> np.ndarray:
    """Upper-triangle cosine similarities of the rows of `e`."""
    u = unit(e)
    c = u @ u.T
    i, j = np.triu_indices(len(u), k=1)
    return c[i, j]
