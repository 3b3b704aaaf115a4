"""How two fingerprinted models relate, judged from their sketches alone (no weights reread).

`relate(a, b)` pairs tensors (by name, then by digest, then by shape and correlated samples,
then by rows-only shape changes, then by permutation-invariant norms, so renamed conversions
such as GGUF pair up), classifies each pair from its digest, dtypes, statistics, common sample,
norms and two-sided sketch, then names one relation for the models:

- same / converted: equal content identity (same: also equal names and container); converted
  also covers the same values in another order (rows, columns or vector entries permuted, e.g.
  llama.cpp's q/k row order or permuted feed-forward units: norms kept, see `_permuted`);
- cast: every changed tensor equals the other side rounded to its lower-precision float dtype;
- quantized: one side is block-quantized (GGUF) or integer, with an error within what its bits
  per weight allow (integers are compared after a per-row least-squares scale; auxiliary
  scale / zero-point tensors on one side are allowed);
- pruned: new exact zeros (full-tensor counts), every surviving sampled value unchanged;
  `magnitude` in details when every pruned sampled value is smaller than every kept one;
- adapter: every changed matrix moved by an update of rank <= K/2 = 16 (rank of `S_B - S_A`);
- finetuned: changed tensors still close to the other side (centred cosine of the samples
  >= 0.5); also a digest change no sampled value shows (confidence 0.5), or changes confined to
  buffers and constants (0.4);
- extended / truncated: values kept (possibly cast, quantized or pruned as well, noted in
  `details["also"]`), rows appended or removed, or whole tensors added or removed;
- partial: some tensors reused or changed, >= 5% of the paired parameters replaced by
  unrelated values (tensors unmatched on both sides count as replaced);
- unrelated: less than 2% of the non-trivial paired parameters related (integer buffers,
  constant norms and tiny tensors that every model of an architecture shares are ignored).

Direction (`parent` -> `child`): the derived side of cast and quantized is the lower-precision
one, of pruned the sparser one; extended: the side with appended rows or added modules (new
tensor names, e.g. a head) is the child; truncated: the side missing whole numbered layers of a
stack both share (`encoder.layer.5`) is the child (rows are usually appended to a vocabulary,
heads added, layers dropped, so which label applies follows the kind of change).
Fine-tuned, adapter and partial are symmetric in the weights: `parent` is None and
`details["direction"]` is "unknown", unless only one side carries extra tensors (a new head),
which makes it the child at a lower confidence. `relate_merge` tests a child against candidate
parents (weight averages and task arithmetic: the child as an affine combination of parents).

Known limits: a transposed layout (e.g. GPT-2 Conv1D against Linear) does not pair; a rank
above 16 reads as a fine-tune; an update smaller than the quantization error of the other side
reads as quantized; below about 3 bits per weight permutations are not recognised.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from assay.analyses.diff import layer_of
from assay.analyses.lineage.fingerprint import (
    K,
    SketchParts,
    is_trivial,
    matrix_shape,
    sample_index,
    unpack_parts,
)
from assay.analyses.lineage.types import Evidence, Fingerprint, TensorSketch, Verdict
from assay.model.dtypes import DTYPES

RELATED_COS = 0.5        # centred cosine of samples above which a changed tensor is "updated"
REPLACED_SHARE = 0.05    # share of paired parameters replaced that makes a model "partial"
RANK_TOL = 1e-3          # singular values of S_B - S_A below this share of the largest are noise
MAX_EVIDENCE = 48         # evidence items kept per verdict
QUANT_AUX = re.compile(r"(scale|absmax|zero_point|SCB|\.qzeros|\.g_idx)", re.I)


# -- one tensor's sketch, unpacked once -----------------------------------------------------
@dataclass
class _T:
    ts: TensorSketch

    @cached_property
    def parts(self) -> SketchParts:
        return unpack_parts(self.ts.sketch)

    @property
    def sample(self) -> np.ndarray | None:
        return self.parts.sample

    @property
    def s(self) -> np.ndarray | None:
        return self.parts.s

    @property
    def numel(self) -> int:
        return math.prod(self.ts.shape)

    @cached_property
    def trivial(self) -> bool:
        return is_trivial(self.ts)


@dataclass
class _Pair:
    a: _T
    b: _T
    how: str                              # name | digest | similar | shape
    kind: str = "identical"               # identical | cast | quantized | pruned | lowrank | updated |
                                          # permuted | replaced | opaque | rows
    stats: dict[str, float] = field(default_factory=dict)
    rows: int = 0                         # rows added (>0) or removed (<0) from a to b
    rows_kind: str = ""                   # kind of the common rows when rows changed

    @property
    def name(self) -> str:
        return self.b.ts.name if self.a.ts.name == self.b.ts.name else f"{self.a.ts.name}->{self.b.ts.name}"

    @property
    def weight(self) -> int:
        return max(self.a.numel, self.b.numel)

    @property
    def trivial(self) -> bool:
        return self.a.trivial and self.b.trivial


# -- dtype helpers --------------------------------------------------------------------------
def _is_float(dt: str) -> bool:
    d = DTYPES.get(dt)
    return d is not None and d.kind == "float"


def _is_quant(dt: str) -> bool:
    d = DTYPES.get(dt)
    if dt.startswith("gguf."):
        return True
    return d is not None and (d.is_block or d.kind in ("int", "uint"))


def _bits_per_value(dt: str) -> float:
    """Bits per value; for a block type not registered in this process (a fingerprint read
    back without the GGUF reader having run), from the digit of its ggml name (q4_k: 4.5)."""
    d = DTYPES.get(dt)
    if d is not None:
        return d.block_bytes * 8 / d.block_size if d.is_block else float(d.bits)
    m = re.search(r"q(\d)", dt)
    return int(m.group(1)) + 0.5 if m else 4.0


def _precision(dt: str) -> float:
    """Order of precision: mantissa bits of floats; quantized types below every float, finer
    (more bits per value) above coarser."""
    mant = {"float64": 52, "float32": 23, "float16": 10, "bfloat16": 7, "float8_e4m3fn": 3,
            "float8_e4m3fnuz": 3, "float8_e5m2": 2, "float8_e5m2fnuz": 2, "float8_e8m0fnu": 0}
    if dt in mant:
        return float(mant[dt])
    return _bits_per_value(dt) - 64.0 if _is_quant(dt) else 23.0


# -- pairing --------------------------------------------------------------------------------
def _compatible(a: _T, b: _T) -> bool:
    sa, sb = a.ts.shape, b.ts.shape
    return sa == sb or (len(sa) == len(sb) >= 1 and sa[1:] == sb[1:])


def _common(a: _T, b: _T) -> tuple[np.ndarray, np.ndarray] | None:
    """The two samples at their common (row, column) positions, as float64."""
    xa, xb = a.sample, b.sample
    if xa is None or xb is None:
        return None
    if a.ts.shape == b.ts.shape:
        return xa.astype(np.float64), xb.astype(np.float64)
    ra, ca = sample_index(a.ts.shape)
    rb, cb = sample_index(b.ts.shape)
    if xa.shape != (len(ra), len(ca)) or xb.shape != (len(rb), len(cb)):
        return None
    _, ia, ib = np.intersect1d(ra, rb, return_indices=True)
    _, ja, jb = np.intersect1d(ca, cb, return_indices=True)
    return xa[np.ix_(ia, ja)].astype(np.float64), xb[np.ix_(ib, jb)].astype(np.float64)


def _ccos(x: np.ndarray, y: np.ndarray) -> float:
    """Centred cosine (correlation); 1 for two equal constants, 0 when one is constant."""
    if x.size == 0:
        return 0.0
    xc, yc = x - x.mean(), y - y.mean()
    nx, ny = float(np.dot(xc.ravel(), xc.ravel())), float(np.dot(yc.ravel(), yc.ravel()))
    if nx == 0 or ny == 0:
        return 1.0 if nx == ny and np.array_equal(x, y) else 0.0
    return float(np.dot(xc.ravel(), yc.ravel()) / math.sqrt(nx * ny))


def _pair(ta: list[_T], tb: list[_T]) -> tuple[list[_Pair], list[_T], list[_T]]:
    by_name = {t.ts.name: t for t in tb}
    pairs: list[_Pair] = []
    left: list[_T] = []
    used: set[int] = set()
    for t in ta:
        u = by_name.get(t.ts.name)
        if u is not None and _compatible(t, u):
            pairs.append(_Pair(t, u, "name"))
            used.add(id(u))
        else:
            left.append(t)
    right = [u for u in tb if id(u) not in used]
    if left and right:
        by_digest: dict[str, list[_T]] = {}
        for u in right:
            by_digest.setdefault(u.ts.digest, []).append(u)
        still = []
        for t in left:
            bucket = by_digest.get(t.ts.digest)
            if bucket:
                pairs.append(_Pair(t, bucket.pop(0), "digest"))
            else:
                still.append(t)
        left = still
        right = [u for us in by_digest.values() for u in us]
    if left and right:
        left, right = _assign(pairs, left, right, _same_shape_candidates(left, right))
    if left and right:
        left, right = _assign(pairs, left, right, _row_change_candidates(left, right))
    if left and right:
        left, right = _assign(pairs, left, right, _permuted_candidates(left, right))
    if left and right:       # trivial leftovers (renamed buffers, fresh norms): by dtype and shape
        still = []
        for t in left:
            u = next((u for u in right if t.trivial and u.trivial and u.ts.shape == t.ts.shape
                      and u.ts.dtype == t.ts.dtype), None)
            if u is None:
                still.append(t)
            else:
                right.remove(u)
                pairs.append(_Pair(t, u, "shape"))
        left = still
    return pairs, left, right


Candidate = tuple[float, str, str, _T, _T]


def _unit(t: _T) -> np.ndarray | None:
    x = t.sample
    if x is None or x.size == 0:
        return None
    v = x.astype(np.float64).ravel()
    v = v - v.mean()
    n = float(np.linalg.norm(v))
    return v / n if n else None


def _same_shape_candidates(left: list[_T], right: list[_T]) -> list[Candidate]:
    """Pairs of equally shaped tensors whose samples correlate, all of a shape at once."""
    out: list[Candidate] = []
    shapes = {t.ts.shape for t in left} & {u.ts.shape for u in right}
    for shape in sorted(shapes):
        ls = [(t, v) for t in left if t.ts.shape == shape and not t.trivial
              for v in [_unit(t)] if v is not None]
        rs = [(u, v) for u in right if u.ts.shape == shape and not u.trivial
              for v in [_unit(u)] if v is not None]
        if not ls or not rs:
            continue
        sim = np.stack([v for _, v in ls]) @ np.stack([v for _, v in rs]).T
        for i, j in zip(*np.nonzero(sim >= RELATED_COS)):
            t, u = ls[i][0], rs[j][0]
            out.append((-float(sim[i, j]), t.ts.name, u.ts.name, t, u))
    return out


def _row_change_candidates(left: list[_T], right: list[_T]) -> list[Candidate]:
    """Pairs that differ in their first dimension only (rows added or removed), by the
    correlation of their common sampled rows."""
    out: list[Candidate] = []
    for t in left:
        for u in right:
            if t.ts.shape == u.ts.shape or not _compatible(t, u) or t.trivial or u.trivial:
                continue
            xs = _common(t, u)
            if xs is None or xs[0].size == 0:
                continue
            c = _ccos(*xs)
            if c >= RELATED_COS:
                out.append((-c, t.ts.name, u.ts.name, t, u))
    return out


def _permuted_candidates(left: list[_T], right: list[_T]) -> list[Candidate]:
    """Equally shaped tensors holding the same values in another order (see `_permuted`)."""
    out: list[Candidate] = []
    for t in left:
        for u in right:
            if t.ts.shape == u.ts.shape and not t.trivial and not u.trivial and _permuted(t, u):
                out.append((-0.5, t.ts.name, u.ts.name, t, u))
    return out


def _assign(pairs: list[_Pair], left: list[_T], right: list[_T],
            cands: list[Candidate]) -> tuple[list[_T], list[_T]]:
    """Greedy one-to-one assignment, most similar first (ties by name)."""
    cands.sort(key=lambda c: (c[0], c[1], c[2]))
    ua: set[int] = set()
    ub: set[int] = set()
    for _, _, _, t, u in cands:
        if id(t) in ua or id(u) in ub:
            continue
        ua.add(id(t))
        ub.add(id(u))
        pairs.append(_Pair(t, u, "similar"))
    return [t for t in left if id(t) not in ua], [u for u in right if id(u) not in ub]


# -- classifying one pair --------------------------------------------------------------------
def _cast_equal(x: np.ndarray, dx: str, y: np.ndarray, dy: str) -> bool:
    """Whether the higher-precision side rounded to the other's dtype gives the other's values."""
    if not (_is_float(dx) and _is_float(dy)) or dx == dy:
        return False
    hi, lo, dlo = (x, y, dy) if _precision(dx) >= _precision(dy) else (y, x, dx)
    npd = DTYPES[dlo].numpy
    if npd is None:
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        r = hi.astype(np.float32).astype(npd).astype(np.float64)
    return bool(np.array_equal(r, lo)) or (_precision(dx) == _precision(dy) and np.array_equal(x, y))


def _quant_error(xf: np.ndarray, xq: np.ndarray, dq: str) -> float:
    """Relative L2 error of the quantized side against the float side (integers: per-row scale)."""
    if xf.size == 0:
        return 0.0
    if not dq.startswith("gguf.") and not DTYPES[dq].is_block:
        num = np.einsum("ij,ij->i", xf, xq)
        den = np.einsum("ij,ij->i", xq, xq)
        scale = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
        xq = xq * scale[:, None]
    n = float(np.linalg.norm(xf))
    return float(np.linalg.norm(xq - xf)) / n if n else 0.0


def _grid_bound(dq: str) -> float:
    """The largest relative L2 error a quantizer of this many bits per value plausibly leaves:
    a step of about absmax / 2^(bits-1), times a factor for heavy-tailed blocks (3 for block
    types, 6 for plain integers whose scale may span a whole row or tensor)."""
    factor = 3.0 if dq.startswith("gguf.") or DTYPES[dq].is_block else 6.0
    return min(0.5, factor * 2.0 ** -(_bits_per_value(dq) - 1.0))


def _rel_step(dt: str) -> float:
    """Relative rounding step of a dtype: 2^-(bits-1) for quantized types, 2^-(mantissa+1)
    for floats."""
    if _is_quant(dt):
        return 2.0 ** -(_bits_per_value(dt) - 1.0)
    return 2.0 ** -(_precision(dt) + 1.0)


def _same_profile(x: np.ndarray | None, y: np.ndarray | None, offset: float, spread: float) -> bool:
    """Whether y matches x up to one common factor within `offset` of 1, element ratios
    varying by at most `spread` (standard deviation)."""
    if x is None or y is None or x.shape != y.shape or x.size < 4:
        return False
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    keep = np.abs(x64) > 1e-9 * float(np.max(np.abs(x64)) or 1.0)
    if keep.sum() < 4 or np.any(np.abs(y64[~keep]) > 1e-6 * float(np.max(np.abs(y64)) or 1.0)):
        return False
    r = y64[keep] / x64[keep]
    return abs(float(np.median(r)) - 1.0) <= offset and float(np.std(r)) <= spread


def _permuted(a: _T, b: _T) -> str | None:
    """"rows", "columns" or "values" when `b` holds `a`'s values in another order: a row
    permutation keeps every column norm and the distribution of row norms; a column
    permutation the reverse; a vector keeps its value quantiles. A cast or quantization adds
    about step^2 of energy to every norm alike (a common factor), while unrelated matrices
    differ column by column, so the spread of the ratios decides."""
    pa, pb = a.parts, b.parts
    step = max(_rel_step(a.ts.dtype), _rel_step(b.ts.dtype))
    offset = 1e-4 + 4.0 * step * step
    # the norm of m unrelated values varies by about 0.7/sqrt(m) between two models; rounding
    # of relative step s moves it by about 1.3 s/sqrt(m) (measured on Q8_0 and Q4_0 blocks)
    noise = 1e-3 + 3.0 * step
    m, n = matrix_shape(a.ts.shape)
    if pa.value_q is not None:
        return "values" if _close(pa.value_q, pb.value_q, 1e-4 + 2.0 * step) else None
    if m >= 16 and _same_profile(pa.col_norms, pb.col_norms, offset, noise / math.sqrt(m)) and \
            _same_profile(pa.row_q, pb.row_q, offset, noise / math.sqrt(n)):
        return "rows"
    if n >= 16 and _same_profile(pa.row_norms, pb.row_norms, offset, noise / math.sqrt(n)) and \
            _same_profile(pa.col_q, pb.col_q, offset, noise / math.sqrt(m)):
        return "columns"
    return None


def _close(x: np.ndarray | None, y: np.ndarray | None, tol: float) -> bool:
    if x is None or y is None or x.shape != y.shape or x.size == 0:
        return False
    scale = float(np.max(np.abs(x))) or 1.0
    return bool(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64))) <= tol * scale)


def _update_rank(a: _T, b: _T) -> tuple[int | None, list[float]]:
    if a.s is None or b.s is None or a.s.shape != b.s.shape:
        return None, []
    d = b.s.astype(np.float64) - a.s.astype(np.float64)
    sv = np.linalg.svd(d, compute_uv=False)
    if sv.size == 0 or sv[0] == 0:
        return 0, []
    floor = 1e-6 * float(np.linalg.norm(a.s))
    r = int(np.sum((sv > sv[0] * RANK_TOL) & (sv > floor)))
    return r, [float(v) for v in sv[: min(len(sv), r + 2)]]


def _classify(p: _Pair) -> None:
    a, b = p.a, p.b
    da, db = a.ts.dtype, b.ts.dtype
    if a.ts.shape != b.ts.shape:
        p.kind = "rows"
        p.rows = b.ts.shape[0] - a.ts.shape[0]
        xs = _common(a, b)
        if xs is None:
            p.rows_kind = "opaque"
            return
        x, y = xs
        p.stats["common_cos"] = _ccos(x, y)
        p.rows_kind = "kept" if np.array_equal(x, y) or _cast_equal(x, da, y, db) else (
            "updated" if p.stats["common_cos"] >= RELATED_COS else "replaced")
        return
    if a.ts.digest == b.ts.digest:
        p.kind = "identical"
        return
    xs = _common(a, b)
    if xs is None:
        p.kind = "opaque"
        return
    x, y = xs
    n = float(np.linalg.norm(x))
    rel = float(np.linalg.norm(y - x)) / n if n else float(np.linalg.norm(y) > 0)
    cos = _ccos(x, y)
    p.stats.update(rel_l2=rel, cos=cos)
    if da != db and _cast_equal(x, da, y, db):
        p.kind = "cast"
        return
    if _is_quant(da) != _is_quant(db) or (_is_quant(da) and da != db):
        # float -> quantized; between two quantized types, the coarser is taken as derived
        coarse_b = not _is_quant(da) or _bits_per_value(db) < _bits_per_value(da)
        xf, xq, dq = (x, y, db) if coarse_b else (y, x, da)
        err = _quant_error(xf.reshape(len(xf), -1), xq.reshape(len(xq), -1), dq)
        p.stats["quant_error"] = err
        p.stats["grid_bound"] = _grid_bound(dq)
        if err <= _grid_bound(dq) and (cos >= 0.9 or err == 0):
            p.kind = "quantized"
            return
    za, zb = a.ts.stats.get("zeros", 0.0), b.ts.stats.get("zeros", 0.0)
    if abs(zb - za) > 1e-4 and max(za, zb) < 0.999:     # an all-zero tensor is a reset, not pruning
        sparse, dense = (y, x) if zb > za else (x, y)
        kept = sparse != 0
        if np.array_equal(sparse[kept], dense[kept]) or _cast_equal(dense[kept], da, sparse[kept], db):
            pruned = (sparse == 0) & (dense != 0)
            p.kind = "pruned"
            p.stats["pruned"] = abs(zb - za)
            p.stats["sparser"] = 1.0 if zb > za else -1.0
            if pruned.any() and kept.any():
                small = np.abs(dense[pruned]).max() <= np.abs(dense[kept]).min() * 1.0001
                p.stats["magnitude"] = float(small)
            return
    if rel == 0.0:
        p.kind = "updated"            # the digest differs, yet every sampled value is equal
        p.stats["unsampled_change"] = 1.0
        return
    if cos < RELATED_COS:
        axis = _permuted(a, b)
        p.kind = "permuted" if axis else "replaced"
        if axis:
            p.stats["permuted"] = {"rows": 0.0, "columns": 1.0, "values": 2.0}[axis]
        return
    rank, sv = _update_rank(a, b)
    if rank is not None:
        p.stats["update_rank"] = float(rank)
        if 0 < rank <= K // 2 and a.numel >= 4 * K:
            p.kind = "lowrank"
            return
    p.kind = "updated"


# -- the model-level verdict ----------------------------------------------------------------


def _fmt(f: str) -> str:
    return f.removeprefix("folder:")


@dataclass
class _Judge:
    a: Fingerprint
    b: Fingerprint
    pairs: list[_Pair]
    only_a: list[_T]
    only_b: list[_T]
    evidence: list[Evidence] = field(default_factory=list)      # what decided, first
    tail: list[Evidence] = field(default_factory=list)          # per changed tensor, after
    details: dict[str, Any] = field(default_factory=dict)

    def mass(self, kinds: Iterable[str], nontrivial: bool = True) -> int:
        ks = set(kinds)
        return sum(p.weight for p in self.pairs if p.kind in ks and not (nontrivial and p.trivial))

    def ev(self, p: _Pair | None, stat: str, value: float | str) -> None:
        self.evidence.append(Evidence(None if p is None else p.name, stat, value))

    def verdict(self, relation: str, parent: Fingerprint | None, confidence: float, summary: str,
                child: Fingerprint | None = None) -> Verdict:
        if parent is not None and child is None:
            child = self.b if parent is self.a else self.a
        return Verdict(relation, parent.label if parent else None, child.label if child else None,
                       round(confidence, 3), summary, tuple((self.evidence + self.tail)[:MAX_EVIDENCE]),
                       self.details)


def _judge(j: _Judge) -> Verdict:
    for p in j.pairs:
        if not p.trivial and p.kind != "identical":
            j.tail.append(Evidence(p.name, p.kind, round(_evidence_value(p), 6)))
    v = _unrelated_or_partial(j)
    if v is not None:
        return v
    changed = [p for p in j.pairs if p.kind != "identical" and not (p.trivial and p.kind in
                                                                      ("replaced", "updated"))]
    value_changed = [p for p in changed if p.kind != "rows" or p.rows_kind != "kept"]
    vkinds = {p.kind if p.kind != "rows" else "rows-" + p.rows_kind for p in value_changed}
    rows = [p for p in changed if p.kind == "rows"]
    aux = [t for t in (*j.only_a, *j.only_b) if QUANT_AUX.search(t.ts.name)]
    extra_a = [t for t in j.only_a if t not in aux]
    extra_b = [t for t in j.only_b if t not in aux]
    extras = bool(extra_a or extra_b)
    permuted = [p for p in value_changed if p.kind == "permuted"]
    if permuted:            # the same values in another order: layout, not a change of values
        axes = ("rows", "columns", "values")
        j.details["permuted"] = {p.name: axes[int(p.stats["permuted"])] for p in permuted}
        for p in permuted[:8]:
            j.ev(p, "permuted", axes[int(p.stats["permuted"])])
        value_changed = [p for p in value_changed if p.kind != "permuted"]
        vkinds.discard("permuted")
        if not value_changed and not rows and not extras:
            return j.verdict("converted", None, 0.8, f"same values in another layout: {len(permuted)} "
                             "tensors permuted (" + ", ".join(sorted(set(j.details["permuted"].values())))
                             + ")")
    if not value_changed and not rows and not extras and not aux:
        return _nothing_material(j)
    structural = bool(rows or extras)
    if vkinds and vkinds <= {"cast"} and not structural:
        return _cast(j, value_changed)
    if "quantized" in vkinds and vkinds <= {"quantized", "cast"} and not structural:
        return _quantized(j, [p for p in value_changed if p.kind == "quantized"])
    if vkinds == {"pruned"} and not structural:
        return _pruned(j, value_changed)
    if structural and vkinds <= {"cast", "quantized", "pruned"} and not (extra_a and extra_b):
        if vkinds:      # e.g. rows appended and cast: the structural change names the relation
            j.details["also"] = sorted(vkinds)
        return _grown(j, rows, extra_a, extra_b)
    return _changed(j, value_changed, vkinds, rows, extra_a, extra_b)


def _unrelated_or_partial(j: _Judge) -> Verdict | None:
    """Unrelated when no material share of the paired parameters is related; partial when a
    material share was replaced by unrelated values while the rest was kept or changed."""
    nontriv = [p for p in j.pairs if not p.trivial]
    related_kinds = ("identical", "cast", "quantized", "pruned", "lowrank", "updated", "permuted")
    related = j.mass(related_kinds) + sum(p.weight for p in nontriv if p.kind == "rows"
                                          and p.rows_kind in ("kept", "updated"))
    replaced = j.mass(("replaced",)) + sum(p.weight for p in nontriv if p.kind == "rows"
                                           and p.rows_kind == "replaced")
    # tensors unmatched on both sides stand in for each other: replaced under other names
    unmatched = [sum(t.numel for t in side if not t.trivial and not QUANT_AUX.search(t.ts.name))
                 for side in (j.only_a, j.only_b)]
    replaced += min(unmatched)
    total = sum(p.weight for p in nontriv) + min(unmatched) or 1
    j.details["related_share"] = round(related / total, 4)
    j.details["replaced_share"] = round(replaced / total, 4)
    j.ev(None, "related_share", round(related / total, 4))
    if not nontriv or related == 0:
        return j.verdict("unrelated", None, 0.9 if nontriv else 0.6,
                         f"no related tensor among {len(nontriv)} paired non-trivial tensors")
    if related < 0.02 * total:
        return j.verdict("unrelated", None, 0.8,
                         f"only {related / total:.1%} of paired parameters related (chance matches)")
    if replaced < REPLACED_SHARE * total:
        return None
    reused = sorted({layer_of(p.b.ts.name) for p in nontriv if p.kind != "replaced"})
    gone = sorted({layer_of(p.b.ts.name) for p in nontriv if p.kind == "replaced"})
    j.details.update(reused_layers=reused, replaced_layers=gone, direction="unknown")
    j.ev(None, "replaced_share", round(replaced / total, 4))
    return j.verdict("partial", None, 0.8,
                     f"{related / total:.0%} of paired parameters reused or related, "
                     f"{replaced / total:.0%} replaced ({', '.join(gone[:6])})")


def _nothing_material(j: _Judge) -> Verdict:
    moved = [p for p in j.pairs if p.kind != "identical"]
    if not moved:
        j.ev(None, "values", "equal")
        return j.verdict("converted", None, 0.9, "same values in another layout")
    for p in moved[:8]:                       # only buffers, constants or tiny tensors differ
        j.ev(p, "trivial-changed", p.kind)
    j.details["changed_tensors"] = sorted(p.name for p in moved)
    j.details["direction"] = "unknown"
    return j.verdict("finetuned", None, 0.4, f"only {len(moved)} buffers, constants or tiny tensors differ")


def _changed(j: _Judge, value_changed: list[_Pair], vkinds: set[str], rows: list[_Pair],
             extra_a: list[_T], extra_b: list[_T]) -> Verdict:
    """Values moved: an adapter when every changed matrix moved by a low-rank update, else a
    fine-tune (direction only from a side that adds tensors)."""
    if not value_changed:       # shared tensors kept, others only on either side: replaced
        j.details.update(added=sorted(t.ts.name for t in extra_b),
                         removed=sorted(t.ts.name for t in extra_a), direction="unknown")
        return j.verdict("partial", None, 0.6, f"values kept; {len(extra_a)} tensors replaced by "
                         f"{len(extra_b)} others")
    layers = sorted({layer_of(p.b.ts.name) for p in value_changed})
    j.details["changed_layers"] = layers
    j.details["changed_tensors"] = sorted(p.name for p in value_changed)
    if rows or extra_a or extra_b:
        j.details["rows"] = {p.name: p.rows for p in rows}
        j.details["added"] = sorted(t.ts.name for t in extra_b)
        j.details["removed"] = sorted(t.ts.name for t in extra_a)
    j.details["direction"] = "unknown"
    parent, child = _direction_by_extras(j)
    if vkinds == {"lowrank"}:
        ranks = sorted({int(p.stats["update_rank"]) for p in value_changed})
        j.details.update(ranks=ranks, rank=max(ranks))
        for p in value_changed[:8]:
            j.ev(p, "update_rank", p.stats["update_rank"])
        return j.verdict("adapter", parent, 0.85 if parent is None else 0.6,
                         f"rank-{max(ranks)} update on {len(value_changed)} tensors "
                         f"({', '.join(layers[:6])})", child)
    unsampled = all(p.stats.get("unsampled_change") for p in value_changed)
    rels = [p.stats["rel_l2"] for p in value_changed if "rel_l2" in p.stats]
    if rels:
        j.details["median_rel_l2"] = float(np.median(rels))
        j.ev(None, "median_rel_l2", round(float(np.median(rels)), 6))
    if unsampled:
        j.ev(None, "unsampled_change", float(len(value_changed)))
        return j.verdict("finetuned", parent, 0.5, f"{len(value_changed)} tensors differ in unsampled "
                         "values only (a tiny edit)", child)
    return j.verdict("finetuned", parent, 0.85 if parent is None else 0.6,
                     f"fine-tuned: {len(value_changed)} of {len(j.pairs)} tensors changed in "
                     f"{len(layers)} layers ({', '.join(layers[:6])})", child)


def _evidence_value(p: _Pair) -> float:
    """The statistic that decided a pair's kind."""
    key = {"pruned": "pruned", "quantized": "quant_error", "lowrank": "update_rank",
           "rows": "common_cos", "replaced": "cos"}.get(p.kind, "rel_l2")
    return float(p.rows if p.kind == "rows" and key not in p.stats else p.stats.get(key, 0.0))


