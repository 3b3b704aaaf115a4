"""Per-model fingerprints: what `relate` needs to judge two models without rereading weights.

Per tensor (`TensorSketch`) a fingerprint keeps the `assay-tensor-v1` digest, dtype and shape,
full-tensor statistics and a value sketch. The tensor is viewed as a matrix `W` of `m` rows
(its first dimension) by `n` columns (the product of the others; 1-D tensors are `m x 1`).

- stats (over every element): `mean`, `std`, `rms`, `absmax`, `zeros` (fraction of exact
  zeros), `numel`, `distinct` (distinct values in the sample divided by its size), and
  `nonfinite` (1 when NaN or infinities were seen; they count as zeros).
- norms (matrices): the L2 norm of every sampled row and sampled column, and 33 quantiles of
  all row norms and of all column norms. A permutation of rows keeps every column norm and the
  row-norm quantiles (and the other way round), which is how a permuted layout (e.g. the q/k
  row order llama.cpp uses, or permuted feed-forward units) is recognised. Vectors: 33
  quantiles of their values.
- sample: `W[R][:, C]` stored as float32, where row `r` is in `R` when `u(row-seed, r) < p_r`
  and column `c` in `C` when `u(col-seed, c) < p_c`; `u` is a seeded splitmix64 hash mapped to
  [0, 1) and `p` a power of two chosen from the size (about 32 x 32 values for a matrix, up to
  about 1024 for a vector). Selection depends on the index alone, so a model with rows
  appended or removed shares the sample of its common rows; a smaller `p` picks a subset of a
  larger one. `R` and `C` are recomputed from the shape, never stored.
- two-sided sketch (matrices with both sides >= 2): `S = Phi W Omega` (K x K, `K = 32`) where
  `Phi` and `Omega` are CountSketches: row `r` goes to bucket `r mod K`, column `c` to bucket
  `h(c) mod K`, each with a seeded random sign (the top bit of a hash of its index), so S costs
  one pass over the values and each row's contribution depends on its own index only.
  `||S||_F` estimates `||W||_F`, and `S_B - S_A = Phi (W_B - W_A) Omega` has the rank of the
  update (up to about K/2 reliably), so low-rank (adapter) updates show, and merge
  coefficients can be fitted by least squares over sketches (both maps are linear).

Candidate keys (`lsh_keys`): the content identity, plus for the 48 largest non-trivial tensors
4 bands of 20 sign bits of random projections of the centred sample, keyed by shape.

Size: about 8 to 25 KB per matrix, 4 KB per vector of up to 1024 values (MiniLM, 104 tensors:
about 600 KB). Cost: one pass for the digest and one over float32 slabs of about 4M values
(about 10 ns per value on one core; 22M parameters in about a quarter of a second).

Sketch bytes: b"AS1" + u8 flags + u32 rows + u32 cols (sample) + u16 K (0 without `S`),
then rows*cols float32 sample values, K*K float32 `S`; with flag 1 the rows row norms, cols
column norms, 33 row-norm and 33 column-norm quantiles; with flag 2 33 value quantiles; all
float32 little-endian.

Values come from `TensorRecord.read()` (a memory map) in row slabs converted to float32, so a
model is never held whole. Quantized block types (GGUF) are decoded through the decoder their
reader registered (`TensorRecord.values`), one tensor at a time; a block type without a decoder
keeps only its digest. Serialised form (`to_bytes`): b"ASFP" + u8 format version + zlib of a
JSON document (sorted keys) followed by the concatenated sketch bytes; deterministic.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from assay.analyses.identity import model_identity, tensor_digest
from assay.analyses.lineage.types import FP_VERSION, Fingerprint, TensorSketch
from assay.errors import AssayError
from assay.model.artifact import ModelArtifact
from assay.model.tensor import TensorRecord

K = 32                       # two-sided sketch size
SAMPLE_VEC = 1024            # sample target for vectors / thin matrices
SAMPLE_SIDE = 32             # sample target per side for matrices
SLAB = 1 << 22               # elements per slab
SEED_ROW, SEED_COL, SEED_PHI, SEED_OMEGA, SEED_LSH = 0x5EED01, 0x5EED02, 0x5EED03, 0x5EED04, 0x5EED05
LSH_BANDS, LSH_BITS, LSH_TENSORS = 4, 20, 48
VECTOR_Q_MAX = 1 << 22        # vectors up to this length get value quantiles
QUANTILES = 33               # quantiles kept of row norms, column norms, vector values
_M64 = (1 << 64) - 1
_MAGIC, _SK_MAGIC = b"ASFP", b"AS1"
_BYTES_VERSION = 1
MAX_FINGERPRINT = 1 << 28      # decompressed bytes accepted by from_bytes


# -- seeded hashing --------------------------------------------------------------------------
def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser over uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _hash(seed: int, idx: np.ndarray) -> np.ndarray:
    s = np.uint64(int(_mix(np.array([seed], dtype=np.uint64))[0]))
    return _mix(idx.astype(np.uint64) ^ s)


def _uniform(seed: int, idx: np.ndarray) -> np.ndarray:
    return (_hash(seed, idx) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _count_sketch(seed: int, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CountSketch of indices: bucket in [0, K) and sign (+1 or -1) of each."""
    h = _hash(seed, idx)
    bucket = (h % np.uint64(K)).astype(np.int64)
    sign = 1.0 - 2.0 * (h >> np.uint64(63)).astype(np.float32)
    return bucket, sign


