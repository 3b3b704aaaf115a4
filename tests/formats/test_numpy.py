from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assay import open_model
from assay.errors import FormatError, UnsupportedError


@pytest.mark.parametrize("arr", [
    np.arange(24, dtype=np.float32).reshape(2, 3, 4),
    np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4)),
    np.arange(10, dtype=">i4"),
    np.asfortranarray(np.arange(6, dtype=">f8").reshape(2, 3)),
    np.array([True, False]),
    np.zeros((0, 5), np.int16),
    np.array(7, np.uint8),
    (np.arange(4) + 1j).astype(np.complex128),
])
def test_npy_bit_identical(tmp_path: Path, arr: np.ndarray) -> None:
    p = tmp_path / "a.npy"
    np.save(p, arr)
    ref = np.load(p)  # allow_pickle defaults to False: the official reader as oracle
    art = open_model(str(p))
    (t,) = art.tensors
    assert t.shape == ref.shape
    assert np.array_equal(t.read(), ref)
    assert t.canonical_bytes() == np.ascontiguousarray(ref.astype(ref.dtype.newbyteorder("<"))).tobytes()
    assert art.format == "numpy-npy"
    assert t.span is not None and not t.span.in_memory


@pytest.mark.parametrize("compressed", [False, True])
def test_npz(tmp_path: Path, compressed: bool) -> None:
    arrays = {"w": np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32),
              "b": np.arange(3, dtype=np.int64), "f": np.asfortranarray(np.eye(3))}
    p = tmp_path / "a.npz"
    (np.savez_compressed if compressed else np.savez)(p, **arrays)
    art = open_model(str(p))
    got = {t.name: t for t in art.tensors}
    with np.load(p) as ref:
        assert set(got) == set(ref.files)
        for k in ref.files:
            assert np.array_equal(got[k].read(), ref[k])
            assert got[k].dtype.name == str(ref[k].dtype)
    assert {t.span.in_memory for t in art.tensors} == {compressed}


def test_object_array_goes_through_the_pickle_machine(tmp_path: Path, marker: Path) -> None:
    p = tmp_path / "obj.npy"
    np.save(p, np.array([{"a": 1}, "x"], dtype=object), allow_pickle=True)
    art = open_model(str(p))
    assert art.tensors == []
    assert any(o.kind == "symbolic.object" for o in art.observations)


def test_hostile_object_array(tmp_path: Path, marker: Path) -> None:
    from tests.factories.pickles import reduce_os_system
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += " " * (64 - 10 - len(header) - 1) + "\n"
    p = tmp_path / "evil.npy"
    p.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()
                  + reduce_os_system(str(marker)))
    art = open_model(str(p))
    assert not marker.exists()
    assert "os.system" in {o.detail for o in art.observations if o.kind == "pickle.import"}


@pytest.mark.parametrize(("blob", "rule"), [
    (b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'", "header"),
    (b"\x93NUMPY\x01\x00\x46\x00" + b"{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }".ljust(70)
     + b"\0" * 8, "truncated"),
    (b"\x93NUMPY\x09\x00\x10\x00", "version"),
    (b"\x93NUMPY\x01\x00\x20\x00" + b"__import__('os').system('x')".ljust(32), "literal"),
    (b"\x93NUMPY\x01\x00\x40\x00" + b"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }".ljust(64),
     "non-negative"),
])
def test_bad_npy(tmp_path: Path, blob: bytes, rule: str) -> None:
    p = tmp_path / "bad.npy"
    p.write_bytes(blob)
    with pytest.raises(FormatError) as ei:
        open_model(str(p))
    assert rule in str(ei.value)


def test_structured_dtype_is_unsupported(tmp_path: Path) -> None:
    p = tmp_path / "s.npy"
    np.save(p, np.zeros(3, dtype=[("a", "<f4"), ("b", "<i4")]))
    with pytest.raises(UnsupportedError):
        open_model(str(p))