def _direction_by_extras(j: _Judge) -> tuple[Fingerprint | None, Fingerprint | None]:
    """A side that adds tensors (a new head) to otherwise shared ones is taken as the child."""
    if j.only_b and not j.only_a:
        j.details["direction"] = "extra tensors in b"
        return j.a, j.b
    if j.only_a and not j.only_b:
        j.details["direction"] = "extra tensors in a"
        return j.b, j.a
    return None, None


def _same(j: _Judge) -> Verdict:
    a, b = j.a, j.b
    j.ev(None, "content_id", a.content_id)
    if a.named_id == b.named_id and _fmt(a.format) == _fmt(b.format):
        return j.verdict("same", None, 1.0, "identical tensors and names")
    j.ev(None, "named_id", "differs" if a.named_id != b.named_id else "equal")
    j.ev(None, "format", f"{a.format} / {b.format}")
    return j.verdict("converted", None, 0.99,
                     f"same values in another layout ({j.details.get('renamed', 0)} renamed, "
                     f"{a.format} -> {b.format})")


def _lower_side(j: _Judge, ps: list[_Pair], key: Any) -> tuple[Fingerprint, Fingerprint]:
    """(parent, child) where the child holds the lower value of `key(dtype)` on most parameters."""
    score = 0
    for p in ps:
        ka, kb = key(p.a.ts.dtype), key(p.b.ts.dtype)
        score += p.weight * ((ka > kb) - (ka < kb))
    return (j.a, j.b) if score >= 0 else (j.b, j.a)


