"""The Protocol Buffers wire format, read in place.

A `Message` is a table of the fields found in one or more byte ranges of a buffer (normally a
read-only memory map of the whole file): for each field number, its entries in file order, each
a varint value, the position of a fixed-size value, or the byte range of a length-delimited
value. Nothing is copied until a value is asked for, so the `raw_data` of a 1 GB tensor stays a
range of the mapped file, and a nested message is only parsed when it is visited.

The usual protobuf rules apply: a scalar field given more than once takes its last value, a
singular message field given more than once is the merge of all its occurrences (one `Message`
over all their ranges), a repeated numeric field may come packed (one length-delimited run) or
one entry at a time, and a field absent from the bytes has its default. Entries whose wire type
is not the one asked for are ignored, as a protobuf parser keeps them as unknown fields.

Errors (a truncated field, a varint longer than 10 bytes, an invalid wire type, unbalanced
groups) raise `WireError`; the caller turns it into a one-line error naming the file. Fields the
caller never visits are skipped by their length and not validated further.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
MAX_VARINT_BYTES = 10
MAX_GROUP_DEPTH = 64
_U64 = 1 << 64

Buffer = memoryview | bytes


class WireError(ValueError):
    """The bytes are not a valid protobuf message."""


def varint(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    """(value, next position) of the varint at `pos`; `WireError` past `end` or when too long."""
    value = shift = 0
    stop = pos + MAX_VARINT_BYTES
    if stop > end:
        stop = end
    i = pos
    while i < stop:
        b = buf[i]
        value |= (b & 0x7F) << shift
        i += 1
        if b < 0x80:
            return value, i
        shift += 7
    if i - pos >= MAX_VARINT_BYTES:
        raise WireError("varint longer than 10 bytes")
    raise WireError("varint runs past the end of its message")


def signed64(value: int) -> int:
    """A varint read as a two's-complement int64 (how int32 and int64 fields are encoded)."""
    value &= _U64 - 1
    return value - _U64 if value >= 1 << 63 else value


# entry: (wire type, a, b): VARINT (0, value, 0); I64/I32 (wire, position, 0); LEN (2, start, end)
Entry = tuple[int, int, int]


def _skip_group(buf: Buffer, pos: int, end: int, number: int) -> int:
    """Position after the end-group key matching a start group `number`."""
    stack = [number]
    while pos < end:
        key, pos = varint(buf, pos, end)
        wire, num = key & 7, key >> 3
        if wire == VARINT:
            _, pos = varint(buf, pos, end)
        elif wire == I64:
            pos += 8
        elif wire == I32:
            pos += 4
        elif wire == LEN:
            n, pos = varint(buf, pos, end)
            pos += n
        elif wire == SGROUP:
            if len(stack) >= MAX_GROUP_DEPTH:
                raise WireError("groups nested too deeply")
            stack.append(num)
        elif wire == EGROUP:
            if stack.pop() != num:
                raise WireError("end of a group that was not started")
            if not stack:
                return pos
        else:
            raise WireError(f"invalid wire type {wire}")
        if pos > end:
            raise WireError("field runs past the end of its message")
    raise WireError("group is not closed")


def parse(buf: Buffer, start: int, end: int, into: dict[int, list[Entry]]) -> None:
    """Add the fields of the message bytes `buf[start:end]` to `into`. (One-byte keys, values
    and lengths, the common case, are decoded inline: this loop is where a large graph's time
    goes.)"""
    pos = start
    while pos < end:
        key = buf[pos]
        if key < 0x80:
            pos += 1
        else:
            key, pos = varint(buf, pos, end)
        wire, number = key & 7, key >> 3
        if number == 0:
            raise WireError("field number 0")
        if wire == LEN or wire == VARINT:
            if pos >= end:
                raise WireError(f"field {number} runs past the end of its message")
            value = buf[pos]
            if value < 0x80:
                pos += 1
            else:
                value, pos = varint(buf, pos, end)
            if wire == LEN:
                if value > end - pos:
                    raise WireError(f"field {number} needs {value} bytes, {end - pos} left in its message")
                entry = (LEN, pos, pos + value)
                pos += value
            else:
                entry = (VARINT, value, 0)
        elif wire == I32 or wire == I64:
            size = 4 if wire == I32 else 8
            if size > end - pos:
                raise WireError(f"field {number} runs past the end of its message")
            entry = (wire, pos, 0)
            pos += size
        elif wire == SGROUP:
            pos = _skip_group(buf, pos, end, number)
            continue
        else:
            raise WireError(f"invalid wire type {wire} (field {number})")
        got = into.get(number)
        if got is None:
            into[number] = [entry]
        else:
            got.append(entry)