def _omega(n: int) -> np.ndarray:
    """The column CountSketch as a dense n x K matrix (one signed 1 per row)."""
    bucket, sign = _count_sketch(SEED_OMEGA, np.arange(n))
    out = np.zeros((n, K), dtype=np.float64)
    out[np.arange(n), bucket] = sign
    return out


def _row_sketch(slab: np.ndarray, first: int) -> np.ndarray:
    """Phi @ slab (K x n, float64) for rows `first ...`: row r goes to bucket r mod K with a
    seeded random sign, so blocks of K rows are summed at once."""
    c, n = slab.shape
    _, sign = _count_sketch(SEED_PHI, np.arange(first, first + c))
    x = slab * sign[:, None]
    q = c // K * K
    z = x[:q].reshape(-1, K, n).sum(axis=0, dtype=np.float64) if q else np.zeros((K, n))
    if q < c:
        z[: c - q] += x[q:]
    return np.roll(z, first % K, axis=0) if first % K else z


def _pow2_prob(size: int, target: int) -> float:
    if size <= target:
        return 1.0
    return 2.0 ** -math.floor(math.log2(size / target))


def matrix_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    if not shape:
        return 1, 1
    m = shape[0]
    n = math.prod(shape[1:]) if len(shape) > 1 else 1
    return m, n


