"""joblib files, and the scikit-learn estimators inside any pickle, read without executing them.

joblib (`joblib.dump`) writes ONE pickle in which every NumPy array is replaced by a
`joblib.numpy_pickle.NumpyArrayWrapper` object (NEWOBJ, or `copyreg._reconstructor` for
protocols 0/1) whose BUILD state is {subclass, shape, order, dtype, allow_mmap[,
numpy_array_alignment_bytes]}. Right after that BUILD opcode the array follows inline: when the
state holds an alignment, one byte giving a padding length and that many padding bytes; then
`prod(shape) * itemsize` raw bytes in the given order ('C' or 'F'). Object arrays are written as
a nested, complete pickle instead. The whole stream may be compressed: zlib (`x`), gzip
(`\\x1f\\x8b`), bz2 (`BZh`), xz (`\\xfd7zXZ\\x00`), lzma-alone (`]\\x00\\x00`), lz4 (optional), or
joblib < 0.9.3's `ZF` + hex length + zlib. Compressed streams are inflated in bounded chunks
under `Limits`, then read from memory. joblib < 0.10 kept arrays in side files
(`NDArrayWrapper`, `ZNDArrayWrapper`): refused as unsupported.

scikit-learn estimators are objects whose BUILD state (their `__getstate__`) holds
`_sklearn_version`. Their public, non-fitted attributes are the hyperparameters; fitted arrays
(`coef_`, `tree_.nodes`, `estimators_`, Pipeline `steps`) are found by walking the graph.
"""

from __future__ import annotations

import bz2
import lzma
import math
import re
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from assay.errors import FormatError, LimitError, MissingDependencyError, UnsupportedError
from assay.formats.base import Probe, Reader, check_shape
from assay.formats.pickle.machine import PickleMachine, PickleResult, run_pickle
from assay.formats.pickle.objects import ArrayRef, calls, object_state, plain, walk
from assay.formats.pickle.symbols import Call, Global, Raw
from assay.formats.plain_pickle import ArrayResolver, Tensors, guarded, parse_dtype, plausible
from assay.io.source import Source
from assay.limits import Limits
from assay.model.artifact import ModelArtifact, Observation

CHUNK = 1 << 20                      # compressed bytes fed, and decompressed bytes taken, per step
RATIO_SLACK = 1 << 20                # small files may inflate past the ratio by this much
BZ2_SNIFF_BYTES = 1 << 20            # bz2 emits nothing before its first block is complete
MAX_ESTIMATORS = 10_000
ZF_HEADER = 21                       # b"ZF" + hex(length).ljust(19)
JOBLIB_MODULES = ("joblib.numpy_pickle", "joblib.numpy_pickle_compat")
RECONSTRUCTORS = ("copyreg._reconstructor", "copy_reg._reconstructor")


# -- compression -----------------------------------------------------------------------------------
def compression_of(head: bytes) -> str | None:
    """The compression joblib would detect from the first bytes, or None for a bare pickle."""
    if head[:2] == b"ZF":
        return "zf" if re.fullmatch(rb"0x[0-9a-f]+ *", head[2:ZF_HEADER]) else None
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[3:4] != b"0":
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:3] == b"\x5d\x00\x00":
        return "lzma"
    if head[:4] == b"\x04\x22\x4d\x18":
        return "lz4"
    if len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0:
        return "zlib"
    return None


def _has_lz4() -> bool:
    import importlib.util

    return importlib.util.find_spec("lz4") is not None


def _decompressor(kind: str) -> Any:
    if kind in ("zlib", "zf"):
        return zlib.decompressobj(15)
    if kind == "gzip":
        return zlib.decompressobj(31)
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    if kind == "lzma":
        return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE)
    try:
        import lz4.frame
    except ImportError:
        raise MissingDependencyError(None, "joblib: lz4-compressed file needs the lz4 package") from None
    return lz4.frame.LZ4FrameDecompressor()


DECOMPRESS_ERRORS = (zlib.error, OSError, lzma.LZMAError, EOFError, RuntimeError, ValueError)


