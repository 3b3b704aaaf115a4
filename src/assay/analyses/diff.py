"""What changed between two models: pair tensors, measure each change, name the relation.

Pairing (in the spirit of diffoscope's container comparison): by name, then by content digest
(renamed), then by shape and value similarity (renamed and changed); the rest is added or
removed. Each pair is measured in chunks, so two large models are never both in memory.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from assay.analyses.identity import tensor_digest
from assay.model.artifact import ModelArtifact
from assay.model.tensor import TensorRecord

CHUNK = 1 << 22                 # elements per measured chunk
SAMPLE = 4096                   # elements sampled for similarity pairing
SIMILAR = 0.5                   # cosine above which two unpaired tensors are paired
SVD_MAX = 1 << 24               # elements of an update whose rank is computed exactly
RANK_PROBE = 96                 # columns of the randomized probe for larger updates

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Stats:
    max_abs: float
    rel_l2: float
    cosine: float
    changed: float              # fraction of elements that differ
    new_zeros: float            # fraction of elements that became exactly zero
    rank: int | None = None     # rank of the update, when it is low
    exact_cast: bool = False    # B equals A rounded to B's dtype


@dataclass(frozen=True)
class TensorChange:
    a: str | None
    b: str | None
    status: str                 # identical | renamed | changed | added | removed
    kind: str                   # same | cast | quantized | pruned | low-rank | updated |
                                # rows-added | rows-removed | reshaped | replaced | added | removed
    dtype_a: str | None = None
    dtype_b: str | None = None
    shape_a: tuple[int, ...] | None = None
    shape_b: tuple[int, ...] | None = None
    parameters: int = 0
    stats: Stats | None = None
    rows: int = 0               # rows added (>0) or removed (<0)

    @property
    def name(self) -> str:
        return self.b if self.b is not None else self.a or ""


@dataclass(frozen=True)
class DiffResult:
    a: str
    b: str
    relation: str               # same | converted | cast | quantized | pruned | adapter | finetuned |
                                # extended | truncated | unrelated | changed
    summary: str
    changes: tuple[TensorChange, ...]
    details: dict[str, object] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return self.relation == "same"


# -- chunked reading ---------------------------------------------------------------------------
def _flat_chunks(t: TensorRecord, rows: int | None = None) -> Iterator[np.ndarray]:
    """float64 chunks of the row-major values (the first `rows` rows when given)."""
    if t.dtype.is_block or t.dtype.kind == "complex":
        v = t.values(np.float64)
        if rows is not None:
            v = v[:rows]
        flat = v.reshape(-1)
        for i in range(0, flat.size, CHUNK):
            yield flat[i:i + CHUNK]
        return
    arr = t.read()
    if rows is not None:
        arr = arr[:rows]
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.flags.c_contiguous:
        flat = arr.reshape(-1)
        for i in range(0, flat.size, CHUNK):
            yield flat[i:i + CHUNK].astype(np.float64)
        return
    per_row = max(1, math.prod(arr.shape[1:]))
    step = max(1, CHUNK // per_row)
    for i in range(0, arr.shape[0], step):
        yield np.ascontiguousarray(arr[i:i + step]).reshape(-1).astype(np.float64)


def _sample(t: TensorRecord) -> np.ndarray | None:
    if t.numel == 0 or not t.can_decode():
        return None
    if t.dtype.is_block:
        flat = t.values(np.float64).reshape(-1)
    else:
        arr = t.read()
        flat = arr.reshape(-1) if arr.flags.c_contiguous else np.ascontiguousarray(arr).reshape(-1)
    step = max(1, flat.size // SAMPLE)
    return np.asarray(flat[::step][:SAMPLE], dtype=np.float64)


def _cos(x: np.ndarray, y: np.ndarray) -> float:
    nx, ny = float(np.dot(x, x)), float(np.dot(y, y))
    if nx == 0 or ny == 0:
        return 1.0 if nx == ny else 0.0
    return float(np.dot(x, y) / math.sqrt(nx * ny))


# -- measuring one pair ------------------------------------------------------------------------
def _exact_cast(a: TensorRecord, b: TensorRecord, rows: int | None) -> bool:
    if a.dtype.is_block or b.dtype.is_block or a.dtype.kind != "float" or b.dtype.kind != "float":
        return False
    assert b.dtype.numpy is not None
    xa, xb = a.read(), b.read()
    if rows is not None:
        xa, xb = xa[:rows], xb[:rows]
    if xa.ndim == 0:
        xa, xb = xa.reshape(1), xb.reshape(1)
    step = max(1, CHUNK // max(1, math.prod(xa.shape[1:])))
    for i in range(0, xa.shape[0], step):
        ca = np.ascontiguousarray(xa[i:i + step]).astype(b.dtype.numpy)
        cb = np.ascontiguousarray(xb[i:i + step]).astype(b.dtype.numpy)
        if ca.view(np.uint8).tobytes() != cb.view(np.uint8).tobytes():
            return False
    return True


def _rank(a: TensorRecord, b: TensorRecord, eps: float) -> int | None:
    """Numerical rank of B - A for matrices, or None when it is not low."""
    if len(a.shape) < 2 or a.shape != b.shape or a.numel == 0:
        return None
    m = a.shape[0]
    n = a.numel // m
    if min(m, n) < 4:
        return None
    delta = (b.values(np.float32).reshape(m, n) - a.values(np.float32).reshape(m, n))
    if min(m, n) <= 256:
        s = np.linalg.svd(delta.astype(np.float64), compute_uv=False)
    else:
        rng = np.random.default_rng(0)
        probe = delta @ rng.standard_normal((n, RANK_PROBE)).astype(np.float32)
        s = np.linalg.svd(probe.astype(np.float64), compute_uv=False)
    if s.size == 0 or s[0] == 0:
        return None
    tol = s[0] * max(1e-4, 10 * eps)
    r = int(np.sum(s > tol))
    limit = min(m, n) // 2 if s.size == min(m, n) else RANK_PROBE // 2
    return r if r <= limit else None


def _eps(dt_name: str) -> float:
    return {"float16": 9.8e-4, "bfloat16": 7.8e-3, "float8_e4m3fn": 0.125, "float8_e5m2": 0.25,
            "float64": 2.2e-16}.get(dt_name, 1.2e-7)


def same_bytes(a: TensorRecord, b: TensorRecord) -> bool:
    """Whether two tensors of one dtype and shape hold the same canonical bytes (no conversion)."""
    if a.dtype.name != b.dtype.name or a.shape != b.shape:
        return False
    ca, cb = a.canonical_chunks(CHUNK), b.canonical_chunks(CHUNK)
    pa, pb = next(ca, None), next(cb, None)
    while pa is not None and pb is not None and len(pa) == len(pb):
        if not np.array_equal(np.frombuffer(pa, np.uint8), np.frombuffer(pb, np.uint8)):
            return False
        pa, pb = next(ca, None), next(cb, None)
    if pa is None and pb is None:
        return True
    return tensor_digest(a).digest == tensor_digest(b).digest   # the two stream in other pieces


def measure(a: TensorRecord, b: TensorRecord, rows: int | None = None,
            progress: Progress | None = None) -> Stats:
    if rows is None and same_bytes(a, b):
        if progress:
            progress(a.numel)
        return Stats(0.0, 0.0, 1.0, 0.0, 0.0)
    dot = na = nb = dd = 0.0
    max_abs = 0.0
    changed = zeros = total = 0
    for ca, cb in zip(_flat_chunks(a, rows), _flat_chunks(b, rows), strict=True):
        d = cb - ca
        dot += float(np.dot(ca, cb))
        na += float(np.dot(ca, ca))
        nb += float(np.dot(cb, cb))
        dd += float(np.dot(d, d))
        if d.size:
            max_abs = max(max_abs, float(np.max(np.abs(d))))
        changed += int(np.count_nonzero(d))
        zeros += int(np.count_nonzero((cb == 0) & (ca != 0)))
        total += ca.size
        if progress:
            progress(ca.size)
    rel = math.sqrt(dd / na) if na else (0.0 if dd == 0 else math.inf)
    cos = dot / math.sqrt(na * nb) if na and nb else (1.0 if na == nb else 0.0)
    frac = changed / total if total else 0.0
    exact = a.dtype.name != b.dtype.name and _exact_cast(a, b, rows)
    rank = None
    if changed and not exact and zeros < changed and rows is None:
        rank = _rank(a, b, max(_eps(a.dtype.name), _eps(b.dtype.name)))
    return Stats(max_abs, rel, cos, frac, zeros / total if total else 0.0, rank, exact)


def quantization_error(s: Stats) -> float:
    """Relative L2 error after the best scale (integer copies store values divided by a scale)."""
    return min(s.rel_l2, math.sqrt(max(0.0, 1.0 - s.cosine * s.cosine)))


def _is_quantized(a: TensorRecord, b: TensorRecord) -> bool:
    def low(t: TensorRecord) -> bool:
        return t.dtype.is_block or t.dtype.kind in ("int", "uint") or t.dtype.name.startswith("float8")
    return a.dtype.kind == "float" and not a.dtype.name.startswith("float8") and low(b)


def _kind(a: TensorRecord, b: TensorRecord, s: Stats) -> str:
    if s.changed == 0:
        return "same"
    if s.exact_cast:
        return "cast"
    if _is_quantized(a, b) or _is_quantized(b, a):
        return "quantized"
    if s.new_zeros > 0 and math.isclose(s.new_zeros, s.changed, rel_tol=1e-9):
        return "pruned"
    if s.rank is not None and s.changed > 0.5:
        return "low-rank"
    return "updated" if s.cosine > SIMILAR else "replaced"


def compare_pair(a: TensorRecord, b: TensorRecord, status: str,
                 progress: Progress | None = None) -> TensorChange:
    base = dict(a=a.name, b=b.name, dtype_a=a.dtype.name, dtype_b=b.dtype.name,
                shape_a=a.shape, shape_b=b.shape, parameters=b.numel)
    decodable = a.can_decode() and b.can_decode()
    if a.shape != b.shape:
        if decodable and len(a.shape) == len(b.shape) >= 1 and a.shape[1:] == b.shape[1:]:
            rows = min(a.shape[0], b.shape[0])
            s = measure(a, b, rows, progress)
            grow = b.shape[0] - a.shape[0]
            return TensorChange(status="changed", kind="rows-added" if grow > 0 else "rows-removed",
                                stats=s, rows=grow, **base)  # type: ignore[arg-type]
        return TensorChange(status="changed", kind="reshaped", **base)  # type: ignore[arg-type]
    if not decodable:
        same = tensor_digest(a).digest == tensor_digest(b).digest
        return TensorChange(status=status if same else "changed", kind="same" if same else "replaced",
                            **base)  # type: ignore[arg-type]
    s = measure(a, b, None, progress)
    kind = _kind(a, b, s)
    st = status if kind == "same" and a.dtype.name == b.dtype.name else (
        "changed" if status == "identical" else status)
    return TensorChange(status=st, kind=kind, stats=s, **base)  # type: ignore[arg-type]


# -- pairing -----------------------------------------------------------------------------------
def pair(ta: list[TensorRecord], tb: list[TensorRecord]) -> tuple[
        list[tuple[TensorRecord, TensorRecord, str]], list[TensorRecord], list[TensorRecord]]:
    by_b = {t.name: t for t in tb}
    pairs: list[tuple[TensorRecord, TensorRecord, str]] = []
    left: list[TensorRecord] = []
    for t in ta:
        if t.name in by_b:
            pairs.append((t, by_b.pop(t.name), "identical"))
        else:
            left.append(t)
    right = [t for t in tb if t.name in by_b]
    if left and right:
        digest_b: dict[bytes, list[TensorRecord]] = {}
        for t in right:
            digest_b.setdefault(tensor_digest(t).digest, []).append(t)
        still: list[TensorRecord] = []
        for t in left:
            bucket = digest_b.get(tensor_digest(t).digest)
            if bucket:
                pairs.append((t, bucket.pop(0), "renamed"))
            else:
                still.append(t)
        left = still
        right = [t for ts in digest_b.values() for t in ts]
    if left and right:
        candidates = []
        samples_b = {id(t): _sample(t) for t in right}
        for t in left:
            sa = _sample(t)
            for u in right:
                su = samples_b[id(u)]
                if sa is not None and su is not None and t.shape == u.shape:
                    candidates.append((_cos(sa, su), t.name, u.name, t, u))
        candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
        used_a: set[int] = set()
        used_b: set[int] = set()
        for c, _, _, t, u in candidates:
            if c < SIMILAR or id(t) in used_a or id(u) in used_b:
                continue
            used_a.add(id(t))
            used_b.add(id(u))
            pairs.append((t, u, "renamed"))
        left = [t for t in left if id(t) not in used_a]
        right = [t for t in right if id(t) not in used_b]
    return pairs, left, right


# -- the model-level verdict -------------------------------------------------------------------
_NUM = re.compile(r"^\d+$")


def layer_of(name: str) -> str:
    """The module path a tensor belongs to: up to the first numeric segment, else its parent."""
    parts = name.split(".")
    for i, p in enumerate(parts):
        if _NUM.match(p):
            return ".".join(parts[:i + 1])
    return ".".join(parts[:-1]) or name


def _verdict(changes: list[TensorChange]) -> tuple[str, str, dict[str, object]]:
    paired = [c for c in changes if c.status not in ("added", "removed")]
    added = [c for c in changes if c.status == "added"]
    removed = [c for c in changes if c.status == "removed"]
    moved = [c for c in paired if c.kind != "same"]
    renamed = [c for c in paired if c.a != c.b]
    details: dict[str, object] = {"paired": len(paired), "changed": len(moved), "added": len(added),
                                  "removed": len(removed), "renamed": len(renamed)}
    extra: list[str] = []
    rows = [c for c in paired if c.kind in ("rows-added", "rows-removed")]
    if rows:
        extra.append(", ".join(f"{c.name}: {c.rows:+d} rows" for c in rows[:5]))
    if removed:
        layers = sorted({layer_of(c.name) for c in removed})
        extra.append(f"removed {len(removed)} tensors ({', '.join(layers[:6])})")
    if added:
        layers = sorted({layer_of(c.name) for c in added})
        extra.append(f"added {len(added)} tensors ({', '.join(layers[:6])})")
    tail = ("; " + "; ".join(extra)) if extra else ""
    if not paired and (added or removed):
        return "unrelated", "no tensor in common" + tail, details
    if not moved and not added and not removed:
        if not renamed and all(c.dtype_a == c.dtype_b for c in paired):
            return "same", "identical tensors and names", details
        return "converted", f"same values in another layout ({len(renamed)} renamed)", details
    kinds = {c.kind for c in moved}
    values = [c for c in moved if c.kind not in ("rows-added", "rows-removed", "reshaped")]
    vkinds = {c.kind for c in values}
    if (not values and rows) or (not values and (added or removed)):
        grew = sum(c.rows for c in rows) > 0 or (added and not removed)
        return ("extended" if grew else "truncated"), "values kept" + tail, details
    if vkinds == {"cast"}:
        pairs = sorted({f"{c.dtype_a} -> {c.dtype_b}" for c in values})
        return "cast", f"cast ({', '.join(pairs)}) on {len(values)} tensors" + tail, details
    if "quantized" in vkinds and vkinds <= {"quantized", "cast"}:
        q = [c for c in values if c.kind == "quantized"]
        err = max((quantization_error(c.stats) for c in q if c.stats), default=0.0)
        types = sorted({c.dtype_b or "" for c in q} | {c.dtype_a or "" for c in q} - {"float32"})
        details["quantization_error"] = err
        return "quantized", (f"quantized ({', '.join(types)}) on {len(q)} tensors, max relative "
                             f"error {err:.2e}") + tail, details
    if vkinds == {"pruned"}:
        total = sum(c.parameters for c in values)
        zeroed = sum((c.stats.new_zeros if c.stats else 0) * c.parameters for c in values)
        details["pruned_fraction"] = zeroed / total if total else 0.0
        text = f"pruned: {zeroed / total:.1%} of the weights of {len(values)} tensors zeroed"
        return "pruned", text + tail, details
    cosines = [c.stats.cosine for c in values if c.stats]
    if cosines and float(np.median(cosines)) < 0.2 and len(values) >= max(1, len(paired) // 2):
        return "unrelated", f"{len(values)} of {len(paired)} tensors hold unrelated values" + tail, details
    layers = sorted({layer_of(c.name) for c in values})
    details["changed_layers"] = layers
    if vkinds == {"low-rank"}:
        ranks = sorted({c.stats.rank for c in values if c.stats and c.stats.rank is not None})
        details["ranks"] = ranks
        rank_text = f"rank-{ranks[0]}" if len(ranks) == 1 else "ranks " + "/".join(map(str, ranks))
        return "adapter", f"{rank_text} update on {len(values)} tensors ({', '.join(layers[:6])})" + tail, \
            details
    del kinds
    return "finetuned", (f"fine-tuned: {len(values)} of {len(paired)} tensors changed in "
                         f"{len(layers)} layers ({', '.join(layers[:6])})") + tail, details


def diff(a: ModelArtifact, b: ModelArtifact, progress: Progress | None = None) -> DiffResult:
    pairs, only_a, only_b = pair(list(a.tensors), list(b.tensors))
    changes = []
    for x, y, status in pairs:
        changes.append(compare_pair(x, y, status, progress))
        x.release()
        y.release()
    changes += [TensorChange(t.name, None, "removed", "removed", t.dtype.name, None, t.shape, None, t.numel)
                for t in only_a]
    changes += [TensorChange(None, t.name, "added", "added", None, t.dtype.name, None, t.shape, t.numel)
                for t in only_b]
    order = {t.name: i for i, t in enumerate(b.tensors)}
    order_a = {t.name: i for i, t in enumerate(a.tensors)}
    changes.sort(key=lambda c: (order.get(c.b or "", len(order) + order_a.get(c.a or "", 0))))
    relation, summary, details = _verdict(changes)
    return DiffResult(a.path, b.path, relation, summary, tuple(changes), details)