def _cast(j: _Judge, ps: list[_Pair]) -> Verdict:
    parent, child = _lower_side(j, ps, _precision)
    pairs = sorted({f"{p.a.ts.dtype} -> {p.b.ts.dtype}" for p in ps})
    j.details["dtypes"] = pairs
    for p in ps[:8]:
        j.ev(p, "rounding-equal", f"{p.a.ts.dtype}->{p.b.ts.dtype}")
    return j.verdict("cast", parent, 0.95, f"cast ({', '.join(pairs)}) on {len(ps)} tensors", child)


def _quantized(j: _Judge, ps: list[_Pair]) -> Verdict:
    parent, child = _lower_side(j, ps, _precision)
    err = max(p.stats.get("quant_error", 0.0) for p in ps)
    types = sorted({p.a.ts.dtype for p in ps} | {p.b.ts.dtype for p in ps})
    j.details.update(quantization_error=err, dtypes=types,
                     quantized_tensors=len(ps))
    for p in sorted(ps, key=lambda p: -p.stats.get("quant_error", 0.0))[:8]:
        j.ev(p, "quant_error", round(p.stats.get("quant_error", 0.0), 6))
    return j.verdict("quantized", parent, 0.9,
                     f"quantized ({', '.join(types)}) on {len(ps)} tensors, max relative error "
                     f"{err:.2e}", child)


