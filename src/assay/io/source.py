"""Bounded reads over a memory-mapped file or an in-memory buffer.

Every length read from the file passes through `need` before it is used, so a hostile count
becomes a `LimitError` naming the file and offset instead of a huge allocation or a hang."""

from __future__ import annotations

import os
import struct

from assay.errors import FormatError, LimitError
from assay.model.tensor import map_file


class Source:
    """A read-only byte buffer with a cursor and bounds checks.

    `path` names the file for messages; `member` the archive member, if the bytes are one."""

    def __init__(self, data: memoryview | bytes, path: str, member: str | None = None,
                 base: int = 0) -> None:
        self.data = memoryview(data) if not isinstance(data, memoryview) else data
        self.path = path
        self.member = member
        self.base = base          # absolute offset of data[0] in the file (for byte spans)
        self.pos = 0

    @classmethod
    def open(cls, path: str) -> Source:
        try:
            return cls(map_file(path), path)
        except OSError as exc:
            raise FormatError(path, f"cannot read: {exc.strerror or exc}") from None

    def __len__(self) -> int:
        return len(self.data)

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def fail(self, message: str, offset: int | None = None) -> FormatError:
        return FormatError(self.path, message, member=self.member,
                           offset=self.pos if offset is None else offset)

    def need(self, n: int, what: str) -> None:
        if n < 0 or n > self.remaining:
            raise LimitError(self.path, f"{what} needs {n} bytes but only {self.remaining} remain",
                             member=self.member, offset=self.pos)

    def read(self, n: int, what: str = "data") -> memoryview:
        self.need(n, what)
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str = "field") -> tuple:
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.read(size, what))

    def u8(self, what: str = "byte") -> int:
        return self.read(1, what)[0]

    def u32(self, what: str = "u32") -> int:
        return int.from_bytes(self.read(4, what), "little")

    def u64(self, what: str = "u64") -> int:
        return int.from_bytes(self.read(8, what), "little")

    def peek(self, n: int) -> bytes:
        return bytes(self.data[self.pos:self.pos + n])

    def seek(self, pos: int) -> None:
        if not 0 <= pos <= len(self.data):
            raise self.fail(f"offset {pos} is outside the {len(self.data)}-byte input")
        self.pos = pos


def file_size(path: str) -> int:
    return os.stat(path).st_size


def head(path: str, n: int = 512) -> bytes:
    """The first `n` bytes of a file, for sniffing."""
    with open(path, "rb") as fh:
        return fh.read(n)
