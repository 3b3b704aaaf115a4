"""assay.io.hdf5 against h5py: files written by h5py (libhdf5) in the layouts it produces by
default and with `libver="latest"`, a user block, track_order, many and deep groups, soft,
hard and external links, every attribute type Keras writes; the structure read in place must
be what h5py reports. Truncated and corrupted files raise Malformed (or NotRead), nothing else."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from assay.io import hdf5  # noqa: E402

LAYOUT = {0: "compact", 1: "contiguous", 2: "chunked"}


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        return _plain(v.item())
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _own(path: Path) -> list[tuple[Any, ...]]:
    f = hdf5.Hdf5File(path.read_bytes())
    out: list[tuple[Any, ...]] = []
    seen: set[int] = set()

    def attrs(obj: hdf5.Object, where: str) -> None:
        for k, a in sorted(obj.attrs.items()):
            out.append(("attr", where, k, hdf5.value(f, a)))

    def walk(obj: hdf5.Object, prefix: str) -> None:
        if obj.address in seen:
            return
        seen.add(obj.address)
        attrs(obj, prefix)
        for lk in obj.links():
            full = prefix + lk.name
            if lk.kind != "hard":
                out.append(("link", full, lk.kind, lk.target_file, lk.target_path))
                continue
            assert lk.address is not None
            child = f.object(lk.address)
            if child.kind == "group":
                out.append(("group", full))
                walk(child, full + "/")
            elif child.kind == "dataset":
                lay = child.layout
                size = lay.size if lay.kind == "contiguous" and lay.address is not None else None
                out.append(("dataset", full, child.shape, child.dtype.numpy_name(), lay.kind,
                            lay.address, size, child.filters, child.external_files()))
                attrs(child, full)
    walk(f.root(), "")
    return out


def _name(dt: np.dtype) -> str:
    if dt.kind == "O":
        return "object"
    if dt.kind == "b":
        return "bool"
    return dt.str


def _library(path: Path) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    seen: set[Any] = set()
    with h5py.File(path, "r") as f:
        def attrs(obj: Any, where: str) -> None:
            for k in sorted(obj.attrs):
                out.append(("attr", where, k, _plain(obj.attrs[k])))

        def walk(g: Any, prefix: str) -> None:
            if g.id in seen:
                return
            seen.add(g.id)
            attrs(g, prefix)
            for key in sorted(g, key=lambda s: s.encode()):
                full = prefix + key
                link = g.get(key, getlink=True)
                if isinstance(link, h5py.ExternalLink):
                    out.append(("link", full, "external", link.filename, link.path))
                elif isinstance(link, h5py.SoftLink):
                    out.append(("link", full, "soft", None, link.path))
                elif isinstance(g[key], h5py.Group):
                    out.append(("group", full))
                    walk(g[key], full + "/")
                else:
                    ds = g[key]
                    dcpl = ds.id.get_create_plist()
                    lay = LAYOUT[dcpl.get_layout()]
                    allocated = lay == "contiguous" and ds.id.get_storage_size() > 0
                    off = ds.id.get_offset() if allocated else None   # (h5py: base - 1 if not)
                    size = ds.id.get_storage_size() if lay == "contiguous" and off is not None else None
                    ext = [_plain(dcpl.get_external(i)[0]) for i in range(dcpl.get_external_count())]
                    out.append(("dataset", full, ds.shape, _name(ds.dtype), lay, off, size,
                                dcpl.get_nfilters(), ext))
                    attrs(ds, full)
        walk(f["/"], "")
    return out


def _write(path: Path, n_root_attrs: int = 3, n_groups: int = 3, **kw: Any) -> Path:
    rng = np.random.default_rng(0)
    with h5py.File(path, "w", **kw) as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": []}})
        f.attrs["names"] = np.array([b"dense", b"dense_1"])
        f.attrs["vnames"] = ["a", "b\u00e9"]
        for i in range(n_root_attrs - 3):
            f.attrs[f"extra{i}"] = i
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = np.array([b"dense"])
        g.attrs["numbers"] = np.arange(6, dtype="<i4").reshape(2, 3)
        g.attrs["big_endian"] = np.arange(3, dtype=">f8")
        g.attrs["half"] = np.float16(0.5)
        g.attrs["flag"] = True
        g.attrs["count"] = np.uint64(2**63)
        d = g.create_group("dense")
        d.create_dataset("kernel:0", data=rng.standard_normal((4, 3)).astype("f4"))
        d.create_dataset("be", data=np.arange(5, dtype=">i8"))
        d.create_dataset("chunk", data=np.ones((10, 10), "f2"), chunks=(5, 5), compression="gzip")
        d = g.create_group("more")      # at most 8 links per group: compact under libver="latest"
        d.create_dataset("bools", data=np.array([True, False]))
        d.create_dataset("scalar", data=np.float64(3))
        d.create_dataset("fixed", data=np.array([b"ab", b"c"]))
        d.create_dataset("vstr", data=["x", "yy"], dtype=h5py.string_dtype())
        d.create_dataset("empty", data=h5py.Empty("f4"))
        d.create_dataset("unallocated", shape=(3,), dtype="f4")
        op = d.create_dataset("op", data=np.frombuffer(b"\x01\x02" * 4, dtype="V2"))
        op.attrs["dtype"] = "bfloat16"
        for i in range(n_groups):
            f.create_group(f"many/g{i}")
        f["soft"] = h5py.SoftLink("/model_weights")
        f["hard"] = f["model_weights/dense"]
        f["ext"] = h5py.ExternalLink("other.h5", "/x")
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        f.create_dataset("compact", data=np.arange(3, dtype="<u4"), dcpl=dcpl)
        f.create_dataset("outside", shape=(4,), dtype="f4", external=[("data.bin", 0, 16)])
    return path


@pytest.mark.parametrize("options", [
    {}, {"userblock_size": 512}, {"track_order": True}, {"libver": "latest"},
    {"libver": ("v108", "latest")}, {"n_groups": 3000}, {"n_root_attrs": 40},
], ids=["default", "userblock", "track_order", "latest", "v108", "many-groups", "many-attrs"])
def test_structure_is_what_h5py_reports(tmp_path: Path, options: dict[str, Any]) -> None:
    p = _write(tmp_path / "f.h5", **options)
    assert _own(p) == _library(p)


def test_deep_groups(tmp_path: Path) -> None:
    p = tmp_path / "deep.h5"
    with h5py.File(p, "w") as f:
        g = f
        for _ in range(40):
            g = g.create_group("d")
        g["x"] = np.arange(3, dtype=np.int8)
    assert _own(p) == _library(p)


@pytest.mark.parametrize(("options", "feature"), [
    ({"libver": "latest", "n_root_attrs": 20}, "dense attribute storage"),
    ({"libver": "latest", "n_groups": 20}, "dense link storage"),
])
def test_dense_storage_is_not_read(tmp_path: Path, options: dict[str, Any], feature: str) -> None:
    p = _write(tmp_path / "dense.h5", **options)
    with pytest.raises(hdf5.NotRead, match=feature):
        _own(p)


def test_truncated_files_are_malformed(tmp_path: Path) -> None:
    data = _write(tmp_path / "f.h5").read_bytes()
    for cut in range(0, len(data), 97):
        part = tmp_path / "cut.h5"
        part.write_bytes(data[:cut])
        try:
            _own(part)
        except (hdf5.Malformed, hdf5.NotRead):
            pass


def test_corrupted_bytes_raise_only_format_errors(tmp_path: Path) -> None:
    data = bytearray(_write(tmp_path / "f.h5").read_bytes())
    rng = random.Random(7)
    for _ in range(300):
        bad = bytearray(data)
        for _ in range(4):
            bad[rng.randrange(len(bad))] = rng.randrange(256)
        part = tmp_path / "bad.h5"
        part.write_bytes(bytes(bad))
        try:
            _own(part)
        except (hdf5.Malformed, hdf5.NotRead, UnicodeDecodeError):
            pass


def test_fixed_strings_end_as_h5py_ends_them(tmp_path: Path) -> None:
    p = tmp_path / "strings.h5"
    stored = np.array([b"ab\x00cd\x00"], dtype="S6")
    with h5py.File(p, "w") as f:
        for name, pad in (("nullterm", h5py.h5t.STR_NULLTERM), ("nullpad", h5py.h5t.STR_NULLPAD)):
            t = h5py.h5t.C_S1.copy()
            t.set_size(6)
            t.set_strpad(pad)
            a = h5py.h5a.create(f.id, name.encode(), t, h5py.h5s.create_simple((1,)))
            a.write(stored, mtype=t)          # the bytes as given, no conversion on the way
    assert _own(p) == _library(p)
    values = {row[2]: row[3] for row in _own(p)}
    assert values == {"nullterm": ["ab"], "nullpad": ["ab\x00cd"]}