def _pruned(j: _Judge, ps: list[_Pair]) -> Verdict:
    score = sum(p.weight * p.stats.get("sparser", 0.0) for p in ps)
    parent, child = (j.a, j.b) if score >= 0 else (j.b, j.a)
    total = sum(p.weight for p in ps)
    zeroed = sum(p.weight * p.stats.get("pruned", 0.0) for p in ps)
    frac = zeroed / total if total else 0.0
    mags = [p.stats["magnitude"] for p in ps if "magnitude" in p.stats]
    j.details.update(pruned_fraction=round(frac, 4), pruned_tensors=len(ps),
                     magnitude=bool(mags) and all(m == 1.0 for m in mags))
    for p in ps[:8]:
        j.ev(p, "new_zeros", round(p.stats.get("pruned", 0.0), 4))
    return j.verdict("pruned", parent, 0.9,
                     f"pruned: {frac:.1%} of the weights of {len(ps)} tensors zeroed", child)


def _grown(j: _Judge, rows: list[_Pair], extra_a: list[_T], extra_b: list[_T]) -> Verdict:
    grow_rows = sum(p.rows for p in rows)
    grow_t = sum(t.numel for t in extra_b) - sum(t.numel for t in extra_a)
    j.details["rows"] = {p.name: p.rows for p in rows}
    j.details["added"] = sorted(t.ts.name for t in extra_b)
    j.details["removed"] = sorted(t.ts.name for t in extra_a)
    if extra_a or extra_b:
        j.details["added_layers"] = sorted({layer_of(t.ts.name) for t in extra_b})
        j.details["removed_layers"] = sorted({layer_of(t.ts.name) for t in extra_a})
    for p in rows[:8]:
        j.ev(p, "rows", p.rows)
    for t in extra_a[:8]:
        j.evidence.append(Evidence(t.ts.name, "only-in-a", float(t.numel)))
    for t in extra_b[:8]:
        j.evidence.append(Evidence(t.ts.name, "only-in-b", float(t.numel)))
    identical = sum(1 for p in j.pairs if p.kind == "identical")
    j.ev(None, "identical_tensors", float(identical))
    if rows and not (extra_a or extra_b):
        bigger, smaller = (j.b, j.a) if grow_rows > 0 else (j.a, j.b)
        j.details["direction"] = "rows appended to the smaller side"
        return j.verdict("extended", smaller, 0.8,
                         f"values kept, {', '.join(f'{p.name}: {p.rows:+d} rows' for p in rows[:4])}",
                         bigger)
    bigger, smaller = (j.b, j.a) if grow_t > 0 or (grow_t == 0 and grow_rows > 0) else (j.a, j.b)
    extra = extra_b if bigger is j.b else extra_a
    names = sorted({layer_of(t.ts.name) for t in extra})
    if _dropped_layers(names, [p.b.ts.name if bigger is j.b else p.a.ts.name for p in j.pairs]):
        j.details["direction"] = "numbered layers missing from the smaller side"
        return j.verdict("truncated", bigger, 0.75,
                         f"values kept; {len(extra)} tensors of {len(names)} layers missing "
                         f"({', '.join(names[:6])})", smaller)
    j.details["direction"] = "new modules in the larger side"
    return j.verdict("extended", smaller, 0.7,
                     f"values kept; {len(extra)} tensors added ({', '.join(names[:6])})", bigger)


