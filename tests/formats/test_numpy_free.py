"""Reading NumPy, joblib and pickled-array files never imports NumPy; the records stay as they were.

Files are written with the official libraries. Each is read in a fresh interpreter (nothing
preloaded) that reports its tensor records and whether `numpy` got imported; the records are
compared with what NumPy itself says about the arrays that were written.
"""

from __future__ import annotations

import json
import pickle
import struct
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assay.formats import read_file
from assay.formats.pickle.objects import numpy_scalar
from assay.formats.pickle.symbols import Call, Global
from assay.model.dtypes import (
    ArrayType,
    Field,
    array_type,
    array_type_of,
    from_array_type,
    from_numpy,
    parse_typestr,
)
from assay.model.tensor import f_strides

READ = r"""
import json, sys
from assay.api import scan_file
from assay.formats import read_file
out = {}
for path in sys.argv[1:]:
    scan = scan_file(path)
    art = read_file(path)
    out[path] = {"status": scan.status, "error": scan.error,
                 "objects": [o.detail for o in art.observations if o.kind == "symbolic.object"],
                 "tensors": [[t.name, t.dtype.name, list(t.shape), t.strides and list(t.strides),
                              t.element_offset, t.byteorder, t.span.offset, t.span.length,
                              t.span.in_memory] for t in art.tensors]}
out["numpy imported"] = "numpy" in sys.modules
print(json.dumps(out))
"""

ARRAYS: dict[str, np.ndarray] = {
    "f4": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
    "f2": np.linspace(-1, 1, 7).astype(np.float16),
    "i8": np.arange(-5, 5, dtype=np.int64),
    "b1": np.array([True, False, True]),
    "be": np.arange(6, dtype=">f8").reshape(2, 3),
    "be_i2": np.arange(5, dtype=">i2"),
    "fortran": np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4)),
    "c8": (np.arange(3) + 2j).astype(np.complex64),
    "u1_0d": np.array(7, np.uint8),
    "empty": np.zeros((0, 5), np.int16),
}