class Message:
    """The fields of one message (see the module's docstring)."""

    __slots__ = ("buf", "fields", "spans")

    def __init__(self, buf: Buffer, spans: list[tuple[int, int]]) -> None:
        self.buf = buf
        self.spans = spans
        self.fields: dict[int, list[Entry]] = {}
        for start, end in spans:
            parse(buf, start, end, self.fields)

    @classmethod
    def whole(cls, buf: Buffer, end: int | None = None) -> Message:
        return cls(buf, [(0, len(buf) if end is None else end)])

    def _entries(self, number: int, wire: int) -> Iterator[Entry]:
        return (e for e in self.fields.get(number, ()) if e[0] == wire)

    def _last(self, number: int, wire: int) -> Entry | None:
        for e in reversed(self.fields.get(number, ())):
            if e[0] == wire:
                return e
        return None

    def has(self, number: int) -> bool:
        return number in self.fields

    def count(self, number: int, wire: int = LEN) -> int:
        return sum(1 for _ in self._entries(number, wire))

    def last_of(self, *numbers: int) -> int | None:
        """Which of these fields (the members of a oneof) appears last in the bytes."""
        best, at = None, -1
        for n in numbers:
            for e in self.fields.get(n, ()):
                if e[1] > at:
                    best, at = n, e[1]
        return best

    # -- scalars --

    def uint(self, number: int, default: int = 0) -> int:
        e = self._last(number, VARINT)
        return default if e is None else e[1]

    def sint(self, number: int, default: int = 0) -> int:
        """An int32 / int64 / enum field."""
        e = self._last(number, VARINT)
        return default if e is None else signed64(e[1])

    def float32(self, number: int, default: float = 0.0) -> float:
        e = self._last(number, I32)
        return default if e is None else struct.unpack_from("<f", self.buf, e[1])[0]

    # -- length-delimited --

    def span(self, number: int) -> tuple[int, int] | None:
        """(start, end) of the last value of a bytes or string field, None when absent."""
        e = self._last(number, LEN)
        return None if e is None else (e[1], e[2])

    def blob(self, number: int) -> bytes:
        e = self._last(number, LEN)
        return b"" if e is None else bytes(self.buf[e[1]:e[2]])

    def text(self, number: int) -> str:
        """A string field; bytes that are not UTF-8 are replaced (a proto2 string may hold any)."""
        e = self._last(number, LEN)
        return "" if e is None else str(self.buf[e[1]:e[2]], "utf-8", "replace")

    def strict_text(self, number: int) -> str:
        """A string field that must be UTF-8 (`UnicodeDecodeError` otherwise)."""
        e = self._last(number, LEN)
        return "" if e is None else str(self.buf[e[1]:e[2]], "utf-8")

    def texts(self, number: int) -> list[str]:
        return [str(self.buf[e[1]:e[2]], "utf-8", "replace") for e in self._entries(number, LEN)]

    def message(self, number: int) -> Message:
        """A singular message field: the merge of all its occurrences (empty when absent)."""
        return Message(self.buf, [(e[1], e[2]) for e in self._entries(number, LEN)])

    def messages(self, number: int) -> Iterator[Message]:
        """A repeated message field, one message per occurrence, parsed as it is reached."""
        for e in self._entries(number, LEN):
            yield Message(self.buf, [(e[1], e[2])])

    # -- repeated numbers (packed or not) --

    def ints(self, number: int, signed: bool = True) -> list[int]:
        """A repeated varint field (int32, int64, uint64, enum), packed runs and single entries."""
        out: list[int] = []
        buf = self.buf
        for wire, a, b in self.fields.get(number, ()):
            if wire == VARINT:
                out.append(a)
            elif wire == LEN:
                pos = a
                while pos < b:
                    v = buf[pos]
                    if v < 0x80:
                        out.append(v)
                        pos += 1
                    else:
                        v, pos = varint(buf, pos, b)
                        out.append(v)
        return [signed64(v) for v in out] if signed else [v & (_U64 - 1) for v in out]

    def fixed(self, number: int, size: int) -> bytes:
        """A repeated fixed-size field (float: 4, double: 8) as its little-endian bytes."""
        wire = I32 if size == 4 else I64
        parts: list[bytes] = []
        for w, a, b in self.fields.get(number, ()):
            if w == wire:
                parts.append(bytes(self.buf[a:a + size]))
            elif w == LEN:
                if (b - a) % size:
                    raise WireError(f"packed field {number} holds {b - a} bytes, not a multiple of {size}")
                parts.append(bytes(self.buf[a:b]))
        return b"".join(parts)