def _pieces(d: Any, chunk: memoryview | bytes, step: int) -> Iterator[bytes]:
    """Decompressed output of one input chunk, at most `step` bytes at a time."""
    if hasattr(d, "unconsumed_tail"):               # zlib
        buf: memoryview | bytes = chunk
        while buf and not d.eof:
            yield d.decompress(buf, step)
            buf = d.unconsumed_tail
        return
    if d.eof:
        return
    yield d.decompress(chunk, max_length=step)
    while not d.eof and not d.needs_input:
        yield d.decompress(b"", max_length=step)


@dataclass
class Inflated:
    """A joblib stream after decompression, and how many compressed bytes follow it."""

    data: memoryview
    trailing: int                    # compressed bytes after the last complete stream


def inflate(path: str, kind: str, data: memoryview, limits: Limits) -> Inflated:
    """Decompress a whole joblib stream under the limits; concatenated streams continue it."""
    out = bytearray()
    cap_ratio = limits.max_compression_ratio * len(data) + RATIO_SLACK

    def grow(piece: bytes) -> None:
        out.extend(piece)
        _check_size(path, kind, len(out), cap_ratio, limits)

    start = 0
    while start < len(data):
        mark = len(out)
        try:
            start = _one_stream(path, kind, data, start, grow)
        except DECOMPRESS_ERRORS as exc:
            if start == 0:
                raise FormatError(path, f"joblib: {kind} stream is corrupt ({exc})") from None
            del out[mark:]          # not another stream: bytes after the compressed data
            return Inflated(memoryview(out).toreadonly(), len(data) - start)
    return Inflated(memoryview(out).toreadonly(), 0)


def _one_stream(path: str, kind: str, data: memoryview, start: int,
                grow: Callable[[bytes], None]) -> int:
    """Inflate one compressed stream from `start`; return where the next one would begin."""
    d, pos = _decompressor(kind), start
    while not d.eof:
        if pos >= len(data):
            raise FormatError(path, f"joblib: {kind} stream ends early (truncated file)")
        chunk = data[pos:pos + CHUNK]
        pos += len(chunk)
        for piece in _pieces(d, chunk, CHUNK):
            grow(piece)
    return pos - len(d.unused_data)


def _check_size(path: str, kind: str, size: int, cap_ratio: int, limits: Limits) -> None:
    if size > limits.max_decompressed_bytes:
        raise LimitError(path, f"joblib: {kind} stream inflates past the limit of "
                         f"{limits.max_decompressed_bytes} bytes")
    if size > cap_ratio:
        raise LimitError(path, f"joblib: {kind} stream inflates more than "
                         f"{limits.max_compression_ratio} times its size (compression bomb?)")


def _zf_payload(path: str, data: memoryview, limits: Limits) -> tuple[memoryview, int]:
    """joblib < 0.9.3: b'ZF' + hex length padded to 19 bytes (+ optional space) + zlib data."""
    m = re.fullmatch(rb"0x([0-9a-f]+) *", bytes(data[2:ZF_HEADER]))
    if m is None:
        raise FormatError(path, "joblib: ZF header does not hold a hexadecimal length")
    length = int(m.group(1), 16)
    if length > limits.max_decompressed_bytes:
        raise LimitError(path, f"joblib: ZF header declares {length} bytes, over the limit")
    start = ZF_HEADER + (1 if data[ZF_HEADER:ZF_HEADER + 1] == b" " else 0)
    return data[start:], length


def _peek(p: Probe, kind: str) -> bytes | None:
    """The first decompressed bytes, for sniffing; None when the stream is invalid or empty.

    An empty result from a valid, unfinished stream (a bz2 block not yet complete) is b""."""
    head = p.head
    if kind == "bz2" and p.size > len(head):
        with open(p.path, "rb") as fh:
            head = fh.read(BZ2_SNIFF_BYTES)
    if kind == "zf":
        head = head[ZF_HEADER + (1 if head[ZF_HEADER:ZF_HEADER + 1] == b" " else 0):]
    try:
        d = _decompressor(kind)
        out = b""
        for piece in _pieces(d, head, 512):
            out += piece
            if len(out) >= 512:
                break
    except (*DECOMPRESS_ERRORS, MissingDependencyError):
        return None
    return None if d.eof and not out else out


