"""The canonical dtype table shared by every format.

A dtype is either an element type (one value per `itemsize` bytes) or a block type (a quantized
block of `block_size` values stored in `block_bytes` bytes, kept as such).
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np


@dataclass(frozen=True)
class DType:
    name: str
    kind: str                 # "bool" | "int" | "uint" | "float" | "complex" | "block"
    bits: int                 # bits per element (block: bits per block)
    numpy: np.dtype | None    # little-endian numpy dtype for element types
    block_size: int = 1       # values per block (1 for element types)
    block_bytes: int = 0      # bytes per block (block types only)

    @property
    def is_block(self) -> bool:
        return self.kind == "block"

    def nbytes(self, numel: int) -> int:
        """Bytes for `numel` values; block types require a whole number of blocks."""
        if self.is_block:
            if numel % self.block_size:
                raise ValueError(f"{numel} values are not a whole number of {self.name} blocks")
            return numel // self.block_size * self.block_bytes
        return numel * self.bits // 8


def _e(name: str, kind: str, np_dtype: object) -> DType:
    dt = np.dtype(np_dtype).newbyteorder("<") if np.dtype(np_dtype).itemsize > 1 else np.dtype(np_dtype)
    return DType(name, kind, dt.itemsize * 8, dt)


_ELEMENT = [
    _e("bool", "bool", np.bool_),
    _e("uint8", "uint", np.uint8), _e("int8", "int", np.int8),
    _e("uint16", "uint", np.uint16), _e("int16", "int", np.int16),
    _e("uint32", "uint", np.uint32), _e("int32", "int", np.int32),
    _e("uint64", "uint", np.uint64), _e("int64", "int", np.int64),
    _e("float16", "float", np.float16), _e("bfloat16", "float", ml_dtypes.bfloat16),
    _e("float32", "float", np.float32), _e("float64", "float", np.float64),
    _e("float8_e4m3fn", "float", ml_dtypes.float8_e4m3fn),
    _e("float8_e4m3fnuz", "float", ml_dtypes.float8_e4m3fnuz),
    _e("float8_e5m2", "float", ml_dtypes.float8_e5m2),
    _e("float8_e5m2fnuz", "float", ml_dtypes.float8_e5m2fnuz),
    _e("float8_e8m0fnu", "float", ml_dtypes.float8_e8m0fnu),
    _e("complex64", "complex", np.complex64), _e("complex128", "complex", np.complex128),
]

DTYPES: dict[str, DType] = {d.name: d for d in _ELEMENT}


def register_block_dtype(name: str, block_size: int, block_bytes: int) -> DType:
    """Add a quantized block type (e.g. `gguf.q4_0`) to the table; idempotent."""
    existing = DTYPES.get(name)
    if existing is not None:
        return existing
    dt = DType(name, "block", block_bytes * 8, None, block_size, block_bytes)
    DTYPES[name] = dt
    return dt


def dtype(name: str) -> DType:
    return DTYPES[name]


_BY_NUMPY = {d.numpy.newbyteorder("<") if d.numpy is not None else None: d for d in _ELEMENT}


def from_numpy(dt: np.dtype) -> DType | None:
    """The canonical dtype of a numpy dtype of either byte order, or None if it has none."""
    key = dt.newbyteorder("<") if dt.itemsize > 1 else dt
    return _BY_NUMPY.get(key)