def read_fresh(*paths: Path) -> dict[str, Any]:
    """Scan and read `paths` in a new interpreter; its report, keyed by path."""
    proc = subprocess.run([sys.executable, "-c", READ, *map(str, paths)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out.pop("numpy imported") is False
    return out


def order(dt: np.dtype) -> str:
    return ">" if dt.byteorder == ">" else "<"


def fortran(arr: np.ndarray) -> bool:
    return arr.ndim > 1 and arr.flags.f_contiguous and not arr.flags.c_contiguous


def expected(name: str, arr: np.ndarray, offset: int, in_memory: bool) -> list[Any]:
    """The record the readers made before NumPy-free reading, derived from NumPy's view."""
    cdt = from_numpy(arr.dtype)
    assert cdt is not None
    strides = list(f_strides(arr.shape)) if fortran(arr) else None
    return [name, cdt.name, list(arr.shape), strides, 0, order(arr.dtype), offset, arr.nbytes, in_memory]


def npy_data_offset(f: Any) -> int:
    """Where NumPy's own header reader says the array data of an open .npy stream starts."""
    start = f.tell()
    major, _minor = np.lib.format.read_magic(f)
    if major == 1:
        np.lib.format.read_array_header_1_0(f)
    else:
        np.lib.format.read_array_header_2_0(f)
    return f.tell() - start


# -- the files, read in a fresh interpreter --------------------------------------------------------
def test_npy_files(tmp_path: Path) -> None:
    paths = {}
    for key, arr in ARRAYS.items():
        paths[key] = tmp_path / f"{key}.npy"
        np.save(paths[key], arr)
    obj = tmp_path / "object.npy"
    np.save(obj, np.array([1, "two", None], dtype=object), allow_pickle=True)
    report = read_fresh(*paths.values(), obj)
    for key, arr in ARRAYS.items():
        with open(paths[key], "rb") as f:
            off = npy_data_offset(f)
        got = report[str(paths[key])]
        assert got["tensors"] == [expected("array", arr, off, False)], key
        assert got["status"] == "clean" and got["error"] is None
    assert report[str(obj)]["tensors"] == []
    assert report[str(obj)]["objects"] == ["array 'array' holds Python objects (a pickle)"]


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_files(tmp_path: Path, compressed: bool) -> None:
    p = tmp_path / "a.npz"
    (np.savez_compressed if compressed else np.savez)(p, **ARRAYS)
    offsets = {}
    with zipfile.ZipFile(p) as z, open(p, "rb") as raw:
        for info in z.infolist():
            with z.open(info) as member:
                off = npy_data_offset(member)
            if not compressed:
                raw.seek(info.header_offset + 26)
                name_len, extra_len = struct.unpack("<HH", raw.read(4))
                off += info.header_offset + 30 + name_len + extra_len
            offsets[info.filename[:-4]] = off
    got = read_fresh(p)[str(p)]
    want = [expected(k, arr, offsets[k], compressed) for k, arr in ARRAYS.items()]
    assert sorted(got["tensors"]) == sorted(want)


def _fitted() -> dict[str, Any]:
    sklearn = pytest.importorskip("sklearn")
    del sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.RandomState(0)
    x = rng.rand(40, 3)
    y = (x[:, 0] > 0.5).astype(np.int64) + (x[:, 1] > 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"logistic": LogisticRegression(max_iter=200).fit(x, y),
                "tree": DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y)}


def estimator_arrays(est: Any) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """The arrays of a fitted estimator as assay names them, each with the structured array it
    is a field of (None for plain arrays)."""
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    state = dict(vars(est))
    if hasattr(est, "tree_"):
        tree = est.tree_.__getstate__()
        state.update({f"tree_.{k}": v for k, v in tree.items()})
    for k, v in state.items():
        if not isinstance(v, np.ndarray) or v.dtype.hasobject:
            continue
        if v.dtype.names:
            out.update({f"{k}.{f}": (v[f], v) for f in v.dtype.names})
        else:
            out[k] = (v, None)
    return out


def check_estimator(est: Any, tensors: list[list[Any]], data: bytes | None) -> None:
    arrays = estimator_arrays(est)
    assert sorted(t[0] for t in tensors) == sorted(arrays)
    for name, dt, shape, strides, elem, byteorder, off, length, _mem in tensors:
        arr, base = arrays[name]
        assert (dt, tuple(shape), byteorder) == (from_numpy(arr.dtype).name, arr.shape, order(arr.dtype))
        if base is not None:                # a field of the tree's nodes, strided over the records
            fdt, foff = base.dtype.fields[name.rsplit(".", 1)[1]][:2]
            assert strides == [base.dtype.itemsize // fdt.itemsize] and elem == foff // fdt.itemsize
            assert length == base.nbytes
            expect = base.tobytes()
        else:
            assert strides == (list(f_strides(arr.shape)) if fortran(arr) else None)
            assert elem == 0 and length == arr.nbytes
            expect = arr.tobytes(order="A")
        if data is not None:                # an uncompressed file: the span holds the array's bytes
            assert data[off:off + length] == expect, name


@pytest.mark.parametrize("compress", [0, 3])
def test_joblib_estimators(tmp_path: Path, compress: int) -> None:
    joblib = pytest.importorskip("joblib")
    models = _fitted()
    paths = {k: tmp_path / f"{k}.joblib" for k in models}
    for k, est in models.items():
        joblib.dump(est, paths[k], compress=compress)
    report = read_fresh(*paths.values())
    for k, est in models.items():
        got = report[str(paths[k])]
        assert got["status"] == "clean", got
        assert all(t[-1] == bool(compress) for t in got["tensors"])
        check_estimator(est, got["tensors"], None if compress else paths[k].read_bytes())
        art = read_file(str(paths[k]))      # and the values, read in this process
        arrays = estimator_arrays(est)
        for t in art.tensors:
            assert np.array_equal(t.read(), arrays[t.name][0]), t.name


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickled_arrays(tmp_path: Path, protocol: int) -> None:
    p = tmp_path / "arrays.pkl"
    p.write_bytes(pickle.dumps({**ARRAYS, "objects": np.array([1, "x"], dtype=object)}, protocol=protocol))
    tree = tmp_path / "tree.pkl"
    est = _fitted()["tree"]
    tree.write_bytes(pickle.dumps(est, protocol=protocol))
    report = read_fresh(p, tree)
    got = report[str(p)]
    assert [t[:6] for t in got["tensors"]] == [expected(k, a, 0, True)[:6] for k, a in ARRAYS.items()]
    assert got["objects"] == ["array 'objects' holds Python objects, not a tensor"]
    check_estimator(est, report[str(tree)]["tensors"], None)
    art = read_file(str(p))
    for t in art.tensors:
        assert np.array_equal(t.read(), ARRAYS[t.name]), t.name


# -- the type strings themselves, against NumPy ----------------------------------------------------
COMMON = ["<f4", ">f4", "f4", "=f4", "|f4", "<f2", ">f2", "f8", ">f8", "<i1", "|i1", ">u1", "u1", "<i2",
          ">u2", "i4", "<u4", ">i8", "u8", "|b1", "b1", ">b1", "<c8", ">c16", "c16", "O", "|O", "<O", "O8",
          "|S5", "S1", ">S3", "<U10", ">U10", "U1", "|U3", "|V4", "V16", "<M8[ns]", ">M8[ns]", "M8",
          "<m8[s]", "m8[D]", "M8[Y]", "M8[us]", ">m8"]
OTHERS = ["<f16", "c32", "float32", "d", "i", "<f", "?", "b", "S", "U", "M8[2s]", "S05", "U0", "V0", "O4",
          "a5", "int64", "<M8[μs]", "<V"]     # left to NumPy
BAD = ["b2", "f3", "i16", "<f12", "M16", "x4", "ff4", "[('a','<f4')]", "", "<Q4"]


def describe(t: ArrayType | np.dtype) -> tuple[Any, ...]:
    if isinstance(t, np.dtype):
        t = array_type_of(t)        # NumPy's own view, with str() as NumPy says it
        return (t.kind, t.itemsize, t.byteorder, t.unit, t.typestr, t.hasobject, t.text)
    return (t.kind, t.itemsize, t.byteorder, t.unit, t.typestr, t.hasobject, str(t))


@pytest.mark.parametrize("s", COMMON + OTHERS)
def test_typestr_matches_numpy(s: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            ref = np.dtype(s)
        except TypeError:
            pytest.skip(f"this NumPy has no {s!r} (long double sizes vary by platform)")
        t = array_type(s)
    assert describe(t) == describe(ref)
    assert from_array_type(t) == from_numpy(ref)
    assert t.numpy == ref or ref.subdtype is not None
    if ref.byteorder in "<>" and ref.itemsize > 1 and ref.kind != "V":
        swapped = t.newbyteorder("<" if ref.byteorder == ">" else ">")
        assert describe(swapped) == describe(ref.newbyteorder())


def test_common_typestrs_need_no_numpy() -> None:
    assert all(parse_typestr(s) is not None for s in COMMON)
    assert all(parse_typestr(s) is None for s in OTHERS)


@pytest.mark.parametrize("s", BAD)
def test_bad_typestrs_fail_like_numpy(s: str) -> None:
    assert parse_typestr(s) is None
    with pytest.raises(TypeError):
        np.dtype(s)
    with pytest.raises(TypeError):
        array_type(s)


@pytest.mark.parametrize("spec", [
    {"names": ["a", "b"], "formats": ["<f4", ">i8"], "offsets": [0, 4], "itemsize": 12},
    {"names": ["a", "b"], "formats": ["<f4", "<i8"], "offsets": [0, 8], "itemsize": 16},
    {"names": ["x", "y", "z"], "formats": ["u1", "?", "O"], "offsets": [0, 1, 8], "itemsize": 16},
    {"names": ["s", "u", "t"], "formats": ["S3", ">U2", "<M8[ns]"], "offsets": [0, 3, 16], "itemsize": 24},
])
def test_structured_str_matches_numpy(spec: dict[str, Any]) -> None:
    ref = np.dtype(spec)
    t = ArrayType("V", ref.itemsize, fields=tuple(
        Field(n, array_type(f), o) for n, f, o in zip(spec["names"], spec["formats"], spec["offsets"])),
        hasobject=ref.hasobject)
    assert str(t) == str(ref)
    assert t.numpy == ref
    assert t.hasobject == ref.hasobject and from_array_type(t) is None


@pytest.mark.parametrize("value", [np.float32(1.5), np.float16(-0.25), np.float64(np.pi), np.int8(-3),
                                   np.uint16(65000), np.int64(-2**40), np.uint64(2**63 + 5), np.bool_(True),
                                   np.complex64(1 - 2j), np.complex128(3 + 0.5j), np.array([7], ">i4")[0],
                                   np.array([2.5], ">f8")[0], np.array([1 + 1j], ">c8")[0],
                                   np.longdouble(1.25)])
def test_numpy_scalar_decodes_like_numpy(value: np.generic) -> None:
    dt = value.dtype
    code = f"{dt.kind}{dt.itemsize}"
    state = (3, dt.byteorder if dt.byteorder in "<>" else "|", None, None, None, -1, -1, 0)
    dtype = Call(Global("numpy", "dtype", 0), (code, False, True), "reduce", 0, state=state)
    node = Call(Global("numpy.core.multiarray", "scalar", 0), (dtype, value.tobytes()), "reduce", 0)
    got = numpy_scalar(node)
    assert type(got) is type(value.item()) and got == value.item()