def _dropped_layers(layers: list[str], shared: list[str]) -> bool:
    """Whether the extra tensors form whole numbered layers of a stack the other model also
    has (`encoder.layer.5` beside a shared `encoder.layer.4`): layers dropped, not modules
    added (a new head such as `classifier`)."""
    def stack(layer: str) -> str | None:
        head, _, last = layer.rpartition(".")
        return head if last.isdigit() else None

    stacks = {stack(layer_of(n)) for n in shared} - {None}
    return bool(layers) and all(stack(x) in stacks for x in layers)


# -- declared metadata --------------------------------------------------------------------------
def _names(fp: Fingerprint) -> set[str]:
    out = {fp.label, os.path.basename(fp.label.rstrip("/"))}
    for k in ("name_or_path", "general.name"):
        v = fp.declared.get(k)
        if isinstance(v, str):
            out.add(v)
            out.add(v.rsplit("/", 1)[-1])
    return {x.lower() for x in out if x}


def _bases(fp: Fingerprint) -> list[str]:
    v = fp.declared.get("base_model")
    vals = v if isinstance(v, list) else [v]
    return [x for x in vals if isinstance(x, str) and x]


DECLARED_RELATION = {"finetune": "finetuned", "adapter": "adapter", "quantized": "quantized",
                     "merge": "merged"}


