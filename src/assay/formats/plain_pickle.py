"""Any pickle stream (protocols 0-5), read by the emulated pickle machine; the last-resort reader.

A stream may hold several pickles back to back (`pickle.dump` called more than once); each runs
on the machine in turn, up to `Limits.max_pickles_per_stream`. Bytes after the last pickle that
do not start another one are recorded as `trailing.bytes`. Every import and call is recorded.

Tensors are the NumPy arrays the graph rebuilds: `numpy.core.multiarray._reconstruct` + BUILD
state `(version, shape, dtype, fortran, raw)`, protocol 5's `numpy.core.numeric._frombuffer(buf,
dtype, shape, order)`, and joblib's inline arrays (see `assay.formats.sklearn`). Dtypes are read
symbolically from `numpy.dtype(code, align, copy)` + BUILD state, including structured dtypes
(names, fields, itemsize), whose fields become one tensor each, named `<array>.<field>`.
scikit-learn estimators in the graph are described in `metadata["sklearn"]`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

from assay.errors import AssayError, FormatError, LimitError
from assay.formats.base import Probe, Reader, check_shape, record_from_array, record_from_buffer, trailing
from assay.formats.pickle.machine import PickleMachine, PickleResult, run_pickle
from assay.formats.pickle.objects import NUMPY_MODULES, ArrayRef, as_bytes, calls, numpy_dtype, walk
from assay.formats.pickle.symbols import Call, Global, PickleBuffer, Raw
from assay.io.source import Source
from assay.limits import Limits
from assay.model.artifact import ModelArtifact
from assay.model.dtypes import ArrayType, Field, from_array_type
from assay.model.tensor import c_strides, f_strides

# First opcodes of protocol 0/1 pickles: MARK, GLOBAL, DICT, LIST, EMPTY_LIST/DICT/TUPLE, NONE,
# INT/BININT*, LONG, FLOAT/BINFLOAT, STRING/BINSTRING/SHORT_BINSTRING, UNICODE/BINUNICODE, INST.
TEXT_FIRST = frozenset(b"(cdl]})NIJKMLFGSTUVXi")
SNIFF_OPS = 8                       # a protocol 0/1 head must run this many opcodes cleanly
SNIFF_LIMITS = Limits(max_pickle_ops=SNIFF_OPS)
NUMERIC_MODULES = ("numpy.core.numeric", "numpy._core.numeric")
MAX_FIELDS = 4096
MAX_ITEMSIZE = 1 << 24
MAX_DTYPE_DEPTH = 8


# -- is this a pickle? ---------------------------------------------------------------------------
def plausible(buf: bytes | memoryview, more_follows: bool) -> bool:
    """Does `buf` start a pickle? Protocol 2+ by its PROTO header; 0/1 by running a few opcodes.

    A protocol 0/1 head must reach STOP or run `SNIFF_OPS` opcodes without an error; running
    out of bytes counts only when `more_follows` (the head is a prefix of a longer input)."""
    if len(buf) >= 2 and buf[0] == 0x80:
        return 2 <= buf[1] <= 5
    if not buf or buf[0] not in TEXT_FIRST:
        return False
    m = PickleMachine(bytes(buf[:4096]), "<sniff>", limits=SNIFF_LIMITS)
    try:
        m.run()
        return True
    except LimitError as exc:
        return "more opcodes" in exc.reason or more_follows
    except FormatError as exc:
        ran_out = "without STOP" in exc.reason or "no end of line" in exc.reason
        return ran_out and more_follows
    except (ValueError, TypeError, OverflowError):
        return False


# -- dtypes --------------------------------------------------------------------------------------
def parse_dtype(v: Any, depth: int = 0) -> ArrayType | None:
    """A NumPy array type from the symbolic `numpy.dtype(...)` call and its BUILD state, or None.

    Structured dtypes carry state `(version, endian, subarray, names, fields, itemsize, align,
    flags)` with `fields` mapping each name to `(dtype, offset[, title])`."""
    if not calls(v, "numpy.dtype"):
        return None
    st = v.state
    if isinstance(st, tuple) and len(st) >= 8 and isinstance(st[3], tuple) and isinstance(st[4], dict):
        return _structured(st, depth)
    if isinstance(st, tuple) and len(st) >= 3 and st[2] is not None:
        return None                 # subarray dtype: not read
    return numpy_dtype(v)


def _structured(st: tuple, depth: int) -> ArrayType | None:
    names, fields, itemsize = st[3], st[4], st[5]
    if depth >= MAX_DTYPE_DEPTH or st[2] is not None or len(names) > MAX_FIELDS:
        return None
    if not isinstance(itemsize, int) or isinstance(itemsize, bool) or not 0 < itemsize <= MAX_ITEMSIZE:
        return None
    parts: list[Field] = []
    for name in names:
        entry = fields.get(name) if isinstance(name, str) else None
        if not isinstance(entry, tuple) or len(entry) not in (2, 3):
            return None
        sub = parse_dtype(entry[0], depth + 1)
        off = entry[1]
        if sub is None or not isinstance(off, int) or off < 0 or off + sub.itemsize > itemsize:
            return None
        parts.append(Field(name, sub, off))
    if len(set(names)) < len(names) or _objects_overlap(parts):
        return None                 # NumPy refuses both
    return ArrayType("V", itemsize, fields=tuple(parts),
                     hasobject=any(f.type.hasobject for f in parts))


def _objects_overlap(fields: list[Field]) -> bool:
    """Does a field holding Python objects share bytes with another field?"""
    end = obj_end = 0                       # the furthest end of any field, of an object field
    for start, stop, obj in sorted((f.offset, f.offset + f.type.itemsize, f.type.hasobject)
                                   for f in fields):
        if start < (end if obj else obj_end):
            return True
        end = max(end, stop)
        obj_end = max(obj_end, stop) if obj else obj_end
    return False


# -- arrays in the graph -------------------------------------------------------------------------
def _raw(v: Any) -> bytes | Raw | None:
    """Array bytes: bytes, a Raw span, a bytearray, `_codecs.encode(...)` or `bytes()`."""
    if isinstance(v, bytearray):
        return bytes(v)
    if calls(v, "builtins.bytes", "__builtin__.bytes") and not v.args:
        return b""
    return as_bytes(v)


def reconstructed(node: Any, path: str, limits: Limits) -> ArrayRef | None:
    """A NumPy array rebuilt by `_reconstruct` + BUILD or by `_frombuffer`, else None."""
    if not isinstance(node, Call) or not isinstance(node.func, Global):
        return None
    f = node.func
    if f.module in NUMPY_MODULES and f.name == "_reconstruct":
        st = node.state
        if not (isinstance(st, tuple) and len(st) == 5):
            return None
        _ver, shape, dt_call, fortran, raw = st
        data: Any = raw if isinstance(raw, list) else _raw(raw)
    elif f.module in NUMPY_MODULES + NUMERIC_MODULES and f.name == "_frombuffer":
        if len(node.args) != 4:
            return None
        raw, dt_call, shape, order = node.args
        fortran = order == "F"
        data = None if isinstance(raw, PickleBuffer) else _raw(raw)
    else:
        return None
    dt = parse_dtype(dt_call)
    if dt is None:
        return None
    return ArrayRef(dt, check_shape(path, shape, limits, f"array {f.qualname}"), bool(fortran), data)


class ArrayResolver:
    """Resolver for `walk`: NumPy arrays, plus arrays a build hook already found (by node id)."""

    def __init__(self, path: str, limits: Limits, found: dict[int, ArrayRef] | None = None) -> None:
        self.path = path
        self.limits = limits
        self.found = found or {}

    def __call__(self, node: Any) -> ArrayRef | None:
        if not isinstance(node, Call):
            return None
        hit = self.found.get(id(node))
        return hit if hit is not None else reconstructed(node, self.path, self.limits)


# -- tensor records ------------------------------------------------------------------------------


class Tensors:
    """Turns the arrays of one pickle graph into tensor records of `art`."""

    def __init__(self, art: ModelArtifact, file: str, member: str | None, in_memory: bool,
                 limits: Limits) -> None:
        self.art, self.file, self.member = art, file, member
        self.in_memory = in_memory          # Raw spans are offsets in decompressed data
        self.limits = limits

    def add_all(self, value: Any, resolve: Callable[[Any], Any], prefix: str = "") -> None:
        for name, ref in walk(value, resolve, self.limits.max_pickle_depth):
            full = f"{prefix}.{name}" if prefix and name else prefix or name or "array"
            self.add(full, ref)
            if len(self.art.tensors) > self.limits.max_tensors:
                raise LimitError(self.file, f"pickle: more than {self.limits.max_tensors} arrays")

    def skip(self, name: str, why: str) -> None:
        self.art.observe("symbolic.object", f"array {name!r} {why}", self.file, self.member)

    def add(self, name: str, ref: ArrayRef) -> None:
        dt, data = ref.dtype, ref.data
        if dt.hasobject or isinstance(data, list):
            return self.skip(name, "holds Python objects, not a tensor")
        if data is None:
            return self.skip(name, "has its bytes out of band (protocol 5 buffer)")
        if isinstance(data, Raw):
            buf: memoryview | bytes = data.view
            offset, in_memory = data.offset, self.in_memory
        else:
            buf, offset, in_memory = data, 0, True
        need = math.prod(ref.shape) * dt.itemsize
        if len(buf) < need:
            raise FormatError(self.file, f"pickle: array {name!r} needs {need} bytes but holds "
                              f"{len(buf)}", member=self.member)
        buf = buf[:need]
        if dt.names:
            return self.add_fields(name, ref, buf, offset, in_memory)
        cdt = from_array_type(dt)
        if cdt is None:
            return self.skip(name, f"of dtype {dt} has no tensor equivalent")
        strides = f_strides(ref.shape) if ref.fortran and len(ref.shape) > 1 else None
        self.art.tensors.append(record_from_buffer(
            name, cdt, ref.shape, buf, self.file, member=self.member, offset=offset,
            strides=strides, byteorder=">" if dt.byteorder == ">" else "<", in_memory=in_memory))

    def add_fields(self, name: str, ref: ArrayRef, buf: memoryview | bytes, offset: int,
                   in_memory: bool) -> None:
        """One tensor per field of a structured array, strided over the records in place."""
        dt, shape = ref.dtype, ref.shape
        assert dt.fields is not None
        numel = math.prod(shape)
        for field, fdt, foff in dt.fields:
            full = f"{name}.{field}"
            cdt = from_array_type(fdt)
            if cdt is None:
                self.skip(full, f"is a field of dtype {fdt} with no tensor equivalent")
                continue
            order = ">" if fdt.byteorder == ">" else "<"
            item = fdt.itemsize
            if foff % item or dt.itemsize % item or numel == 0:
                self.art.tensors.append(self._field_copy(full, ref, buf, field, order))
                continue
            k = dt.itemsize // item
            base = f_strides(shape) if ref.fortran else c_strides(shape)
            self.art.tensors.append(record_from_buffer(
                full, cdt, shape, buf, self.file, member=self.member, offset=offset,
                strides=tuple(s * k for s in base), element_offset=foff // item, byteorder=order,
                in_memory=in_memory))

    def _field_copy(self, name: str, ref: ArrayRef, buf: memoryview | bytes, field: str,
                    order: str) -> Any:
        """A field whose offset does not fit its element size: copied out of the records."""
        import numpy as np

        arr = np.frombuffer(buf, dtype=ref.dtype.numpy, count=math.prod(ref.shape))
        arr = arr.reshape(ref.shape, order="F" if ref.fortran else "C")[field]
        return record_from_array(name, np.ascontiguousarray(arr), self.file, member=self.member)


# -- the reader ----------------------------------------------------------------------------------
def guarded(fmt: str, fn: Callable[[Probe], ModelArtifact]) -> Callable[[Probe], ModelArtifact]:
    """Reader boundary: anything but an AssayError on bad input becomes a FormatError."""
    def read(p: Probe) -> ModelArtifact:
        try:
            return fn(p)
        except AssayError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
                struct.error, EOFError, OSError) as exc:
            raise FormatError(p.path, f"{fmt}: malformed content ({type(exc).__name__}: "
                              f"{str(exc)[:120]})") from None
    return read


def sniff(p: Probe) -> bool:
    return plausible(p.head, p.size > len(p.head))


def _pickles(data: memoryview, p: Probe, art: ModelArtifact,
             hook_factory: Callable[[], Any]) -> list[tuple[PickleResult, Any]]:
    out: list[tuple[PickleResult, Any]] = []
    pos = 0
    while pos < len(data):
        if out and not plausible(data[pos:pos + 4096], pos + 4096 < len(data)):
            trailing(art, p.path, data, pos, what="the last pickle")
            break
        if len(out) >= p.limits.max_pickles_per_stream:
            raise LimitError(p.path, f"pickle: more than {p.limits.max_pickles_per_stream} pickles "
                             "in one stream", offset=pos)
        hook = hook_factory()
        res = run_pickle(data, p.path, start=pos, limits=p.limits, build_hook=hook)
        out.append((res, hook))
        pos = res.end
    return out


def _read(p: Probe) -> ModelArtifact:
    from assay.formats import sklearn  # joblib's inline arrays and estimator metadata

    data = Source.open(p.path).data
    art = ModelArtifact(path=p.path, format="pickle", files=[p.path])
    results = _pickles(data, p, art, lambda: sklearn.JoblibArrays(p.path, p.limits))
    tensors = Tensors(art, p.path, None, in_memory=False, limits=p.limits)
    estimators: list[dict[str, Any]] = []
    for i, (res, hook) in enumerate(results):
        prefix = str(i) if len(results) > 1 else ""
        art.observations.extend(res.observations(p.path))
        art.observations.extend(hook.observations(p.path))
        tensors.add_all(res.value, ArrayResolver(p.path, p.limits, hook.arrays), prefix)
        estimators.extend(sklearn.estimators(res.value, p.limits, prefix, p.path, hook.arrays))
    art.metadata["pickle"] = {"pickles": len(results),
                              "protocols": [res.protocol for res, _ in results],
                              "joblib_arrays": sum(len(h.arrays) for _, h in results)}
    if estimators:
        art.metadata["sklearn"] = sklearn.sklearn_metadata(estimators)
    return art


READERS = [Reader("pickle", sniff, guarded("pickle", _read), "Python pickle stream (any protocol)")]

__all__ = ["READERS", "ArrayResolver", "Tensors", "guarded", "parse_dtype", "plausible",
           "reconstructed"]
