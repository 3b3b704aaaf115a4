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
is not the one asked for are ignored, as a protobuf parser keeps them as unknown fields. Groups
(a deprecated encoding no current schema uses) are checked and skipped; the table lists each
under the negative of its field number, out of every accessor's way, so a caller can report it.

Errors (a truncated field, a varint longer than 10 bytes, a field number out of range, an
invalid wire type, unbalanced groups) raise `WireError`, which carries the byte offset where
decoding failed and, when the problem is inside one field's value, that field's number; the
caller turns it into a one-line error naming the file. Fields the caller never visits are
skipped by their length and not validated further.

A `BoundedMessage` is a `Message` given a `Budget`: how many field entries (packed values
included) and embedded messages it and every message reached from it may produce, checked
before they are allocated; running out raises `LimitExceeded`, a `WireError`. A plain `Message`
pays nothing for this.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
MAX_VARINT_BYTES = 10
MAX_GROUP_DEPTH = 64
MAX_FIELD_NUMBER = (1 << 29) - 1
MAX_KEY = (MAX_FIELD_NUMBER << 3) | 7
MIN_FIELD_BYTES = 2          # the smallest encoded field: a one-byte key and a one-byte value
_U64 = 1 << 64
_U32 = (1 << 32) - 1
_CONTINUATION = bytes(range(0x80, 0x100))   # varint bytes that are not a varint's last byte

Buffer = memoryview | bytes


class WireError(ValueError):
    """The bytes are not a valid protobuf message: `reason`, the byte `offset` where decoding
    failed (None when unknown), and `field`, the number of the field whose value is bad (None
    when the problem is a key, a wire type or a group)."""

    def __init__(self, reason: str, offset: int | None = None, field: int | None = None) -> None:
        self.reason, self.offset, self.field = reason, offset, field
        super().__init__(reason if field is None else f"field {field}: {reason}")


class LimitExceeded(WireError):
    """A bound was reached: `what` is "fields", "values" (packed values), "messages" or "depth"
    (groups nested deeper than MAX_GROUP_DEPTH)."""

    def __init__(self, what: str, offset: int) -> None:
        self.what = what
        super().__init__(f"too many {what}" if what != "depth" else
                         f"groups nested deeper than {MAX_GROUP_DEPTH}", offset)


class Budget:
    """How many more field entries (packed values included) and embedded messages may be
    parsed; shared by a `BoundedMessage` and every message reached from it."""

    __slots__ = ("fields", "messages")

    def __init__(self, fields: int, messages: int) -> None:
        self.fields, self.messages = fields, messages

    def spend_values(self, n: int, at: int) -> None:
        if n > self.fields:
            raise LimitExceeded("values", at)
        self.fields -= n

    def spend_messages(self, n: int, at: int) -> None:
        if n > self.messages:
            raise LimitExceeded("messages", at)
        self.messages -= n


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
        raise WireError(f"varint longer than {MAX_VARINT_BYTES} bytes", pos)
    raise WireError("varint runs past the end of its message", pos)


def _key(buf: Buffer, pos: int, end: int) -> tuple[int, int, int]:
    """(field number, wire type, next position) of the key at `pos`; end-group keys included,
    invalid wire types refused."""
    key, nxt = varint(buf, pos, end)
    if key > MAX_KEY or key < 8 or key & 7 > 5:
        raise _bad_key(key, pos)
    return key >> 3, key & 7, nxt


def _bad_key(key: int, at: int) -> WireError:
    """The error for a key whose field number or wire type is invalid (key at offset `at`)."""
    number, wire = key >> 3, key & 7
    if key > MAX_KEY or number == 0:
        return WireError(f"field number {number} is out of range", at)
    what = "a stray end-group" if wire == EGROUP else "invalid"
    return WireError(f"field {number} has {what} wire type {wire}", at)


def _overrun(buf: Buffer, pos: int, end: int, length: int, number: int) -> WireError:
    """The error for a length running past `end`; `pos` is just after the length varint, whose
    start is found by walking back over its continuation bytes (the key before it ends with a
    byte below 0x80)."""
    at = pos - 1
    while buf[at - 1] >= 0x80:
        at -= 1
    return WireError(f"length {length} runs past the end of its message ({end - pos} bytes left)",
                     at, number)


def signed64(value: int) -> int:
    """A varint read as a two's-complement int64 (how int32 and int64 fields are encoded)."""
    value &= _U64 - 1
    return value - _U64 if value >= 1 << 63 else value


# entry: (wire type, a, b): VARINT (0, value, 0); I64/I32 (wire, position, 0); LEN (2, start, end).
# A group is skipped; it is listed under the negative of its field number, as (3, position, 0),
# so that a caller may report it as an unknown field while it stays out of every accessor.
Entry = tuple[int, int, int]


def _skip_group(buf: Buffer, pos: int, end: int, number: int) -> int:
    """Position after the end-group key matching a start group `number` (its key ends before
    `pos`). Nested fields are checked as `parse` checks them, and skipped."""
    stack = [number]
    while pos < end:
        at = pos
        num, wire, pos = _key(buf, pos, end)
        if wire == SGROUP:
            if len(stack) >= MAX_GROUP_DEPTH:
                raise LimitExceeded("depth", at)
            stack.append(num)
        elif wire == EGROUP:
            if stack[-1] != num:
                raise WireError(f"group {stack[-1]} is closed by the end tag of field {num}", at)
            stack.pop()
            if not stack:
                return pos
        else:
            pos = _skip_value(buf, pos, end, num, wire, at)
    raise WireError(f"group {stack[-1]} is not closed", pos)