def _contradiction(v: Verdict, a: Fingerprint, b: Fingerprint) -> str | None:
    for x, y in ((b, a), (a, b)):
        for base in _bases(x):
            names_y = _names(y)
            hit = base.lower() in names_y or base.rsplit("/", 1)[-1].lower() in names_y
            if hit and v.relation == "unrelated":
                return (f"{x.label} declares base_model {base!r} ({y.label}), but the weights are "
                        f"unrelated")
            if hit and v.parent == x.label:
                return (f"{x.label} declares base_model {base!r} ({y.label}), but the weights "
                        f"make {x.label} the origin")
        declared = x.declared.get("base_model_relation")
        want = DECLARED_RELATION.get(str(declared)) if declared else None
        if want and v.child == x.label and v.relation not in (want, "same", "converted"):
            return (f"{x.label} declares base_model_relation {declared!r}, but the weights say "
                    f"{v.relation}")
    return None


def _with_declared(v: Verdict, a: Fingerprint, b: Fingerprint) -> Verdict:
    import dataclasses
    declared = {k: fp.declared for k, fp in (("a", a), ("b", b)) if fp.declared}
    return dataclasses.replace(v, declared=declared, contradiction=_contradiction(v, a, b))


# -- public -------------------------------------------------------------------------------------
def relate(a: Fingerprint, b: Fingerprint) -> Verdict:
    """The relation of `b` to `a`, with evidence, a confidence, and the direction where the
    weights show one (see the module documentation)."""
    ta = [_T(t) for t in a.tensors]
    tb = [_T(t) for t in b.tensors]
    pairs, only_a, only_b = _pair(ta, tb)
    for p in pairs:
        _classify(p)
    j = _Judge(a, b, pairs, only_a, only_b)
    j.details.update(paired=len(pairs), only_a=len(only_a), only_b=len(only_b),
                     renamed=sum(1 for p in pairs if p.a.ts.name != p.b.ts.name))
    if a.content_id == b.content_id:
        v = _same(j)
    else:
        v = _judge(j)
    return _with_declared(v, a, b)


