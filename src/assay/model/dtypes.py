"""The canonical dtype table shared by every format.

A dtype is either an element type (one value per `bits // 8` bytes) or a block type (a quantized
block of `block_size` values stored in `block_bytes` bytes, kept as such). NumPy (and ml_dtypes
for bfloat16 and float8) are imported only when a NumPy dtype is first asked for, so reading a
header never pays for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@cache
def _np_dtype(code: str) -> np.dtype:
    import numpy as np
    if code.startswith("ml:"):
        import ml_dtypes
        return np.dtype(getattr(ml_dtypes, code[3:]))
    return np.dtype(code)


@dataclass(frozen=True)
class DType:
    name: str
    kind: str                 # "bool" | "int" | "uint" | "float" | "complex" | "block"
    bits: int                 # bits per element (block: bits per block)
    np_code: str | None       # little-endian NumPy type code ("<f4"), "ml:<name>" for ml_dtypes
    block_size: int = 1       # values per block (1 for element types)
    block_bytes: int = 0      # bytes per block (block types only)

    @property
    def is_block(self) -> bool:
        return self.kind == "block"

    @property
    def itemsize(self) -> int:
        return self.block_bytes if self.is_block else self.bits // 8

    @property
    def numpy(self) -> np.dtype | None:
        """The little-endian NumPy dtype of an element type (None for block types)."""
        return None if self.np_code is None else _np_dtype(self.np_code)

    def nbytes(self, numel: int) -> int:
        """Bytes for `numel` values; block types require a whole number of blocks."""
        if self.is_block:
            if numel % self.block_size:
                raise ValueError(f"{numel} values are not a whole number of {self.name} blocks")
            return numel // self.block_size * self.block_bytes
        return numel * self.bits // 8


_ELEMENT = [
    DType("bool", "bool", 8, "|b1"),
    DType("uint8", "uint", 8, "|u1"), DType("int8", "int", 8, "|i1"),
    DType("uint16", "uint", 16, "<u2"), DType("int16", "int", 16, "<i2"),
    DType("uint32", "uint", 32, "<u4"), DType("int32", "int", 32, "<i4"),
    DType("uint64", "uint", 64, "<u8"), DType("int64", "int", 64, "<i8"),
    DType("float16", "float", 16, "<f2"), DType("bfloat16", "float", 16, "ml:bfloat16"),
    DType("float32", "float", 32, "<f4"), DType("float64", "float", 64, "<f8"),
    DType("float8_e4m3fn", "float", 8, "ml:float8_e4m3fn"),
    DType("float8_e4m3fnuz", "float", 8, "ml:float8_e4m3fnuz"),
    DType("float8_e5m2", "float", 8, "ml:float8_e5m2"),
    DType("float8_e5m2fnuz", "float", 8, "ml:float8_e5m2fnuz"),
    DType("float8_e8m0fnu", "float", 8, "ml:float8_e8m0fnu"),
    DType("complex64", "complex", 64, "<c8"), DType("complex128", "complex", 128, "<c16"),
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


@cache
def _by_numpy(with_ml: bool) -> dict[object, DType]:
    return {d.numpy: d for d in _ELEMENT
            if with_ml or not (d.np_code or "").startswith("ml:")}


def from_numpy(dt: np.dtype) -> DType | None:
    """The canonical dtype of a NumPy dtype of either byte order, or None if it has none.

    ml_dtypes (bfloat16, float8) is imported only if it already is: an array of one of its
    types cannot exist otherwise, and importing it costs a second on a loaded machine."""
    import sys
    key = dt.newbyteorder("<") if dt.itemsize > 1 else dt
    return _by_numpy("ml_dtypes" in sys.modules).get(key)
