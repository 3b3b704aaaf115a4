"""One tensor of the in-memory model: name, canonical dtype, shape, where its bytes are, lazy read."""

from __future__ import annotations

import math
import mmap
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from assay.model.dtypes import DType

if TYPE_CHECKING:
    import numpy as np


@lru_cache(maxsize=256)
def _mapped(path: str, size: int, mtime_ns: int) -> mmap.mmap:
    with open(path, "rb") as fh:
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


def map_file(path: str) -> memoryview | bytes:
    """A read-only memory map of `path` (empty bytes for an empty file)."""
    st = os.stat(path)
    if st.st_size == 0:
        return b""
    return memoryview(_mapped(os.path.abspath(path), st.st_size, st.st_mtime_ns))


def c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Element strides of a C-order (row-major) array of this shape."""
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= max(d, 1)
    return tuple(reversed(out))


def f_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Element strides of a Fortran-order (column-major) array of this shape."""
    out, acc = [], 1
    for d in shape:
        out.append(acc)
        acc *= max(d, 1)
    return tuple(out)


# Decoders for quantized block types, registered by the reader that knows the format
# (e.g. the GGUF reader for `gguf.*` block dtypes): dtype name -> record -> float32 values.
_DECODERS: dict[str, Callable[[TensorRecord], np.ndarray]] = {}


def register_decoder(dtype_name: str, fn: Callable[[TensorRecord], np.ndarray]) -> None:
    _DECODERS[dtype_name] = fn


def _file_range(path: str, offset: int, length: int, chunk: int) -> Iterator[memoryview]:
    """Slices of the file's memory map; each is released from this process once consumed
    (MADV_DONTNEED keeps the page cache but not our resident set), so hashing a large model
    keeps memory flat without copying."""
    st = os.stat(path)
    mm = _mapped(os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if offset + length > len(mm):
        raise OSError(f"{path}: file shrank while being read")
    view = memoryview(mm)
    page = mmap.PAGESIZE
    pos, end = offset, offset + length
    while pos < end:
        stop = min(end, pos + chunk)
        yield view[pos:stop]
        lo, hi = pos - pos % page, stop - stop % page
        if hi > lo and hasattr(mm, "madvise"):
            mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
        pos = stop


@dataclass(frozen=True)
class ByteSpan:
    """Where a tensor's storage lives: a file (and archive member, if any) and a byte range.

    `offset` is absolute in `file`; for a compressed member it is the offset inside the
    decompressed member and `in_memory` is true."""

    file: str
    offset: int
    length: int
    member: str | None = None
    in_memory: bool = False


@dataclass(frozen=True)
class TensorRecord:
    """One tensor: name, canonical dtype, shape, where its bytes are; `read()` maps them lazily."""
    name: str
    dtype: DType
    shape: tuple[int, ...]
    span: ByteSpan | None
    # How to get the storage bytes: returns a buffer holding at least the tensor's elements.
    loader: Callable[[], memoryview | bytes] = field(repr=False, compare=False)
    # Element strides (None = C order contiguous), element offset into the buffer, byte order.
    strides: tuple[int, ...] | None = None
    element_offset: int = 0
    byteorder: str = "<"
    attrs: dict[str, object] = field(default_factory=dict, compare=False)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.dtype.nbytes(self.numel)

    def read(self) -> np.ndarray:
        """The tensor as a read-only NumPy array over the mapped (or decoded) storage.

        Element types come back in their own dtype (bfloat16 and float8 via ml_dtypes), in the
        file's byte order and strides; block types come back as raw uint8 blocks of shape
        (n_blocks, block_bytes)."""
        import numpy as np

        buf = self.loader()
        dt = self.dtype
        if dt.is_block:
            nblocks = self.numel // dt.block_size
            start = self.element_offset
            arr = np.frombuffer(buf, dtype=np.uint8, count=nblocks * dt.block_bytes, offset=start)
            return arr.reshape(nblocks, dt.block_bytes)
        assert dt.numpy is not None
        npdt = dt.numpy.newbyteorder(self.byteorder) if dt.numpy.itemsize > 1 else dt.numpy
        item = npdt.itemsize
        if self.strides is None or self.numel == 0:
            arr = np.frombuffer(buf, dtype=npdt, count=self.numel, offset=self.element_offset * item)
            return arr.reshape(self.shape)
        base = np.frombuffer(buf, dtype=npdt)
        return np.lib.stride_tricks.as_strided(
            base[self.element_offset:], shape=self.shape,
            strides=tuple(s * item for s in self.strides), writeable=False)

    def can_decode(self) -> bool:
        return not self.dtype.is_block or self.dtype.name in _DECODERS

    def values(self, dtype: type | None = None) -> np.ndarray:
        """The values as floats in the row-major shape (block types decoded by their reader).

        Raises LookupError when no decoder is registered for a block type."""
        import numpy as np

        if self.dtype.is_block:
            fn = _DECODERS.get(self.dtype.name)
            if fn is None:
                raise LookupError(f"no decoder for {self.dtype.name}")
            return np.asarray(fn(self), dtype=dtype or np.float32)
        arr = self.read()
        if arr.dtype.kind == "c":
            arr = arr.real
        return arr.astype(dtype or np.float32)

    def canonical_chunks(self, chunk: int = 16 << 20) -> Iterator[memoryview]:
        """The canonical bytes (little-endian, C order; raw blocks) in pieces of about `chunk`.

        Contiguous little-endian data on disk is streamed through one reusable buffer, so
        resident memory stays flat; other layouts are converted a slab of rows at a time."""
        if self.numel == 0:
            return
        s = self.span
        item = 1 if self.dtype.is_block else self.dtype.bits // 8
        if s is not None and not s.in_memory and self.strides is None and \
                (self.byteorder == "<" or item == 1):
            yield from _file_range(s.file, s.offset + self.element_offset * item, self.nbytes, chunk)
            return
        import numpy as np

        arr = self.read()
        if self.dtype.is_block or (arr.dtype.byteorder != ">" and arr.flags.c_contiguous):
            yield memoryview(np.ascontiguousarray(arr).reshape(-1).view(np.uint8))
            return
        if arr.ndim == 0:
            arr = arr.reshape(1)
        rows = max(1, chunk // max(1, arr[0].nbytes if arr.shape[0] else 1))
        for i in range(0, arr.shape[0], rows):
            piece = arr[i:i + rows]
            if piece.dtype.byteorder == ">":
                piece = piece.astype(piece.dtype.newbyteorder("<"))
            yield memoryview(np.ascontiguousarray(piece).reshape(-1).view(np.uint8))

    def release(self) -> None:
        """Drop this tensor's pages from the process's resident set (the page cache keeps them):
        lets a pass over a large model keep its memory flat."""
        s = self.span
        if s is None or s.in_memory or not s.length:
            return
        try:
            st = os.stat(s.file)
        except OSError:
            return
        mm = _mapped(os.path.abspath(s.file), st.st_size, st.st_mtime_ns)
        page = mmap.PAGESIZE
        lo = s.offset - s.offset % page
        hi = min(len(mm), s.offset + s.length)
        hi -= hi % page
        if hi > lo and hasattr(mm, "madvise"):
            mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)

    def canonical_bytes(self) -> bytes:
        """Little-endian, C-order bytes of the values (raw blocks for block types)."""
        import numpy as np

        arr = self.read()
        if not self.dtype.is_block and arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        return np.ascontiguousarray(arr).tobytes()
