"""NumPy `.npy` and `.npz`.

`.npy`: magic `\\x93NUMPY`, version (1.0: u16 header length; 2.0/3.0: u32), a Python dict
literal header {'descr', 'fortran_order', 'shape'} padded to alignment, then the raw data.
The header is parsed as a literal (never evaluated). Object arrays (`descr` 'O') hold a pickle:
it runs through the emulated pickle machine, never through `allow_pickle`.
`.npz`: a zip whose members are `.npy` files; stored members are mapped in place.
"""

from __future__ import annotations

import ast
import math

from assay.errors import FormatError, LimitError, UnsupportedError
from assay.formats.base import (
    Probe,
    Reader,
    archive_observations,
    check_shape,
    keeping,
    record_from_buffer,
    record_from_file,
    trailing,
)
from assay.formats.pickle.machine import run_pickle
from assay.formats.pickle.objects import ArrayRef
from assay.formats.pickle.symbols import Raw
from assay.io.source import Source
from assay.limits import Limits
from assay.model.artifact import ModelArtifact
from assay.model.dtypes import ArrayType, array_type, from_array_type
from assay.model.tensor import TensorRecord, f_strides

MAGIC = b"\x93NUMPY"


def parse_header(src: Source, limits: Limits) -> tuple[ArrayType, bool, tuple[int, ...], int]:
    """Parse a .npy header at the start of `src`; return dtype, fortran, shape, data offset.

    The dtype is read from the type string without NumPy; only a string `parse_typestr` does not
    know is given to NumPy."""
    if src.peek(6) != MAGIC:
        raise src.fail("npy: missing \\x93NUMPY magic", 0)
    src.read(6)
    major, _minor = src.read(2, "npy version")
    if major == 1:
        hlen = int.from_bytes(src.read(2, "npy header length"), "little")
    elif major in (2, 3):
        hlen = src.u32("npy header length")
    else:
        raise src.fail(f"npy: unknown format version {major}")
    if hlen > min(limits.max_header_bytes, 1 << 20):
        raise LimitError(src.path, f"npy: header length {hlen} over the limit", member=src.member)
    raw = bytes(src.read(hlen, "npy header"))
    try:
        text = raw.decode("utf-8" if major == 3 else "latin-1")
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError):
        raise src.fail("npy: header is not a Python dict literal", 10) from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise src.fail("npy: header must have exactly descr, fortran_order and shape", 10)
    descr = header["descr"]
    if not isinstance(descr, str):
        raise UnsupportedError(src.path, "npy: structured dtypes are not read", member=src.member)
    try:
        dt = array_type(descr)
    except TypeError:
        raise src.fail(f"npy: unknown dtype {descr!r}", 10) from None
    if not isinstance(header["fortran_order"], bool):
        raise src.fail("npy: fortran_order is not a bool", 10)
    shape = check_shape(src.path, header["shape"], limits, "npy")
    return dt, header["fortran_order"], shape, src.pos


def array_record(name: str, arr: ArrayRef, file: str, member: str | None,
                 art: ModelArtifact) -> TensorRecord | None:
    """A tensor record for an array found inside a pickle, or None for object arrays."""
    dt = from_array_type(arr.dtype)
    if dt is None or arr.dtype.kind == "O" or isinstance(arr.data, list):
        art.observe("symbolic.object", f"array {name!r} of dtype {arr.dtype} is not a tensor",
                    file, member)
        return None
    order = ">" if arr.dtype.byteorder == ">" else "<"
    numel = math.prod(arr.shape)
    need = dt.nbytes(numel)
    data = arr.data
    if isinstance(data, Raw):
        buf: memoryview | bytes = data.view
        offset = data.offset
    elif isinstance(data, bytes | bytearray):
        buf, offset = bytes(data), 0
    else:
        raise FormatError(file, f"array {name!r} has no raw data", member=member)
    if len(buf) < need:
        raise FormatError(file, f"array {name!r} needs {need} bytes, has {len(buf)}",
                          member=member)
    strides = f_strides(arr.shape) if arr.fortran and len(arr.shape) > 1 else None
    return record_from_buffer(name, dt, arr.shape, buf, file, member=member, offset=offset,
                              strides=strides, byteorder=order,
                              in_memory=not (isinstance(data, Raw) and member is None))


def _read_npy(src: Source, art: ModelArtifact, name: str, limits: Limits,
              in_memory: bool) -> None:
    dt, fortran, shape, off = parse_header(src, limits)
    path, member = src.path, src.member
    if dt.kind == "O" or dt.hasobject:
        res = run_pickle(src.data, path, member=member, base=src.base, start=off, limits=limits)
        art.observations.extend(res.observations(path, member))
        art.observe("symbolic.object", f"array {name!r} holds Python objects (a pickle)", path,
                    member, offset=src.base + off)
        return
    cdt = from_array_type(dt)
    if cdt is None:
        raise UnsupportedError(path, f"npy: dtype {dt} has no tensor equivalent", member=member)
    need = cdt.nbytes(math.prod(shape))
    if need > len(src) - off:
        raise FormatError(path, f"npy: data needs {need} bytes but {len(src) - off} remain "
                          "(truncated?)", member=member, offset=src.base + off)
    trailing(art, path, src.data, off + need, member=member, base=src.base, what="the array")
    strides = f_strides(shape) if fortran and len(shape) > 1 else None
    order = ">" if dt.byteorder == ">" else "<"
    if in_memory:
        art.tensors.append(record_from_buffer(name, cdt, shape, src.data[off:off + need], path,
                                              member=member, offset=off, strides=strides,
                                              byteorder=order))
    else:
        art.tensors.append(record_from_file(name, cdt, shape, path, src.base + off, member=member,
                                            strides=strides, byteorder=order, length=need))


def sniff_npy(p: Probe) -> bool:
    return p.head.startswith(MAGIC)


def read_npy(p: Probe) -> ModelArtifact:
    art = ModelArtifact(path=p.path, format="numpy-npy", files=[p.path])
    _read_npy(Source.open(p.path), art, "array", p.limits, in_memory=False)
    return art


def sniff_npz(p: Probe) -> bool:
    names = p.zip_names()
    return bool(names) and all(n.endswith(".npy") for n in names)


def read_npz(p: Probe) -> ModelArtifact:
    z = p.zip
    assert z is not None
    art = ModelArtifact(path=p.path, format="numpy-npz", files=[p.path])
    with keeping(art):
        try:
            for m in z.members:
                data = z.data(m)
                src = Source(data, p.path, m.name, base=m.data_offset if m.stored else 0)
                _read_npy(src, art, m.name[:-4], p.limits, in_memory=not m.stored)
        finally:
            archive_observations(art, z)
    return art


NPY_READER = Reader("numpy-npy", sniff_npy, read_npy, "NumPy .npy")
NPZ_READER = Reader("numpy-npz", sniff_npz, read_npz, "NumPy .npz")
