"""safetensors, parsed by assay itself from the published format.

Layout: u64 little-endian N, then N bytes of UTF-8 JSON (may be padded with spaces), then the
byte buffer. The JSON maps tensor names to {dtype, shape, data_offsets: [begin, end]} relative
to the buffer, plus an optional "__metadata__" map of strings to strings. Rules checked, each
with its own message: N fits the file and the limit; the header is a JSON object without
duplicate keys; dtype names are known; shapes are non-negative; end - begin equals the size
implied by dtype and shape; offsets are sorted, start at 0, contiguous, do not overlap, and
cover the buffer exactly.
"""

from __future__ import annotations

import json
import math
from typing import Any

from assay.errors import FormatError, LimitError, UnsupportedError
from assay.formats.base import Probe, Reader, check_shape, record_from_file, trailing
from assay.model.artifact import ModelArtifact
from assay.model.dtypes import DTYPES
from assay.model.tensor import map_file

DTYPE_NAMES = {
    "BOOL": "bool", "U8": "uint8", "I8": "int8", "U16": "uint16", "I16": "int16",
    "U32": "uint32", "I32": "int32", "U64": "uint64", "I64": "int64",
    "F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "F8_E8M0": "float8_e8m0fnu",
    "C64": "complex64",
}
UNSUPPORTED = {"F4", "F6_E2M3", "F6_E3M2"}


def sniff(p: Probe) -> bool:
    if len(p.head) < 9:
        return False
    n = int.from_bytes(p.head[:8], "little")
    # A JSON object follows the length; a length past the end is still ours (truncated file).
    # A plausible length followed by JSON-looking text is ours too (a broken header).
    if 2 <= n and p.head[8:9] == b"{" and p.head[9:10] in (b'"', b"}", b" ", b"\n"):
        return True
    return 2 <= n <= p.size - 8 and p.head[8:9] in (b"{", b"[", b'"') and n < 1 << 27


def _no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def read(p: Probe) -> ModelArtifact:
    path, size, lim = p.path, p.size, p.limits
    if size < 8:
        raise FormatError(path, "safetensors: file shorter than the 8-byte header length")
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        if n > lim.max_header_bytes:
            raise LimitError(path, f"safetensors: header length {n} exceeds the limit of "
                             f"{lim.max_header_bytes} bytes", offset=0)
        if n > size - 8:
            raise FormatError(path, f"safetensors: header length {n} runs past the end of the "
                              f"{size}-byte file (truncated?)", offset=0)
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_dupes)
    except UnicodeDecodeError:
        raise FormatError(path, "safetensors: header is not valid UTF-8", offset=8) from None
    except ValueError as exc:
        raise FormatError(path, f"safetensors: header is not valid JSON ({exc})", offset=8) from None
    except RecursionError:
        raise FormatError(path, "safetensors: header JSON nested too deeply", offset=8) from None
    if not isinstance(header, dict):
        raise FormatError(path, "safetensors: header is not a JSON object", offset=8)
    art = ModelArtifact(path=path, format="safetensors", files=[path])
    meta = header.pop("__metadata__", None)
    if meta is not None:
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise FormatError(path, "safetensors: __metadata__ must map strings to strings")
        art.metadata["safetensors"] = dict(meta)
        for key in ("chat_template", "tokenizer.chat_template"):
            if key in meta:
                art.observe("template", key, path, offset=8, text=meta[key])
    if len(header) > lim.max_tensors:
        raise LimitError(path, f"safetensors: {len(header)} tensors exceed the limit")
    base = 8 + n
    buffer_len = size - base
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict):
            raise FormatError(path, f"safetensors: entry {name!r} is not an object")
        code = info.get("dtype")
        if code in UNSUPPORTED:
            raise UnsupportedError(path, f"safetensors: tensor {name!r} uses dtype {code}, "
                                   "which assay does not read yet")
        if code not in DTYPE_NAMES:
            raise FormatError(path, f"safetensors: tensor {name!r} has unknown dtype {code!r}")
        dt = DTYPES[DTYPE_NAMES[code]]
        shape = check_shape(path, info.get("shape"), lim, f"safetensors: tensor {name!r}")
        offs = info.get("data_offsets")
        if not (isinstance(offs, list) and len(offs) == 2 and all(
                isinstance(o, int) and not isinstance(o, bool) for o in offs)):
            raise FormatError(path, f"safetensors: tensor {name!r} needs data_offsets [begin, end]")
        begin, end = offs
        if not 0 <= begin <= end:
            raise FormatError(path, f"safetensors: tensor {name!r} has offsets {begin}..{end} "
                              "that are negative or reversed")
        if end - begin != dt.nbytes(math.prod(shape)):
            raise FormatError(path, f"safetensors: tensor {name!r} spans {end - begin} bytes but "
                              f"{code}{list(shape)} needs {dt.nbytes(math.prod(shape))}")
        entries.append((begin, end, name, dt, shape))
    entries.sort(key=lambda e: (e[0], e[1]))
    at = 0
    for begin, end, name, _dt, _shape in entries:
        if begin < at:
            raise FormatError(path, f"safetensors: tensor {name!r} overlaps the previous tensor")
        if begin > at:
            raise FormatError(path, f"safetensors: gap of {begin - at} bytes before tensor {name!r}"
                              " (offsets must be contiguous)")
        at = end
    if at > buffer_len:
        raise FormatError(path, f"safetensors: tensors need {at} bytes of data but the file holds "
                          f"{buffer_len} after the header (truncated?)")
    if at < buffer_len:
        trailing(art, path, map_file(path), base + at, what="the last tensor")
    order = {name: i for i, name in enumerate(header)}
    for begin, _end, name, dt, shape in sorted(entries, key=lambda e: order[e[2]]):
        art.tensors.append(record_from_file(name, dt, shape, path, base + begin))
    return art


READER = Reader("safetensors", sniff, read, "safetensors (Hugging Face)")
