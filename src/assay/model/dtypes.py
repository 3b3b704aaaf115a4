"""The canonical dtype table shared by every format.

A dtype is either an element type (one value per `bits // 8` bytes) or a block type (a quantized
block of `block_size` values stored in `block_bytes` bytes, kept as such). NumPy (and ml_dtypes
for bfloat16 and float8) are imported only when a NumPy dtype is first asked for, so reading a
header never pays for them: the types NumPy files and pickles name (`'<f4'`, `numpy.dtype('f4')`)
are read as `ArrayType` values and mapped with `from_array_type`.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

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
    """One canonical dtype: an element type, or a quantized block type kept as blocks."""

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
    key = dt.newbyteorder("<") if dt.itemsize > 1 else dt
    return _by_numpy("ml_dtypes" in sys.modules).get(key)


# -- NumPy type strings, read without NumPy -------------------------------------------------------
_NATIVE = "<" if sys.byteorder == "little" else ">"
_SIZES = {"b": (1,), "i": (1, 2, 4, 8), "u": (1, 2, 4, 8), "f": (2, 4, 8), "c": (8, 16), "M": (8,),
          "m": (8,)}
_NAMES = {"b": "bool", "i": "int", "u": "uint", "f": "float", "c": "complex", "O": "object",
          "M": "datetime64", "m": "timedelta64"}
_UNITS = ("Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as")
_TYPESTR = re.compile(r"([<>|=]?)([biufcOSUVMm])([1-9][0-9]{0,8})?(?:\[([A-Za-z]{1,2})\])?")


class Field(NamedTuple):
    """One field of a structured type: its name, type and byte offset within a record."""

    name: str
    type: ArrayType
    offset: int


@dataclass(frozen=True)
class ArrayType:
    """A NumPy array type as NumPy's type strings spell it ('<f4', '|b1', '<U10', '<M8[ns]'), or
    a structured type (`fields`), described without importing NumPy.

    `kind` is NumPy's kind character (b i u f c O S U V M m), `byteorder` is '<', '>' or '|' (not
    applicable; never '=': the native order is resolved). `str()` is what `str(np.dtype)` says.
    """

    kind: str
    itemsize: int
    byteorder: str = "|"
    unit: str = ""                          # datetime/timedelta unit, '[ns]'; '' when generic
    fields: tuple[Field, ...] | None = None
    hasobject: bool = False
    text: str = ""                          # str() as NumPy gave it, for types read by NumPy

    @property
    def names(self) -> tuple[str, ...] | None:
        return None if self.fields is None else tuple(f.name for f in self.fields)

    @property
    def typestr(self) -> str:
        """NumPy's `dtype.str`: '<f4', '|b1', '|O', '<U10', '|V64' for a structured type."""
        if self.kind == "O":
            return "|O"
        count = self.itemsize // 4 if self.kind == "U" else self.itemsize
        return f"{self.byteorder}{self.kind}{count}{self.unit}"

    def newbyteorder(self, order: str) -> ArrayType:
        """The same type in byte order '<' or '>' (unchanged where byte order does not apply)."""
        if self.byteorder == "|" or self.fields is not None or order not in ("<", ">"):
            return self
        return replace(self, byteorder=order, text="")

    @property
    def numpy(self) -> np.dtype:
        """The NumPy dtype this describes (imports NumPy)."""
        import numpy as np
        if self.fields is None:
            return np.dtype(self.typestr)
        return np.dtype({"names": [f.name for f in self.fields],
                         "formats": [f.type.numpy for f in self.fields],
                         "offsets": [f.offset for f in self.fields], "itemsize": self.itemsize})

    def __str__(self) -> str:
        if self.text:
            return self.text
        if self.fields is not None:
            return self._struct()
        if self.kind in "SUV" or self.byteorder not in ("|", _NATIVE):
            return self.typestr
        if self.kind in "bOMm":
            return _NAMES[self.kind] + self.unit
        return f"{_NAMES[self.kind]}{self.itemsize * 8}"

    def _short(self) -> str:
        """NumPy's short construction form of a field type: 'u1', '<f8', '?', 'O', 'S5'."""
        if self.fields is not None:
            return self._struct()
        if self.kind in "bO":
            return "'?'" if self.kind == "b" else "'O'"
        return f"'{self.typestr.lstrip('|')}'"

    def _struct(self) -> str:
        assert self.fields is not None
        end = 0
        packed = True
        for f in self.fields:
            packed = packed and f.offset == end
            end = f.offset + f.type.itemsize
        if packed and end == self.itemsize:
            return "[" + ", ".join(f"({f.name!r}, {f.type._short()})" for f in self.fields) + "]"
        return (f"{{'names': [{', '.join(repr(f.name) for f in self.fields)}], "
                f"'formats': [{', '.join(f.type._short() for f in self.fields)}], "
                f"'offsets': [{', '.join(str(f.offset) for f in self.fields)}], "
                f"'itemsize': {self.itemsize}}}")


def parse_typestr(s: str) -> ArrayType | None:
    """An `ArrayType` from a plain NumPy type string ('<f4', 'f8', '|b1', 'O', '<U10', '|S5',
    '<M8[ns]'), or None for anything else (which NumPy may still understand)."""
    m = _TYPESTR.fullmatch(s)
    if m is None:
        return None
    order, kind, digits, unit = m.groups()
    if kind == "O":
        return ArrayType("O", 8, hasobject=True) if digits in (None, "8") and unit is None else None
    if digits is None or (unit is not None and (kind not in "Mm" or unit not in _UNITS)):
        return None
    n = int(digits)
    if kind in "SV":
        return ArrayType(kind, n)
    if kind != "U" and n not in _SIZES[kind]:
        return None
    size = 4 * n if kind == "U" else n
    if kind == "b" or size == 1:
        order = "|"
    elif order in ("", "=", "|"):
        order = _NATIVE
    return ArrayType(kind, size, order, f"[{unit}]" if unit else "")


def array_type(spec: str) -> ArrayType:
    """The `ArrayType` of a type string; strings `parse_typestr` does not know are given to
    NumPy (imported then), which raises TypeError for a string it does not understand either."""
    t = parse_typestr(spec)
    if t is not None:
        return t
    import numpy as np
    return array_type_of(np.dtype(spec))


def array_type_of(dt: np.dtype) -> ArrayType:
    """The `ArrayType` of a NumPy dtype (a subarray type is described as opaque bytes)."""
    fields = None
    if dt.names is not None and dt.fields is not None:
        fields = tuple(Field(n, array_type_of(dt.fields[n][0]), dt.fields[n][1]) for n in dt.names)
    order = dt.byteorder if dt.byteorder in "<>|" else _NATIVE
    kind = "V" if dt.subdtype is not None else dt.kind
    if kind in "bOSV" or dt.itemsize == 1:
        order = "|"
    unit = dt.str[dt.str.index("["):] if kind in "Mm" and "[" in dt.str else ""
    return ArrayType(kind, dt.itemsize, order, unit, fields, bool(dt.hasobject), str(dt))


_BY_KIND = {d.np_code[1:]: d for d in _ELEMENT if d.np_code and not d.np_code.startswith("ml:")}


def from_array_type(t: ArrayType) -> DType | None:
    """The canonical dtype of an `ArrayType` of either byte order, or None if it has none."""
    if t.fields is not None or t.hasobject or t.kind not in "biufc":
        return None
    return _BY_KIND.get(f"{t.kind}{t.itemsize}")