def _skip_value(buf: Buffer, pos: int, end: int, number: int, wire: int, at: int) -> int:
    """Position after the value of field `number` inside a group. (Errors name the field in
    their text: a `WireError.field` is a field of the message being parsed.)"""
    if wire == VARINT:
        return varint(buf, pos, end)[1]
    if wire == LEN:
        n, start = varint(buf, pos, end)
        if n > end - start:
            raise WireError(f"field {number} in a group: length {n} runs past the end of its "
                            f"message ({end - start} bytes left)", pos)
        return start + n
    if wire == I32 or wire == I64:
        size = 4 if wire == I32 else 8
        if size > end - pos:
            raise WireError(f"field {number} in a group: {size}-byte value runs past the end of "
                            "its message", pos)
        return pos + size
    raise _bad_key(number << 3 | wire, at)


def parse(buf: Buffer, start: int, end: int, into: dict[int, list[Entry]],
          stop: int | None = None) -> int:
    """Add the fields of the message bytes `buf[start:end]` to `into`; with `stop`, only the
    fields that start before `stop` (values are still bounded by `end`). Returns the position
    after the last field read. (One-byte keys, values and lengths, the common case, are decoded
    inline: this loop is where a large graph's time goes.)"""
    pos = start
    if stop is None:
        stop = end
    while pos < stop:
        key = buf[pos]
        if key < 0x80:
            pos += 1
        else:
            at = pos
            key, pos = varint(buf, pos, end)
            if key > MAX_KEY:
                raise _bad_key(key, at)
        wire, number = key & 7, key >> 3
        if number == 0:
            raise _bad_key(key, at if key >= 0x80 else pos - 1)
        if wire == LEN or wire == VARINT:
            if pos >= end:
                raise WireError("varint runs past the end of its message", pos, number)
            value = buf[pos]
            if value < 0x80:
                pos += 1
            else:
                try:
                    value, pos = varint(buf, pos, end)
                except WireError as e:
                    raise WireError(e.reason, e.offset, number) from None
            if wire == LEN:
                if value > end - pos:
                    raise _overrun(buf, pos, end, value, number)
                entry = (LEN, pos, pos + value)
                pos += value
            else:
                entry = (VARINT, value, 0)
        elif wire == I32 or wire == I64:
            size = 4 if wire == I32 else 8
            if size > end - pos:
                raise WireError(f"{size}-byte value runs past the end of its message", pos, number)
            entry = (wire, pos, 0)
            pos += size
        elif wire == SGROUP:
            entry = (SGROUP, pos, 0)
            pos = _skip_group(buf, pos, end, number)
            number = -number
        else:
            raise _bad_key(key, at if key >= 0x80 else pos - 1)
        got = into.get(number)
        if got is None:
            into[number] = [entry]
        else:
            got.append(entry)
    return pos


def parse_within(buf: Buffer, start: int, end: int, into: dict[int, list[Entry]],
                 budget: Budget) -> None:
    """`parse`, taking each entry from `budget.fields` before it is allocated: the bytes are
    read in runs short enough that they cannot hold more fields than are left."""
    pos = start
    while pos < end:
        if budget.fields <= 0:
            raise LimitExceeded("fields", pos)
        part: dict[int, list[Entry]] = {} if into else into
        pos = parse(buf, pos, end, part, min(end, pos + MIN_FIELD_BYTES * budget.fields))
        budget.fields -= sum(map(len, part.values()))
        for number, entries in part.items() if part is not into else ():
            got = into.get(number)
            if got is None:
                into[number] = entries
            else:
                got.extend(entries)


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

    def uint32(self, number: int, default: int = 0) -> int:
        """A uint32 field: the low 32 bits of its varint, as protobuf parsers read it."""
        e = self._last(number, VARINT)
        return default if e is None else e[1] & _U32

    def float32(self, number: int, default: float = 0.0) -> float:
        e = self._last(number, I32)
        return default if e is None else struct.unpack_from("<f", self.buf, e[1])[0]

    def fixed32(self, number: int, default: int = 0) -> int:
        e = self._last(number, I32)
        return default if e is None else struct.unpack_from("<I", self.buf, e[1])[0]

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

    def uint32s(self, number: int) -> list[int]:
        """A repeated uint32 field, each value the low 32 bits of its varint."""
        return [v & _U32 for v in self.ints(number, signed=False)]

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


class BoundedMessage(Message):
    """A `Message` whose field entries (packed values included) and embedded messages, with
    those of every message reached from it, are taken from `budget` before they are allocated.
    (The message itself is not counted as an embedded message; `fixed` returns one bytes object
    per field, so its values are not counted.)"""

    __slots__ = ("budget",)

    def __init__(self, buf: Buffer, spans: list[tuple[int, int]], budget: Budget) -> None:
        self.buf = buf
        self.spans = spans
        self.budget = budget
        self.fields = {}
        for start, end in spans:
            parse_within(buf, start, end, self.fields, budget)

    def message(self, number: int) -> BoundedMessage:
        spans = [(e[1], e[2]) for e in self._entries(number, LEN)]
        if spans:
            self.budget.spend_messages(len(spans), spans[0][0])
        return BoundedMessage(self.buf, spans, self.budget)

    def messages(self, number: int) -> Iterator[BoundedMessage]:
        for e in self._entries(number, LEN):
            self.budget.spend_messages(1, e[1])
            yield BoundedMessage(self.buf, [(e[1], e[2])], self.budget)

    def ints(self, number: int, signed: bool = True) -> list[int]:
        for wire, a, b in self.fields.get(number, ()):
            if wire == LEN:
                self.budget.spend_values(self._packed_count(a, b), a)
        return super().ints(number, signed)

    def _packed_count(self, start: int, end: int) -> int:
        """How many varints a packed run holds (its bytes that end a varint)."""
        return len(bytes(self.buf[start:end]).translate(None, _CONTINUATION))