def _vectors(child: Fingerprint, parents: list[Fingerprint]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Per child tensor paired in every parent with the same shape: (name, child vector,
    parents matrix), from the samples and two-sided sketches."""
    tc = [_T(t) for t in child.tensors]
    per_parent: list[dict[int, _T]] = []
    for p in parents:
        pairs, _, _ = _pair(tc, [_T(t) for t in p.tensors])
        per_parent.append({id(q.a): q.b for q in pairs if q.a.ts.shape == q.b.ts.shape})
    out = []
    for t in tc:
        if t.trivial or t.sample is None:
            continue
        others = [m.get(id(t)) for m in per_parent]
        if any(o is None or o.sample is None or o.sample.shape != t.sample.shape for o in others):
            continue

        def vec(x: _T) -> np.ndarray:
            parts = [np.asarray(x.sample, dtype=np.float64).ravel()]
            if x.s is not None:
                parts.append(np.asarray(x.s, dtype=np.float64).ravel())
            return np.concatenate(parts)

        y = vec(t)
        xs = [vec(o) for o in others if o is not None]
        if any(x.shape != y.shape for x in xs):
            continue
        out.append((t.ts.name, y, np.stack(xs, axis=1)))
    return out


def relate_merge(child: Fingerprint, parents: list[Fingerprint]) -> Verdict | None:
    """Whether `child` is a merge of `parents`: its tensors an affine combination (coefficients
    summing to one) of theirs with one set of coefficients for the whole model, fitted by least
    squares over samples and sketches. Weight averages have coefficients in [0, 1]; task
    arithmetic (base + sum of scaled task vectors, with the base among the parents) gives the
    base `1 - sum(lambda)`. None when the fit explains the child no better than its nearest
    parent, or fewer than two parents contribute."""
    if len(parents) < 2:
        return None
    rows = _vectors(child, parents)
    if not rows:
        return None
    ys, xs = [], []
    for _, y, x in rows:
        n = float(np.linalg.norm(y)) or 1.0
        ys.append(y / n)
        xs.append(x / n)
    y = np.concatenate(ys)
    x = np.concatenate(xs)
    base = x[:, 0]
    diffs = x[:, 1:] - base[:, None]
    coef, *_ = np.linalg.lstsq(diffs, y - base, rcond=None)
    alpha = np.concatenate([[1.0 - coef.sum()], coef])
    resid = float(np.linalg.norm(y - x @ alpha))
    nearest = min(float(np.linalg.norm(y - x[:, i])) for i in range(x.shape[1]))
    contributing = int(np.sum(np.abs(alpha) > 0.02))
    if nearest == 0 or resid > 0.1 * nearest or contributing < 2:
        return None
    coefficients = {p.label: round(float(a), 4) for p, a in zip(parents, alpha)}
    method = "weight-average" if np.all(alpha >= -0.02) and np.all(alpha <= 1.02) else "task-arithmetic"
    top = max(range(len(parents)), key=lambda i: (abs(alpha[i]), -i))
    evidence = (Evidence(None, "merge_residual", round(resid / nearest, 6)),
                Evidence(None, "tensors_fitted", float(len(rows))))
    details = {"parents": [p.label for p in parents], "coefficients": coefficients, "method": method,
               "residual_vs_nearest_parent": resid / nearest, "tensors_fitted": len(rows)}
    conf = 0.9 if resid < 0.02 * nearest else 0.7
    weights = ", ".join(f"{k}: {v:+.3f}" for k, v in coefficients.items())
    summary = f"{method} of {len(parents)} models ({weights})"
    declared = {p.label: p.declared for p in [child, *parents] if p.declared}
    return Verdict("merged", parents[top].label, child.label, conf, summary, evidence, details, declared)
