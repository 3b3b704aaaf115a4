"""GGUF (llama.cpp / ggml), parsed by assay itself from the published format.

Layout (versions 2 and 3; little-endian, or big-endian for version 3 files written that way):
magic b"GGUF", u32 version, u64 tensor count, u64 key/value count; then the key/value pairs
(string key, u32 value type, value); then one info per tensor (string name, u32 n_dims,
n_dims u64 sizes with the fastest-varying first, u32 ggml type, u64 offset relative to the data
section); then padding up to `general.alignment` (a u32 power of two, default 32); then the data
section. A string is a u64 byte length and that many bytes of UTF-8; an array is a u32 item
type, a u64 item count and the items (arrays may nest).

Every count and length is checked against the bytes that remain and against `Limits` before it
is used (the gguf-py reader trusts them). Tensor offsets must be aligned, inside the data
section and must not overlap; names and keys must be unique; the row length of a quantized
tensor must be a whole number of blocks. Block sizes come from the `gguf` package's table.
Shapes are row-major (the reverse of the file's order); quantized tensors keep their blocks.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

from assay.errors import FormatError, LimitError, UnsupportedError
from assay.formats.base import Probe, Reader, check_shape, record_from_file, trailing
from assay.io.source import Source
from assay.limits import Limits
from assay.model.artifact import ModelArtifact
from assay.model.dtypes import DTYPES, DType, register_block_dtype
from assay.model.tensor import TensorRecord, map_file, register_decoder

if TYPE_CHECKING:
    import numpy as np

MAGIC = b"GGUF"
VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
GGML_MAX_DIMS = 4
MAX_LISTED = 256           # arrays longer than this are summarised in the metadata document
HEAD_ITEMS = 8             # items kept in such a summary
MAX_DOC_STRING = 65536     # longer strings are summarised in the metadata document (not templates)
MIN_KV_BYTES = 8 + 4 + 1   # empty key, value type, smallest value
MIN_INFO_BYTES = 8 + 4 + 4 + 8   # empty name, n_dims = 0, ggml type, offset
TEMPLATE_KEY = "tokenizer.chat_template"

ELEMENT_TYPES = {
    "F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64",
    "I8": "int8", "I16": "int16", "I32": "int32", "I64": "int64",
}

# GGUF metadata value types: code -> (name, struct code or None for string / array)
VALUE_TYPES: dict[int, tuple[str, str | None]] = {
    0: ("uint8", "B"), 1: ("int8", "b"), 2: ("uint16", "H"), 3: ("int16", "h"),
    4: ("uint32", "I"), 5: ("int32", "i"), 6: ("float32", "f"), 7: ("bool", "B"),
    8: ("string", None), 9: ("array", None), 10: ("uint64", "Q"), 11: ("int64", "q"),
    12: ("float64", "d"),
}
STRING, ARRAY, UINT32, BOOL = 8, 9, 4, 7


# The ggml type table of the GGUF format: code -> (name, values per block, bytes per block).
# Facts of the format (llama.cpp's ggml.h / the `gguf` package's GGML_QUANT_SIZES, which a test
# compares with this table); kept here so that reading a header never imports the gguf package,
# which is only needed to dequantize blocks.
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292), 16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
}


@cache
def ggml_types() -> dict[int, tuple[str, DType]]:
    """ggml type code -> (ggml name, canonical dtype); block types are registered with their
    decoder on first use."""
    out: dict[int, tuple[str, DType]] = {}
    for code, (name, block_size, type_size) in GGML_TYPES.items():
        if name in ELEMENT_TYPES:
            dt = DTYPES[ELEMENT_TYPES[name]]
        else:
            dt = register_block_dtype(f"gguf.{name.lower()}", block_size, type_size)
            register_decoder(dt.name, dequantize)
        out[code] = (name, dt)
    return out


def sniff(p: Probe) -> bool:
    return p.head[:4] == MAGIC


class _Parser:
    """Bounded reads of GGUF primitives over a `Source` in one byte order."""

    def __init__(self, src: Source, order: str, limits: Limits) -> None:
        self.src = src
        self.order = order
        self.lim = limits

    def fail(self, message: str, offset: int | None = None) -> FormatError:
        return self.src.fail(f"gguf: {message}", offset)

    def limit(self, message: str) -> LimitError:
        return LimitError(self.src.path, f"gguf: {message}", offset=self.src.pos)

    def scalar(self, code: str, what: str) -> Any:
        return struct.unpack(self.order + code, self.read(struct.calcsize(code), what))[0]

    def read(self, n: int, what: str) -> memoryview:
        return self.src.read(n, f"gguf: {what}")

    def u32(self, what: str) -> int:
        return int(self.scalar("I", what))

    def u64(self, what: str) -> int:
        return int(self.scalar("Q", what))

    def raw_string(self, what: str) -> memoryview:
        n = self.u64(f"{what} length")
        if n > self.lim.max_string_bytes:
            raise self.limit(f"{what} length {n} exceeds the limit of {self.lim.max_string_bytes} bytes")
        return self.read(n, what)

    def strict_string(self, what: str) -> str:
        at = self.src.pos
        raw = self.raw_string(what)
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not valid UTF-8", at) from None

    def text(self, what: str) -> str:
        return str(self.raw_string(what), "utf-8", errors="replace")

    def count(self, n: int, item_bytes: int, cap: int, what: str) -> int:
        """Check a declared count against its limit and the bytes that remain, before any loop."""
        if n > cap:
            raise self.limit(f"{what} {n} exceeds the limit of {cap}")
        if n * item_bytes > self.src.remaining:
            raise self.limit(f"{what} {n} needs at least {n * item_bytes} bytes but only "
                             f"{self.src.remaining} remain")
        return n

    def value(self, vtype: int, depth: int, what: str) -> Any:
        if vtype == STRING:
            return self.text(what)
        if vtype == ARRAY:
            return self.array(depth + 1, what)
        if vtype not in VALUE_TYPES:
            raise self.fail(f"{what} has unknown value type {vtype}", self.src.pos - 4)
        v = self.scalar(VALUE_TYPES[vtype][1] or "", what)
        return bool(v) if vtype == BOOL else v

    def array(self, depth: int, what: str) -> Any:
        if depth > self.lim.max_json_depth:
            raise self.limit(f"{what}: arrays nested deeper than {self.lim.max_json_depth}")
        itype = self.u32(f"{what} item type")
        if itype not in VALUE_TYPES:
            raise self.fail(f"{what} has unknown item type {itype}", self.src.pos - 4)
        n = self.u64(f"{what} item count")
        if VALUE_TYPES[itype][1] is not None:
            return self.numbers(itype, n, what)
        self.count(n, 8 if itype == STRING else 12, self.lim.max_array_items, f"{what} item count")
        keep = n if n <= MAX_LISTED else HEAD_ITEMS
        items = [self.value(itype, depth, f"{what}[{i}]") for i in range(keep)]
        for i in range(keep, n):    # bounded above: each item takes at least 8 bytes
            if itype == STRING:
                self.raw_string(f"{what}[{i}]")
            else:
                self.value(itype, depth, f"{what}[{i}]")
        if n <= MAX_LISTED:
            return items
        return {"type": VALUE_TYPES[itype][0], "length": n, "head": items}

    def numbers(self, itype: int, n: int, what: str) -> Any:
        name, code = VALUE_TYPES[itype]
        size = struct.calcsize(code or "")
        self.count(n, size, self.lim.max_array_items, f"{what} item count")
        import numpy as np
        dt = np.dtype(self.order + (code or ""))
        arr = np.frombuffer(self.read(n * size, what), dtype=dt, count=n)
        if itype == BOOL:
            arr = arr != 0
        if n <= MAX_LISTED:
            return arr.tolist()
        return {"type": name, "length": n, "head": arr[:HEAD_ITEMS].tolist()}


def _byte_order(raw: bytes) -> tuple[str, int]:
    le = int.from_bytes(raw, "little")
    if le & 0xFFFF == 0 and le:
        return ">", int.from_bytes(raw, "big")
    return "<", le


def _header(src: Source, lim: Limits) -> tuple[_Parser, int, int, int]:
    if src.peek(4) != MAGIC:
        raise src.fail("gguf: magic is not b'GGUF'", 0)
    src.read(4, "gguf: magic")
    order, version = _byte_order(bytes(src.read(4, "gguf: version")))
    if version not in VERSIONS:
        raise UnsupportedError(src.path, f"gguf: version {version} is not supported (only 2 and 3)",
                               offset=4)
    p = _Parser(src, order, lim)
    n_tensors = p.u64("tensor count")
    n_kv = p.u64("key/value count")
    p.count(n_tensors, MIN_INFO_BYTES, lim.max_tensors, "tensor count")
    p.count(n_kv, MIN_KV_BYTES, lim.max_metadata_entries, "key/value count")
    least = n_kv * MIN_KV_BYTES + n_tensors * MIN_INFO_BYTES
    if least > src.remaining:
        raise p.limit(f"{n_kv} key/value pairs and {n_tensors} tensor infos need at least {least} "
                      f"bytes but only {src.remaining} remain")
    return p, version, n_tensors, n_kv


@dataclass
class _Metadata:
    """The key/value section: values (arrays already summarised), value types, offsets."""

    values: dict[str, Any] = field(default_factory=dict)
    types: dict[str, int] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)


def _metadata(p: _Parser, n_kv: int) -> _Metadata:
    md = _Metadata()
    for i in range(n_kv):
        at = p.src.pos
        key = p.strict_string(f"key #{i}")
        if key in md.values:
            raise p.fail(f"duplicate metadata key {key!r}", at)
        vtype = p.u32(f"type of {key!r}")
        md.values[key] = p.value(vtype, 0, key)
        md.types[key] = vtype
        md.offsets[key] = at
        if p.src.pos > p.lim.max_header_bytes:
            raise p.limit(f"metadata exceeds the header limit of {p.lim.max_header_bytes} bytes")
    return md


def _alignment(p: _Parser, md: _Metadata) -> int:
    key = "general.alignment"
    if key not in md.values:
        return DEFAULT_ALIGNMENT
    if md.types[key] != UINT32:
        raise p.fail(f"{key} must be a uint32, not {VALUE_TYPES[md.types[key]][0]}", md.offsets[key])
    a = md.values[key]
    if a <= 0 or a & (a - 1):
        raise p.fail(f"{key} {a} is not a non-zero power of two", md.offsets[key])
    return int(a)


class _Info(NamedTuple):
    """One tensor entry of a GGUF header."""

    name: str
    ggml: str
    dtype: DType
    shape: tuple[int, ...]
    offset: int          # relative to the data section
    at: int              # where the info starts in the file

    @property
    def nbytes(self) -> int:
        return self.dtype.nbytes(math.prod(self.shape))


def _dims(p: _Parser, name: str) -> tuple[int, ...]:
    n_dims = p.u32(f"n_dims of tensor {name!r}")
    if n_dims > min(GGML_MAX_DIMS, p.lim.max_dims):
        raise p.fail(f"tensor {name!r} has n_dims {n_dims}, more than GGML_MAX_DIMS "
                     f"({min(GGML_MAX_DIMS, p.lim.max_dims)})", p.src.pos - 4)
    ne = [p.u64(f"dimension {j} of tensor {name!r}") for j in range(n_dims)]
    shape = check_shape(p.src.path, ne[::-1], p.lim, f"gguf: tensor {name!r}")
    return shape


def _tensor_info(p: _Parser, names: set[str], i: int) -> _Info:
    at = p.src.pos
    name = p.strict_string(f"name of tensor #{i}")
    if name in names:
        raise p.fail(f"duplicate tensor name {name!r}", at)
    names.add(name)
    shape = _dims(p, name)
    code = p.u32(f"ggml type of tensor {name!r}")
    if code not in ggml_types():
        raise p.fail(f"tensor {name!r} has unknown ggml type {code}", p.src.pos - 4)
    ggml, dt = ggml_types()[code]
    if dt.is_block and (not shape or shape[-1] % dt.block_size):
        row = shape[-1] if shape else 1
        raise p.fail(f"tensor {name!r}: row length {row} is not a multiple of the {ggml} block "
                     f"size {dt.block_size}", at)
    offset = p.u64(f"offset of tensor {name!r}")
    return _Info(name, ggml, dt, shape, offset, at)


def _tensor_infos(p: _Parser, n_tensors: int) -> list[_Info]:
    names: set[str] = set()
    infos = [_tensor_info(p, names, i) for i in range(n_tensors)]
    if p.src.pos > p.lim.max_header_bytes:
        raise p.limit(f"header exceeds the limit of {p.lim.max_header_bytes} bytes")
    return infos


def _check_layout(p: _Parser, infos: list[_Info], alignment: int, data_len: int) -> int:
    """Offsets aligned, in bounds, non-overlapping; returns the bytes between tensors not used."""
    for t in infos:
        if t.offset % alignment:
            raise p.fail(f"tensor {t.name!r} offset {t.offset} is not a multiple of the alignment "
                         f"{alignment}", t.at)
        if t.offset + t.nbytes > data_len:
            raise p.fail(f"tensor {t.name!r} bytes {t.offset}..{t.offset + t.nbytes} run past the "
                         f"end of the {data_len}-byte data section (truncated?)", t.at)
    unused, at = 0, 0
    for t in sorted(infos, key=lambda t: (t.offset, t.nbytes)):
        if t.offset < at:
            raise p.fail(f"tensor {t.name!r} at {t.offset} overlaps the tensor ending at {at}", t.at)
        unused += max(0, t.offset - _align(at, alignment))
        at = t.offset + t.nbytes
    return unused


def _align(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


def _doc_value(v: Any) -> Any:
    if isinstance(v, str) and len(v) > MAX_DOC_STRING:
        return {"type": "string", "length": len(v), "head": v[:1024]}
    return v


def _read(p: Probe) -> ModelArtifact:
    path = p.path
    src = Source.open(path)
    parser, version, n_tensors, n_kv = _header(src, p.limits)
    md = _metadata(parser, n_kv)
    alignment = _alignment(parser, md)
    infos = _tensor_infos(parser, n_tensors)
    data_start = _align(src.pos, alignment)
    if data_start > len(src) and infos:
        raise parser.fail(f"data section would start at {data_start}, past the end of the "
                          f"{len(src)}-byte file (truncated?)")
    data_len = max(0, len(src) - data_start)
    unused = _check_layout(parser, infos, alignment, data_len)
    art = ModelArtifact(path=path, format="gguf", files=[path])
    art.metadata["gguf"] = {k: _doc_value(v) for k, v in md.values.items()}
    art.metadata["gguf_file"] = {
        "version": version, "byteorder": "big" if parser.order == ">" else "little",
        "alignment": alignment, "tensor_count": n_tensors, "kv_count": n_kv,
        "data_offset": data_start, "unused_bytes_between_tensors": unused,
    }
    _observe(art, md, infos, alignment, data_start, data_len)
    for t in infos:
        art.tensors.append(record_from_file(t.name, t.dtype, t.shape, path, data_start + t.offset,
                                            byteorder=parser.order, ggml_type=t.ggml))
    return art


def _observe(art: ModelArtifact, md: _Metadata, infos: list[_Info], alignment: int,
             data_start: int, data_len: int) -> None:
    for key, v in md.values.items():
        if (key == TEMPLATE_KEY or key.startswith(TEMPLATE_KEY + ".")) and isinstance(v, str):
            art.observe("template", key, art.path, offset=md.offsets[key], text=v)
    end = _align(max((t.offset + t.nbytes for t in infos), default=0), alignment)
    if data_len > end:
        trailing(art, art.path, map_file(art.path), data_start + end, what="the last tensor")


def read(p: Probe) -> ModelArtifact:
    try:
        return _read(p)
    except (struct.error, ValueError, OverflowError, IndexError, KeyError) as exc:
        raise FormatError(p.path, f"gguf: malformed file ({type(exc).__name__}: {exc})") from None


def dequantize(rec: TensorRecord) -> np.ndarray:
    """The tensor's values as float32 in its row-major shape (blocks decoded by `gguf.quants`)."""
    import gguf.quants
    import numpy as np
    from gguf.constants import GGMLQuantizationType

    where = rec.span.file if rec.span else None
    name = rec.attrs.get("ggml_type")
    if not isinstance(name, str) or name not in GGMLQuantizationType.__members__:
        raise UnsupportedError(where, f"gguf: tensor {rec.name!r} has no known ggml type")
    if not rec.dtype.is_block:
        return np.asarray(rec.read(), dtype=np.float32)
    if rec.byteorder != "<":
        raise UnsupportedError(where, f"gguf: cannot decode big-endian {name} blocks of {rec.name!r}")
    if rec.numel == 0:
        return np.zeros(rec.shape, dtype=np.float32)
    dt = rec.dtype
    rows = rec.read().reshape(*rec.shape[:-1], rec.shape[-1] // dt.block_size * dt.block_bytes)
    try:
        out = gguf.quants.dequantize(rows, GGMLQuantizationType[name])
    except NotImplementedError:
        raise UnsupportedError(where, f"gguf: the gguf package cannot decode {name} "
                               f"(tensor {rec.name!r})") from None
    return np.asarray(out, dtype=np.float32).reshape(rec.shape)


READERS = [Reader("gguf", sniff, read, "GGUF (llama.cpp / ggml)")]