# -- joblib's inline arrays ----------------------------------------------------------------------
def _joblib_class(call: Call) -> str | None:
    f = call.func
    if calls(call, *RECONSTRUCTORS) and call.args:
        f = call.args[0]
    if isinstance(f, Global) and f.module.endswith(JOBLIB_MODULES):
        return f.name
    return None


class JoblibArrays:
    """Build hook: on BUILD of a NumpyArrayWrapper, consume the array bytes that follow inline."""

    def __init__(self, path: str, limits: Limits) -> None:
        self.path = path
        self.limits = limits
        self.arrays: dict[int, ArrayRef] = {}       # id(wrapper Call) -> the array it stands for
        self.wrappers: list[Call] = []             # keeps the ids above alive
        self.nested: list[tuple[PickleResult, str | None]] = []

    def __call__(self, call: Call, m: PickleMachine) -> None:
        kind = _joblib_class(call)
        if kind in ("NDArrayWrapper", "ZNDArrayWrapper"):
            raise UnsupportedError(self.path, f"joblib: {kind} keeps arrays in side files "
                                   "(joblib < 0.10), which are not read", member=m.member,
                                   offset=call.offset)
        if kind == "NumpyArrayWrapper":
            self.arrays[id(call)] = self._inline_array(call, m)
            self.wrappers.append(call)

    def _inline_array(self, call: Call, m: PickleMachine) -> ArrayRef:
        st = object_state(call)
        dt = parse_dtype(st.get("dtype"))
        if dt is None:
            raise UnsupportedError(self.path, f"joblib: array dtype {plain(st.get('dtype'))!r} is "
                                   "not understood", member=m.member, offset=call.offset)
        shape = check_shape(self.path, st.get("shape"), self.limits, "joblib array")
        order = st.get("order", "C")
        if order not in ("C", "F"):
            raise FormatError(self.path, f"joblib: array order {plain(order)!r} is not 'C' or 'F'",
                              member=m.member, offset=call.offset)
        if dt.hasobject:            # a nested, complete pickle of the object array
            res = PickleMachine(m.data, m.path, member=m.member, base=m.base,
                                limits=m.limits).run(m.pos)
            self.nested.append((res, m.member))
            m.pos = res.end - m.base
            return ArrayRef(dt, shape, order == "F", None)
        if st.get("numpy_array_alignment_bytes") is not None:
            pad = m.take(1, "joblib array padding length")[0]
            m.take(pad, "joblib array padding")
        start = m.pos
        view = m.take(math.prod(shape) * dt.itemsize, "joblib array data")
        return ArrayRef(dt, shape, order == "F", Raw(view, m.base + start))

    def observations(self, file: str) -> list[Observation]:
        out: list[Observation] = []
        for res, member in self.nested:
            out.extend(res.observations(file, member))
        return out


# -- scikit-learn estimators ---------------------------------------------------------------------
class Estimator(NamedTuple):
    """A scikit-learn estimator found in the pickle: where, its class and parameters."""

    path: str
    cls: str
    params: dict[str, Any]
    version: str | None


def class_of(call: Call) -> str:
    """The class an object was made from: NEWOBJ's class, or `_reconstructor`'s first argument."""
    f = call.func
    if calls(call, *RECONSTRUCTORS) and call.args and isinstance(call.args[0], Global):
        f = call.args[0]
    return f.qualname if isinstance(f, Global) else type(f).__name__


def _as_estimator(node: Any) -> Call | None:
    if isinstance(node, Call) and isinstance(node.state, dict | tuple) and \
            "_sklearn_version" in object_state(node):
        return node
    return None


def _param(v: Any, depth: int = 0) -> Any:
    if isinstance(v, Call) and _as_estimator(v) is not None:
        return f"<{class_of(v)}>"
    if isinstance(v, list | tuple) and depth < 4:
        return [_param(x, depth + 1) for x in v[:64]]
    return plain(v)