def sample_probs(m: int, n: int) -> tuple[float, float]:
    """Row and column selection probabilities; each depends on one side where possible, so
    that rows appended or removed keep the column selection."""
    if n == 1:
        return _pow2_prob(m, SAMPLE_VEC), 1.0
    if n < SAMPLE_SIDE:
        return _pow2_prob(m, max(1, SAMPLE_VEC // n)), 1.0
    if m < SAMPLE_SIDE:
        return 1.0, _pow2_prob(n, SAMPLE_VEC // 4)
    return _pow2_prob(m, SAMPLE_SIDE), _pow2_prob(n, SAMPLE_SIDE)


@lru_cache(maxsize=1024)
def sample_index(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The sampled row and column indices of a tensor of this shape (read-only arrays)."""
    m, n = matrix_shape(shape)
    pr, pc = sample_probs(m, n)
    rows = np.arange(m, dtype=np.int64)
    cols = np.arange(n, dtype=np.int64)
    if pr < 1:
        rows = rows[_uniform(SEED_ROW, rows) < pr]
    if pc < 1:
        cols = cols[_uniform(SEED_COL, cols) < pc]
    rows.setflags(write=False)
    cols.setflags(write=False)
    return rows, cols


# -- the sketch blob -------------------------------------------------------------------------
@dataclass(frozen=True)
class SketchParts:
    """The decoded sketch bytes of one tensor (None where absent)."""

    sample: np.ndarray | None = None          # rows x cols sampled values
    s: np.ndarray | None = None               # K x K two-sided sketch
    row_norms: np.ndarray | None = None       # L2 norm of each sampled row (over all columns)
    col_norms: np.ndarray | None = None       # L2 norm of each sampled column (over all rows)
    row_q: np.ndarray | None = None           # QUANTILES of all row norms
    col_q: np.ndarray | None = None           # QUANTILES of all column norms
    value_q: np.ndarray | None = None         # QUANTILES of all values (vectors)


def pack_sketch(sample: np.ndarray, s: np.ndarray | None, norms: tuple[np.ndarray, ...] = (),
                value_q: np.ndarray | None = None) -> bytes:
    """`norms`: (row_norms, col_norms, row_q, col_q) of a matrix, or empty."""
    r, c = sample.shape
    k = 0 if s is None else s.shape[0]
    flags = (1 if norms else 0) | (2 if value_q is not None else 0)
    parts = [_SK_MAGIC + struct.pack("<BIIH", flags, r, c, k), _f4(sample)]
    if s is not None:
        parts.append(_f4(s))
    if norms:
        rn, cn, rq, cq = norms
        assert rn.size == r and cn.size == c and rq.size == cq.size == QUANTILES
        parts += [_f4(rn), _f4(cn), _f4(rq), _f4(cq)]
    if value_q is not None:
        assert value_q.size == QUANTILES
        parts.append(_f4(value_q))
    return b"".join(parts)


def _f4(x: np.ndarray) -> bytes:
    return np.ascontiguousarray(x, dtype="<f4").tobytes()


def unpack_parts(blob: bytes) -> SketchParts:
    if len(blob) < 14 or blob[:3] != _SK_MAGIC:
        return SketchParts()
    flags, r, c, k = struct.unpack_from("<BIIH", blob, 3)
    sizes = [r * c, k * k]
    if flags & 1:
        sizes += [r, c, QUANTILES, QUANTILES]
    if flags & 2:
        sizes.append(QUANTILES)
    if len(blob) != 14 + 4 * sum(sizes):
        raise ValueError("sketch blob has the wrong length")
    arrays = []
    off = 14
    for n in sizes:
        arrays.append(np.frombuffer(blob, dtype="<f4", count=n, offset=off))
        off += 4 * n
    out = {"sample": arrays[0].reshape(r, c), "s": arrays[1].reshape(k, k) if k else None}
    if flags & 1:
        out.update(row_norms=arrays[2], col_norms=arrays[3], row_q=arrays[4], col_q=arrays[5])
    if flags & 2:
        out["value_q"] = arrays[-1]
    return SketchParts(**out)


def unpack_sketch(blob: bytes) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(sample matrix, two-sided sketch) of a TensorSketch's bytes (None when absent)."""
    parts = unpack_parts(blob)
    return parts.sample, parts.s


# -- per tensor ------------------------------------------------------------------------------
def _slabs(t: TensorRecord, m: int, n: int) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, float32 slab of rows) over the tensor viewed as m x n."""
    if t.dtype.is_block or t.dtype.kind == "complex":
        arr = t.values(np.float32).reshape(m, n)
    else:
        arr = t.read().reshape(m, n) if t.shape else t.read().reshape(1, 1)
    step = max(1, SLAB // max(1, n))
    if step > K:
        step -= step % K
    for i in range(0, m, step):
        yield i, np.asarray(arr[i:i + step], dtype=np.float32)


def sketch_tensor(t: TensorRecord) -> tuple[dict[str, float], bytes]:
    """Statistics and sketch bytes of one tensor (only its size when its values cannot be
    decoded, e.g. a block type the installed decoder does not know: it is judged by digest)."""
    if t.numel == 0 or not t.can_decode():
        return {"numel": float(t.numel)}, b""
    try:
        return _sketch_values(t)
    except (AssayError, LookupError, NotImplementedError):
        return {"numel": float(t.numel), "undecodable": 1.0}, b""


def _sketch_values(t: TensorRecord) -> tuple[dict[str, float], bytes]:
    m, n = matrix_shape(t.shape)
    rows, cols = sample_index(t.shape)
    with_s = m >= 2 and n >= 2
    omega = _omega(n) if with_s else None
    s = np.zeros((K, K), dtype=np.float64) if with_s else None
    total = 0.0
    absmax = 0.0
    zeros = 0
    finite = True
    parts: list[np.ndarray] = []
    row_sq: list[np.ndarray] = []
    vector: list[np.ndarray] = []
    col_sq = np.zeros(n, dtype=np.float64)
    for i, slab in _slabs(t, m, n):
        c = slab.shape[0]
        part_sum = float(slab.sum(dtype=np.float64))
        if not math.isfinite(part_sum):
            finite = False
            slab = np.nan_to_num(slab, nan=0.0, posinf=0.0, neginf=0.0)
            part_sum = float(slab.sum(dtype=np.float64))
        total += part_sum
        row_sq.append(np.einsum("ij,ij->i", slab, slab).astype(np.float64))   # float32 sums:
        if with_s:                                                            # 4x faster
            col_sq += np.einsum("ij,ij->j", slab, slab)
        if slab.size:
            absmax = max(absmax, float(slab.max()), -float(slab.min()))
        zeros += int(slab.size - np.count_nonzero(slab))
        lo, hi = np.searchsorted(rows, [i, i + c])
        if hi > lo:
            parts.append(slab[rows[lo:hi] - i][:, cols])
        if n == 1 and m <= VECTOR_Q_MAX:
            vector.append(slab.reshape(-1).astype(np.float64))
        if with_s:
            assert omega is not None and s is not None
            s += _row_sketch(slab, i) @ omega
    numel = m * n
    rsq = np.concatenate(row_sq)
    sq = float(rsq.sum())
    mean = total / numel
    var = max(0.0, sq / numel - mean * mean)
    sample = np.concatenate(parts) if parts else np.zeros((0, len(cols)), dtype=np.float32)
    stats = {"numel": float(numel), "mean": mean, "std": math.sqrt(var), "absmax": absmax,
             "rms": math.sqrt(sq / numel), "zeros": zeros / numel,
             "distinct": (len(np.unique(sample)) / sample.size) if sample.size else 0.0}
    if not finite:
        stats["nonfinite"] = 1.0
    qs = np.linspace(0.0, 1.0, QUANTILES)
    norms: tuple[np.ndarray, ...] = ()
    value_q = None
    if with_s:
        rn, cn = np.sqrt(rsq), np.sqrt(col_sq)
        norms = (rn[rows], cn[cols], np.quantile(rn, qs), np.quantile(cn, qs))
    elif vector and m >= QUANTILES:
        value_q = np.quantile(np.concatenate(vector), qs)
    sk = None if s is None else s.astype(np.float32)
    return stats, pack_sketch(sample.astype(np.float32), sk, norms, value_q)


def declared_of(model: ModelArtifact) -> dict[str, Any]:
    """Declared lineage metadata (model card, config, GGUF general.*): shown, never trusted."""
    md = model.metadata
    out: dict[str, Any] = {}
    card = md.get("card") or {}
    for k in ("base_model", "base_model_relation", "license"):
        if k in card:
            out[k] = card[k]
    cfg = md.get("config") or {}
    for k, name in (("_name_or_path", "name_or_path"), ("model_type", "model_type"),
                    ("architectures", "architectures")):
        if k in cfg:
            out[name] = cfg[k]
    gg = md.get("gguf") or {}
    for k, v in gg.items():
        if isinstance(k, str) and (k.startswith("general.base_model") or k in ("general.name",
                                                                              "general.architecture")):
            out[k] = v
    st = md.get("safetensors") or {}
    if isinstance(st, dict):
        for k in ("base_model", "base_model_relation"):
            if k in st:
                out.setdefault(k, st[k])
    return _jsonable(out)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def fingerprint(model: ModelArtifact, label: str) -> Fingerprint:
    """Digest and sketch every tensor of `model`, one at a time (memory stays about one slab)."""
    sketches = []
    digests = []
    for t in model.tensors:
        d = tensor_digest(t)
        digests.append(d)
        stats, blob = sketch_tensor(t)
        t.release()
        sketches.append(TensorSketch(t.name, t.dtype.name, tuple(t.shape), d.digest.hex(), stats, blob))
    content, named = model_identity(digests)
    return Fingerprint(FP_VERSION, label, content, named, model.format, model.parameter_count,
                       declared_of(model), tuple(sketches))


# -- serialisation ---------------------------------------------------------------------------
def to_bytes(fp: Fingerprint) -> bytes:
    blobs = [t.sketch for t in fp.tensors]
    doc = {"version": fp.version, "label": fp.label, "content_id": fp.content_id,
           "named_id": fp.named_id, "format": fp.format, "parameters": fp.parameters,
           "declared": _jsonable(fp.declared),
           "tensors": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape), "digest": t.digest,
                        "stats": {k: t.stats[k] for k in sorted(t.stats)}, "sketch": len(b)}
                       for t, b in zip(fp.tensors, blobs)]}
    head = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=True).encode()
    payload = struct.pack("<I", len(head)) + head + b"".join(blobs)
    return _MAGIC + bytes([_BYTES_VERSION]) + zlib.compress(payload, 1)


def from_bytes(b: bytes) -> Fingerprint:
    """The fingerprint `to_bytes` wrote; ValueError for anything else (never executes input)."""
    if len(b) < 5 or b[:4] != _MAGIC:
        raise ValueError("not an assay fingerprint")
    if b[4] != _BYTES_VERSION:
        raise ValueError(f"unsupported fingerprint layout {b[4]}")
    try:
        inflater = zlib.decompressobj()
        payload = inflater.decompress(b[5:], MAX_FINGERPRINT)
        if inflater.unconsumed_tail or not inflater.eof:
            raise ValueError(f"fingerprint larger than {MAX_FINGERPRINT} bytes or truncated")
        return _parse(payload)
    except (zlib.error, struct.error, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ValueError(f"corrupt fingerprint ({type(exc).__name__}: {exc})") from None


def _parse(payload: bytes) -> Fingerprint:
    (hlen,) = struct.unpack_from("<I", payload, 0)
    doc = json.loads(payload[4:4 + hlen])
    pos = 4 + hlen
    tensors = []
    for t in doc["tensors"]:
        size = int(t["sketch"])
        if size < 0:
            raise ValueError("negative sketch size")
        blob = bytes(payload[pos:pos + size])
        if len(blob) != size:
            raise ValueError("fingerprint sketches are truncated")
        pos += size
        unpack_parts(blob)                   # validates the layout (ValueError)
        tensors.append(TensorSketch(t["name"], t["dtype"], tuple(int(x) for x in t["shape"]),
                                    t["digest"], {k: float(v) for k, v in t["stats"].items()}, blob))
    if pos != len(payload):
        raise ValueError("fingerprint has trailing bytes")
    return Fingerprint(doc["version"], doc["label"], doc["content_id"], doc["named_id"], doc["format"],
                       int(doc["parameters"]), doc["declared"], tuple(tensors))


# -- candidate keys --------------------------------------------------------------------------
def is_trivial(t: TensorSketch) -> bool:
    """Tensors that unrelated models share by construction (integer buffers such as position
    ids, constants such as a freshly initialised norm, tiny vectors) or that cannot be judged."""
    if not t.sketch or t.dtype == "bool":
        return True
    if t.dtype.startswith(("int", "uint")) and (t.dtype not in ("int8", "uint8")
                                                 or t.stats.get("numel", 0.0) < 1024):
        return True                     # index buffers; int8/uint8 matrices are quantized weights
    return t.stats.get("std", 0.0) == 0.0 or t.stats.get("numel", 0.0) < 16


def _lsh_signs(size: int) -> np.ndarray:
    """(LSH_BANDS * LSH_BITS) x size random signs: plane p takes bit p % 64 of the
    (p // 64)-th seeded hash of each sample position."""
    planes = LSH_BANDS * LSH_BITS
    idx = np.arange(size, dtype=np.uint64)
    words = [_hash(SEED_LSH + w, idx) for w in range((planes + 63) // 64)]
    bits = np.concatenate([(wd[None, :] >> np.arange(64, dtype=np.uint64)[:, None]) & np.uint64(1)
                           for wd in words])[:planes]
    return 1.0 - 2.0 * bits.astype(np.float64)


def lsh_keys(fp: Fingerprint) -> list[str]:
    """Keys for candidate search: the content identity, plus per tensor (the largest non-trivial
    ones, by shape) `LSH_BANDS` sign-of-random-projection bands of `LSH_BITS` bits over its
    centred sample. Related tensors (cos of samples near 1, e.g. cast, quantized, pruned,
    fine-tuned) agree on a band with high probability; unrelated ones with 2^-LSH_BITS."""
    keys = {"c:" + fp.content_id}
    cands = [t for t in fp.tensors if not is_trivial(t)]
    cands.sort(key=lambda t: (-t.stats.get("numel", 0.0), t.shape, t.digest))
    for t in cands[:LSH_TENSORS]:
        sample, _ = unpack_sketch(t.sketch)
        if sample is None or sample.size < 16:
            continue
        v = sample.reshape(-1).astype(np.float64)
        v = v - v.mean()
        if not np.any(v):
            continue
        shape = "x".join(map(str, t.shape))
        bits = (_lsh_signs(v.size) @ v >= 0).reshape(LSH_BANDS, LSH_BITS)
        for band in range(LSH_BANDS):
            word = int("".join("1" if b else "0" for b in bits[band]), 2)
            keys.add(f"s{band}:{shape}:{word:05x}")
    return sorted(keys)
