"""PyTorch checkpoints: zip archives (any file name), TorchScript archives, the legacy stream.

Zip layout: `<prefix>/data.pkl` (the object pickle), `<prefix>/data/<key>` (one member per
storage, stored uncompressed so it is memory-mapped in place), optional `<prefix>/byteorder`,
and for TorchScript `<prefix>/code/...` (recorded as code files), `<prefix>/constants.pkl`
with storages under `<prefix>/constants/<key>`. Persistent ids are
`('storage', <StorageClass>, key, location, numel)`.

Legacy layout: five pickles in a row (magic number, protocol version, sys info, the object,
the list of storage keys), then for each key an int64 element count and the raw elements.

Tensors are recognised from `torch._utils._rebuild_tensor_v2` calls (and their Parameter and
subclass wrappers) in the emulated pickle; nothing is imported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from assay.errors import AssayError, FormatError, LimitError, UnsupportedError
from assay.formats.base import Probe, Reader, archive_observations, keeping, looks_like, trailing
from assay.formats.pickle.machine import PickleResult, looks_like_pickle, run_pickle
from assay.formats.pickle.objects import calls, numpy_array, plain, walk
from assay.formats.pickle.symbols import Global, Persistent
from assay.io.archive import ZipArchive
from assay.model.artifact import ModelArtifact
from assay.model.dtypes import DTYPES, DType
from assay.model.tensor import ByteSpan, TensorRecord, c_strides

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool", "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128", "UInt16Storage": "uint16", "UInt32Storage": "uint32",
    "UInt64Storage": "uint64", "Float8_e4m3fnStorage": "float8_e4m3fn",
    "Float8_e5m2Storage": "float8_e5m2", "Float8_e4m3fnuzStorage": "float8_e4m3fnuz",
    "Float8_e5m2fnuzStorage": "float8_e5m2fnuz", "Float8_e8m0fnuStorage": "float8_e8m0fnu",
}
UNTYPED = ("torch.storage.UntypedStorage", "torch.UntypedStorage")
REBUILD_TENSOR = ("torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor")
MAX_VALUES = 64   # scalars kept as metadata per pickle
REBUILD_V3 = "torch._utils._rebuild_tensor_v3"   # untyped storage + explicit dtype argument


class Storage(NamedTuple):
    """One storage of a checkpoint: key, dtype, element count and where its bytes are."""

    key: str
    dtype: DType
    numel: int
    buf: memoryview | bytes
    span: ByteSpan


def _storage_dtype(path: str, cls: Any) -> DType:
    if isinstance(cls, Global) and cls.module == "torch" and cls.name in STORAGE_DTYPES:
        return DTYPES[STORAGE_DTYPES[cls.name]]
    if isinstance(cls, Global) and cls.qualname in UNTYPED:
        return DTYPES["uint8"]
    raise FormatError(path, f"pytorch: unknown storage type {cls!r}")


class _Tensors:
    """Resolve rebuild calls to tensor records over the given storages."""

    def __init__(self, path: str, storages: dict[str, Storage], byteorder: str) -> None:
        self.path = path
        self.storages = storages
        self.byteorder = byteorder

    def storage(self, pid: Any) -> Storage | None:
        if not isinstance(pid, Persistent):
            return None
        t = pid.pid
        if not (isinstance(t, tuple) and len(t) >= 5 and t[0] == "storage"):
            raise FormatError(self.path, f"pytorch: unexpected persistent id {plain(t)!r}")
        st = self.storages.get(str(t[2]))
        if st is None:
            raise FormatError(self.path, f"pytorch: storage {t[2]!r} is missing")
        return st

    def __call__(self, node: Any) -> Any:
        if calls(node, "torch._tensor._rebuild_from_type_v2") and len(node.args) >= 3 and \
                isinstance(node.args[0], Global) and node.args[0].qualname in REBUILD_TENSOR:
            return self.rebuild(node.args[2])
        if calls(node, *REBUILD_TENSOR):
            return self.rebuild(node.args)
        if calls(node, REBUILD_V3) and len(node.args) >= 7:
            dt = node.args[6]
            if not (isinstance(dt, Global) and dt.module == "torch" and dt.name in DTYPES):
                raise FormatError(self.path, f"pytorch: unknown tensor dtype {dt!r}")
            return self.rebuild(node.args, DTYPES[dt.name])
        arr = numpy_array(node)
        if arr is not None:
            return arr
        return None

    def rebuild(self, args: Any, dtype: DType | None = None) -> Any:
        if not isinstance(args, tuple) or len(args) < 4:
            raise FormatError(self.path, "pytorch: tensor rebuild with too few arguments")
        storage, offset, size, stride = args[:4]
        st = self.storage(storage)
        if st is None:
            raise FormatError(self.path, "pytorch: tensor rebuild without a storage")
        if not (isinstance(offset, int) and isinstance(size, tuple) and isinstance(stride, tuple)
                and len(size) == len(stride) and all(isinstance(x, int) for x in size + stride)):
            raise FormatError(self.path, "pytorch: tensor rebuild with malformed size or stride")
        if offset < 0 or any(x < 0 for x in size + stride):
            raise FormatError(self.path, "pytorch: negative size, stride or offset")
        dt, capacity = st.dtype, st.numel
        if dtype is not None and dtype is not st.dtype:
            dt, capacity = dtype, st.dtype.nbytes(st.numel) // max(dtype.bits // 8, 1)
        numel = math.prod(size)
        if numel:
            last = offset + sum((d - 1) * s for d, s in zip(size, stride))
            if last >= capacity:
                raise FormatError(self.path, f"pytorch: tensor reaches element {last} of storage "
                                  f"{st.key}, which holds {st.numel}")
        contiguous = c_strides(size) == stride
        return TensorRecord("", dt, size, st.span, lambda b=st.buf: b,
                            None if contiguous else stride, offset, self.byteorder,
                            {"storage": st.key})


def _collect(art: ModelArtifact, result: PickleResult, resolve: _Tensors, file: str,
             member: str | None, prefix: str = "", observe: bool = True) -> None:
    if observe:
        art.observations.extend(result.observations(file, member))
    from assay.formats.numpy_format import array_record
    from assay.formats.pickle.objects import ArrayRef
    values: dict[str, object] = {}
    for name, leaf in walk(result.value, _with_scalars(resolve)):
        full = f"{prefix}.{name}" if prefix and name else prefix or name or "tensor"
        if isinstance(leaf, TensorRecord):
            art.tensors.append(TensorRecord(full, leaf.dtype, leaf.shape, leaf.span, leaf.loader,
                                            leaf.strides, leaf.element_offset, leaf.byteorder,
                                            leaf.attrs))
        elif isinstance(leaf, ArrayRef):
            rec = array_record(full, leaf, file, member, art)
            if rec is not None:
                art.tensors.append(rec)
        elif len(values) < MAX_VALUES and "_metadata" not in full.split("."):
            values[full] = leaf.value
    if values:
        art.metadata.setdefault("pytorch", {})["values"] = values


@dataclass(frozen=True)
class _Scalar:
    """A Python number found where a tensor was expected."""

    value: object


def _with_scalars(resolve: _Tensors) -> Any:
    """Also accept short scalars (epoch, step, learning rate...) as leaves, kept as metadata."""
    def inner(node: Any) -> Any:
        found = resolve(node)
        if found is not None:
            return found
        if isinstance(node, bool | int | float) or (isinstance(node, str) and len(node) <= 200):
            return _Scalar(node)
        return None
    return inner


# -- zip ---------------------------------------------------------------------------------------
def _zip_prefix(names: list[str]) -> str | None:
    for n in names:
        if (n.endswith("/data.pkl") and n.count("/") == 1) or n == "data.pkl":
            return n[: -len("data.pkl")]
    for n in names:
        if n.endswith("/constants.pkl") and n.count("/") == 1:
            return n[: -len("constants.pkl")]
    return None


def sniff_zip(p: Probe) -> bool:
    return p.zip is not None and _zip_prefix(p.zip_names()) is not None


def read_zip(p: Probe) -> ModelArtifact:
    z = p.zip
    assert z is not None
    path = p.path
    names = z.names()
    prefix = _zip_prefix(names) or ""
    torchscript = any(n.startswith(prefix + "code/") for n in names) or \
        (prefix + "constants.pkl") in names
    art = ModelArtifact(path=path, format="torchscript" if torchscript else "pytorch-zip",
                        files=[path])
    byteorder = "<"
    bo = z.get(prefix + "byteorder")
    if bo is not None:
        text = bytes(z.data(bo)).strip()
        if text not in (b"little", b"big"):
            raise FormatError(path, f"pytorch: byteorder says {text[:16]!r}", member=bo.name)
        byteorder = "<" if text == b"little" else ">"
    art.metadata["pytorch"] = {"archive_prefix": prefix.rstrip("/"), "byteorder":
                               "little" if byteorder == "<" else "big"}
    for n in names:
        if n.startswith(prefix + "code/") and not n.endswith("/"):
            m = z.get(n)
            art.observe("code.file", n, path, member=n, size=m.size if m else 0)
    pickles = [(prefix + "data.pkl", prefix + "data/")]
    if torchscript:
        pickles.append((prefix + "constants.pkl", prefix + "constants/"))
    with keeping(art):
        try:
            for pkl, folder in pickles:
                m = z.get(pkl)
                if m is None:
                    continue
                res = run_pickle(z.data(m, verify=True), path, member=pkl, limits=p.limits)
                storages = _zip_storages(path, z, res, folder)
                label = "" if pkl.endswith("data.pkl") else "constants"
                _collect(art, res, _Tensors(path, storages, byteorder), path, pkl, label)
            _other_pickles(art, z, {pkl for pkl, _ in pickles}, p.limits)
        finally:
            archive_observations(art, z)
    return art


def _other_pickles(art: ModelArtifact, z: ZipArchive, parsed: set[str], limits: Any) -> None:
    """Run every other member that starts like a pickle (TorchScript `.debug_pkl` files, extra
    pickles) through the machine, so what they would import is recorded too."""
    for m in z.members:
        if m.name in parsed or m.size > limits.max_header_bytes:
            continue
        if looks_like(z.head(m, 4)) != "pickle":
            continue
        try:
            res = run_pickle(z.data(m, verify=True), z.path, member=m.name, limits=limits)
        except AssayError as exc:
            art.observations.extend(exc.observations)
            art.observe("pickle.unreadable", exc.reason, z.path, member=m.name)
            continue
        art.observations.extend(res.observations(z.path, m.name))


def _zip_storages(path: str, z: ZipArchive, res: PickleResult, folder: str) -> dict[str, Storage]:
    out: dict[str, Storage] = {}
    for pid in res.persistent:
        t = pid.pid
        if not (isinstance(t, tuple) and len(t) >= 5 and t[0] == "storage"):
            continue
        key = str(t[2])
        if key in out:
            continue
        dt = _storage_dtype(path, t[1])
        m = z.get(folder + key)
        if m is None:
            raise FormatError(path, f"pytorch: storage member {folder + key!r} is missing")
        numel = t[4] if isinstance(t[4], int) else -1
        if numel < 0:
            numel = m.size // max(dt.bits // 8, 1)
        if dt.nbytes(numel) > m.size:
            raise FormatError(path, f"pytorch: storage {key} declares {numel} elements but its "
                              f"member holds {m.size} bytes", member=m.name)
        buf = z.data(m)
        span = ByteSpan(path, m.data_offset, m.size, m.name, not m.stored)
        out[key] = Storage(key, dt, numel, buf, span)
    return out


# -- legacy stream -----------------------------------------------------------------------------
def sniff_legacy(p: Probe) -> bool:
    h = p.head
    if not looks_like_pickle(h):
        return False
    # protocol 2 header, then LONG1 10 bytes holding the magic number
    return h[2:4] == b"\x8a\x0a" and int.from_bytes(h[4:14], "little") == LEGACY_MAGIC


def _legacy_pickles(p: Probe, data: memoryview) -> list[PickleResult]:
    """The five pickles of a legacy stream. Each one's imports and calls are kept on the error
    if a later check fails: every one of them would be unpickled by `torch.load`."""
    path, seen, out = p.path, ModelArtifact(path=p.path, format="pytorch-legacy"), []
    checks = [(lambda v: v == LEGACY_MAGIC, "does not start with the magic number"),
              (lambda v: v == 1001, "has an unknown protocol version"), (lambda v: True, ""),
              (lambda v: True, ""),
              (lambda v: isinstance(v, list) and len(v) <= p.limits.max_tensors,
               "has a malformed storage key list")]
    with keeping(seen):
        at = 0
        for ok, what in checks:
            res = run_pickle(data, path, start=at, limits=p.limits)
            seen.observations.extend(res.observations(path))
            if not ok(res.value):
                raise FormatError(path, f"pytorch: legacy stream {what}")
            out.append(res)
            at = res.end
    return out


def read_legacy(p: Probe) -> ModelArtifact:
    from assay.io.source import Source
    path = p.path
    data = Source.open(p.path).data
    magic, version, info, main, keys = _legacy_pickles(p, data)
    art = ModelArtifact(path=path, format="pytorch-legacy", files=[path])
    for r in (magic, version, info, main, keys):
        art.observations.extend(r.observations(path))
    with keeping(art):
        return _legacy_tensors(p, art, data, info, main, keys)


def _legacy_tensors(p: Probe, art: ModelArtifact, data: memoryview, info: PickleResult,
                    main: PickleResult, keys: PickleResult) -> ModelArtifact:
    path = p.path
    sys_info = plain(info.value) if isinstance(info.value, dict) else {}
    art.metadata["pytorch"] = {"sys_info": sys_info}
    byteorder = "<" if not isinstance(info.value, dict) or info.value.get("little_endian", True) \
        else ">"
    declared: dict[str, DType] = {}
    for pid in main.persistent:
        t = pid.pid
        if isinstance(t, tuple) and len(t) >= 5 and t[0] == "storage":
            declared[str(t[2])] = _storage_dtype(path, t[1])
    storages: dict[str, Storage] = {}
    pos = keys.end
    for key in keys.value:
        key = str(key)
        dt = declared.get(key)
        if dt is None:
            raise FormatError(path, f"pytorch: storage {key!r} is listed but never used")
        if pos + 8 > len(data):
            raise FormatError(path, f"pytorch: storage {key} is truncated", offset=pos)
        numel = int.from_bytes(data[pos:pos + 8], "little", signed=True)
        nbytes = dt.nbytes(numel) if numel >= 0 else -1
        if nbytes < 0 or pos + 8 + nbytes > len(data):
            raise FormatError(path, f"pytorch: storage {key} declares {numel} elements, past the "
                              "end of the file", offset=pos)
        buf = data[pos + 8:pos + 8 + nbytes]
        storages[key] = Storage(key, dt, numel, buf, ByteSpan(path, pos + 8, nbytes))
        pos += 8 + nbytes
    if pos < len(data):
        trailing(art, path, data, pos, what="the last storage")
    _collect(art, main, _Tensors(path, storages, byteorder), path, None, observe=False)
    return art


# -- legacy tar (torch < 0.4) ------------------------------------------------------------------
TAR_PICKLES = ("sys_info", "pickle", "storages", "tensors")


def sniff_tar(p: Probe) -> bool:
    return len(p.head) >= 263 and p.head[257:262] == b"ustar"


def read_tar(p: Probe) -> ModelArtifact:
    """Members are listed with `tarfile` (headers only, bounded); each member that starts with a
    pickle runs on the emulated machine so a scan sees what `torch.load` would import. Tensors
    of this format are not read (it predates PyTorch 0.4)."""
    import tarfile

    art = ModelArtifact(path=p.path, format="pytorch-tar", files=[p.path])
    names: list[str] = []
    try:
        with tarfile.open(p.path, "r:") as tf:
            for i, info in enumerate(tf):
                if i >= p.limits.max_archive_members:
                    raise LimitError(p.path, "pytorch: tar has more members than the limit")
                names.append(info.name)
                art.observe("archive.member", info.name, p.path, member=info.name,
                            offset=info.offset_data, size=info.size)
                if not info.isfile() or info.size > p.limits.max_header_bytes:
                    continue
                fh = tf.extractfile(info)
                data = fh.read() if fh is not None else b""
                if looks_like(data[:4]) != "pickle":
                    continue
                try:
                    res = run_pickle(data, p.path, member=info.name, base=info.offset_data,
                                     limits=p.limits)
                except AssayError as exc:
                    art.observations.extend(exc.observations)
                    continue
                art.observations.extend(res.observations(p.path, info.name))
    except (tarfile.TarError, OSError, EOFError) as exc:
        err = FormatError(p.path, f"pytorch: damaged tar archive ({exc})")
        err.observations.extend(art.observations)
        raise err from None
    if not set(TAR_PICKLES) & set(names):
        err = FormatError(p.path, "tar archive is not a PyTorch checkpoint")
        err.observations.extend(art.observations)
        raise err
    err = UnsupportedError(p.path, "pytorch: legacy tar checkpoints (PyTorch < 0.4) are listed "
                           "and scanned, but their tensors are not read")
    err.observations.extend(art.observations)
    raise err


TAR_READER = Reader("pytorch-tar", sniff_tar, read_tar, "PyTorch legacy tar checkpoint")
ZIP_READER = Reader("pytorch-zip", sniff_zip, read_zip, "PyTorch zip checkpoint / TorchScript")
LEGACY_READER = Reader("pytorch-legacy", sniff_legacy, read_legacy, "PyTorch legacy checkpoint")