def _params(state: dict[str, Any], arrays: ArrayResolver) -> dict[str, Any]:
    out = {}
    for k, v in state.items():
        if k.startswith("_") or k.endswith("_") or arrays(v) is not None:
            continue
        out[k] = _param(v)
    return out


def estimators(root: Any, limits: Limits, prefix: str = "", path: str = "",
               found: dict[int, ArrayRef] | None = None) -> list[Estimator]:
    """Every scikit-learn estimator in the graph, outermost first, with its dotted path."""
    arrays = ArrayResolver(path, limits, found)
    out: list[Estimator] = []
    seen: set[int] = set()
    todo: deque[tuple[str, Any]] = deque([(prefix, root)])
    while todo and len(out) < MAX_ESTIMATORS:
        base, node = todo.popleft()
        for name, est in walk(node, _as_estimator, limits.max_pickle_depth):
            if id(est) in seen:
                continue
            seen.add(id(est))
            where = f"{base}.{name}" if base and name else base or name
            state = object_state(est)
            version = state.get("_sklearn_version")
            out.append(Estimator(where, class_of(est), _params(state, arrays),
                                 version if isinstance(version, str) else None))
            todo.append((where, state))
    return out


def sklearn_metadata(found: list[Estimator]) -> dict[str, Any]:
    return {"estimators": [{"path": e.path, "class": e.cls, "params": e.params} for e in found],
            "sklearn_version": next((e.version for e in found if e.version), None)}


# -- the reader ----------------------------------------------------------------------------------
def sniff(p: Probe) -> bool:
    kind = compression_of(p.head)
    if kind is None:
        return b"joblib.numpy_pickle" in p.head and plausible(p.head, p.size > len(p.head))
    if kind == "lz4" and not _has_lz4():
        return True                 # read() then says which package is missing
    head = _peek(p, kind)
    return head is not None and (not head or plausible(head, True))


def _stream(p: Probe, kind: str | None) -> tuple[memoryview, int]:
    """The pickle stream (mapped or inflated) and the count of bytes after the compressed one."""
    data = Source.open(p.path).data
    if kind is None:
        return data, 0
    declared = None
    if kind == "zf":
        data, declared = _zf_payload(p.path, data, p.limits)
    inflated = inflate(p.path, kind, data, p.limits)
    if declared is not None and declared != len(inflated.data):
        raise FormatError(p.path, f"joblib: ZF header declares {declared} bytes but the stream "
                          f"inflates to {len(inflated.data)}")
    return inflated.data, inflated.trailing


def _read(p: Probe) -> ModelArtifact:
    kind = compression_of(p.head)
    data, trailing = _stream(p, kind)
    path = p.path
    art = ModelArtifact(path=path, format="joblib", files=[path])
    hook = JoblibArrays(path, p.limits)
    res = run_pickle(data, path, limits=p.limits, build_hook=hook)
    art.observations.extend(res.observations(path))
    art.observations.extend(hook.observations(path))
    after = len(data) - res.end
    if after:
        where = "decompressed stream" if kind else "file"
        art.observe("trailing.bytes", f"{after} bytes after the pickle in the {where}", path,
                    offset=res.end, length=after, compressed=kind is not None)
    if trailing:
        art.observe("trailing.bytes", f"{trailing} bytes after the {kind} stream", path,
                    offset=p.size - trailing, length=trailing)
    Tensors(art, path, None, in_memory=kind is not None, limits=p.limits).add_all(
        res.value, ArrayResolver(path, p.limits, hook.arrays))
    art.metadata["joblib"] = {"compression": kind or "none", "protocol": res.protocol,
                              "arrays": len(hook.arrays)}
    found = estimators(res.value, p.limits, path=path, found=hook.arrays)
    if found:
        art.metadata["sklearn"] = sklearn_metadata(found)
    return art


def _guarded_sniff(fn: Callable[[Probe], bool]) -> Callable[[Probe], bool]:
    def sniff_safely(p: Probe) -> bool:
        try:
            return fn(p)
        except (OSError, FormatError):
            return False
    return sniff_safely


READERS = [Reader("joblib", _guarded_sniff(sniff), guarded("joblib", _read),
                  "joblib file (scikit-learn models), plain or compressed")]
