from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from assay import open_model
from assay.errors import FormatError, LimitError

torch = pytest.importorskip("torch")


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype.itemsize == b.dtype.itemsize and a.shape == b.shape and \
        np.ascontiguousarray(a).view(np.uint8).tobytes() == np.ascontiguousarray(b).view(np.uint8).tobytes()


def test_numpy_written_file_is_bit_identical(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tensors = {
        "f32": rng.standard_normal((7, 5)).astype(np.float32),
        "f16": rng.standard_normal(9).astype(np.float16),
        "f64": rng.standard_normal((2, 2, 2)),
        "i8": rng.integers(-128, 127, 11, dtype=np.int8),
        "u16": rng.integers(0, 60000, 4, dtype=np.uint16),
        "i64": rng.integers(-(2**40), 2**40, 3),
        "b": np.array([True, False, True]),
        "empty": np.zeros((0, 3), np.float32),
        "scalar": np.array(3.5, np.float32),
    }
    p = tmp_path / "m.safetensors"
    save_file(tensors, str(p), metadata={"format": "np", "note": "x"})
    art = open_model(str(p))
    assert art.format == "safetensors"
    assert art.metadata["safetensors"] == {"format": "np", "note": "x"}
    got = {t.name: t for t in art.tensors}
    assert set(got) == set(tensors)
    with safe_open(str(p), "numpy") as f:
        for name in f.keys():
            ref = f.get_tensor(name)
            assert got[name].shape == ref.shape
            assert _same(got[name].read(), ref), name
    assert got["f32"].dtype.name == "float32" and got["b"].dtype.name == "bool"
    assert art.parameter_count == sum(a.size for a in tensors.values())


def test_torch_dtypes_bf16_fp8(tmp_path: Path) -> None:
    from safetensors.torch import save_file as save_torch
    t = {
        "bf16": torch.randn(4, 6).to(torch.bfloat16),
        "e4m3": torch.randn(8).to(torch.float8_e4m3fn),
        "e5m2": torch.randn(8).to(torch.float8_e5m2),
    }
    p = tmp_path / "t.safetensors"
    save_torch(t, str(p))
    art = open_model(str(p))
    with safe_open(str(p), "pt") as f:
        for rec in art.tensors:
            ref = f.get_tensor(rec.name)
            raw = ref.contiguous().view(torch.uint8).numpy().tobytes()
            assert rec.canonical_bytes() == raw
    names = {r.name: r.dtype.name for r in art.tensors}
    assert names == {"bf16": "bfloat16", "e4m3": "float8_e4m3fn", "e5m2": "float8_e5m2"}


def _raw(header: object, data: bytes = b"", *, pad: bytes = b"") -> bytes:
    h = json.dumps(header).encode() + pad
    return struct.pack("<Q", len(h)) + h + data


@pytest.mark.parametrize(("blob", "rule"), [
    (_raw({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4), "truncated"),
    (_raw({"a": {"dtype": "F33", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8), "unknown dtype"),
    (_raw({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8), "needs 12"),
    (_raw({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8), "non-negative"),
    (_raw({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
           "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, b"\0" * 12), "contiguous"),
    (_raw({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
           "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8), "overlaps"),
    (_raw({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}, b"\0" * 4), "reversed"),
    (_raw({"__metadata__": {"k": 1}}), "strings to strings"),
    (b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": {\"dtype\"", "runs past the end"),
    (struct.pack("<Q", 13) + b'{"a":1,"a":2}', "duplicate key"),
    (struct.pack("<Q", 5) + b"{ \xff\xfe}", "UTF-8"),
])
def test_broken_rules_are_named(tmp_path: Path, blob: bytes, rule: str) -> None:
    p = tmp_path / "bad.safetensors"
    p.write_bytes(blob)
    with pytest.raises(FormatError) as ei:
        open_model(str(p))
    assert rule in str(ei.value)
    assert str(p) in str(ei.value)


def test_huge_header_length_is_a_limit_error(tmp_path: Path) -> None:
    p = tmp_path / "huge.safetensors"
    p.write_bytes(struct.pack("<Q", 2**62) + b"{" + b" " * 100)
    with pytest.raises(FormatError):
        open_model(str(p))


def test_header_limit(tmp_path: Path) -> None:
    from assay import Limits
    header = {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    p = tmp_path / "m.safetensors"
    p.write_bytes(_raw(header, b"\0" * 4, pad=b" " * 2000))
    with pytest.raises(LimitError):
        open_model(str(p), Limits(max_header_bytes=1000))


def test_trailing_bytes_are_observed(tmp_path: Path) -> None:
    p = tmp_path / "m.safetensors"
    p.write_bytes(_raw({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}, b"ab" + b"EXTRA"))
    art = open_model(str(p))
    assert [o.kind for o in art.observations] == ["trailing.bytes"]
    assert art.tensors[0].read().tobytes() == b"ab"


def test_recognised_by_content_not_name(tmp_path: Path) -> None:
    p = tmp_path / "weights.bin"
    save_file({"x": np.ones(3, np.float32)}, str(p))
    assert open_model(str(p)).format == "safetensors"


def test_file_is_not_modified(tmp_path: Path) -> None:
    p = tmp_path / "m.safetensors"
    save_file({"x": np.arange(4, dtype=np.float32)}, str(p))
    before = p.read_bytes()
    st = p.stat()
    open_model(str(p)).tensors[0].read()
    assert p.read_bytes() == before and p.stat().st_mtime_ns == st.st_mtime_ns
