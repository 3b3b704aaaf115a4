"""assay.io.protobuf: field tables, wire errors with offsets, groups, and budgets.

Messages are written by hand on the wire (key = number << 3 | wire type)."""

from __future__ import annotations

import struct

import pytest

from assay.io.protobuf import (
    I32,
    I64,
    LEN,
    SGROUP,
    VARINT,
    BoundedMessage,
    Budget,
    LimitExceeded,
    Message,
    WireError,
    parse,
    parse_within,
)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append(n & 0x7F | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _ld(number: int, body: bytes) -> bytes:
    return _key(number, LEN) + _varint(len(body)) + body


def _uint(number: int, value: int) -> bytes:
    return _key(number, VARINT) + _varint(value)


def _fields(blob: bytes) -> dict[int, list[tuple[int, int, int]]]:
    into: dict[int, list[tuple[int, int, int]]] = {}
    parse(blob, 0, len(blob), into)
    return into


def _error(blob: bytes) -> WireError:
    with pytest.raises(WireError) as info:
        _fields(blob)
    return info.value


def test_table_of_entries_and_accessors() -> None:
    blob = (_uint(1, 300) + _ld(2, b"abc") + _key(3, I32) + struct.pack("<f", 1.5)
            + _key(4, I64) + b"\0" * 8 + _uint(1, 1 << 33 | 7) + _key(5, I32) + struct.pack("<I", 0xDEADBEEF)
            + _ld(6, b"\x01\x96\x01") + _uint(6, 2) + _uint(300, 1))
    t = _fields(blob)
    assert t[1] == [(VARINT, 300, 0), (VARINT, 1 << 33 | 7, 0)]
    assert t[2] == [(LEN, 5, 8)] and t[3][0][0] == I32 and t[4][0][0] == I64
    m = Message.whole(blob)
    assert m.uint(1) == 1 << 33 | 7 and m.uint32(1) == 7             # uint32: the low 32 bits
    assert m.float32(3) == 1.5 and m.fixed32(5) == 0xDEADBEEF
    assert m.uint32s(6) == [1, 150, 2] and m.has(300) and not m.has(7)


def test_groups_are_skipped_and_listed_under_their_negative_number() -> None:
    group = _key(7, SGROUP) + _uint(1, 5) + _key(8, SGROUP) + _key(8, 4) + _key(7, 4)
    blob = _uint(1, 2) + group + _uint(2, 3)
    m = Message.whole(blob)
    assert m.fields[-7] == [(SGROUP, 3, 0)] and not m.has(7)
    assert (m.uint(1), m.uint(2)) == (2, 3)


@pytest.mark.parametrize(("blob", "reason", "offset", "field"), [
    (_uint(1, 1) + _key(2, LEN) + _varint(1000) + b"xy", "length 1000 runs past the end of its "
     "message (2 bytes left)", 3, 2),
    (_uint(1, 1) + _key(2, LEN) + b"\x83\x80\x00" + b"xy", "length 3 runs past", 3, 2),
    (_key(3, I32) + b"\0\0", "4-byte value runs past the end of its message", 1, 3),
    (_key(3, I64) + b"\0" * 7, "8-byte value runs past the end of its message", 1, 3),
    (_uint(1, 1) + _key(4, VARINT) + b"\x80\x80", "varint runs past the end of its message", 3, 4),
    (_key(4, VARINT), "varint runs past the end of its message", 1, 4),
    (_key(4, VARINT) + b"\xff" * 12, "varint longer than 10 bytes", 1, 4),
    (_uint(1, 1) + b"\xff" * 12, "varint longer than 10 bytes", 2, None),
    (_uint(1, 1) + b"\x00\x01", "field number 0 is out of range", 2, None),
    (_uint(1, 1) + b"\x80\x80\x80\x80\x10\x00", "field number 536870912 is out of range", 2, None),
    (_uint(1, 1) + _key(20, 7), "field 20 has invalid wire type 7", 2, None),
    (_uint(1, 1) + _key(20, 4), "field 20 has a stray end-group wire type 4", 2, None),
    (_key(2, SGROUP) + _uint(1, 1), "group 2 is not closed", 3, None),
    (_key(2, SGROUP) + _key(3, 4), "group 2 is closed by the end tag of field 3", 1, None),
    (_key(2, SGROUP) + b"\x00\x01" + _key(2, 4), "field number 0 is out of range", 1, None),
    (_key(2, SGROUP) + _key(1, LEN) + b"\x05ab", "field 1 in a group: length 5 runs past", 2, None),
])
def test_wire_errors_carry_offset_and_field(blob: bytes, reason: str, offset: int,
                                            field: int | None) -> None:
    e = _error(blob)
    assert e.reason.startswith(reason)
    assert (e.offset, e.field) == (offset, field)
    assert str(e) == (e.reason if field is None else f"field {field}: {e.reason}")


def test_groups_nested_too_deeply() -> None:
    blob = _key(2, SGROUP) * 65 + _key(2, 4) * 65
    with pytest.raises(LimitExceeded) as info:
        _fields(blob)
    assert info.value.what == "depth" and info.value.offset == 64
    assert _fields(_key(2, SGROUP) * 64 + _key(2, 4) * 64) == {-2: [(SGROUP, 1, 0)]}


def test_parse_stops_at_stop_but_bounds_values_by_end() -> None:
    blob = _uint(1, 1) + _ld(2, b"abcdef") + _uint(3, 3)
    into: dict[int, list[tuple[int, int, int]]] = {}
    assert parse(blob, 0, len(blob), into, stop=3) == 10      # field 2 starts before 3, ends at 10
    assert sorted(into) == [1, 2]


def test_budget_bounds_fields_before_allocating_them() -> None:
    blob = _uint(1, 0) * 100_000
    into: dict[int, list[tuple[int, int, int]]] = {}
    with pytest.raises(LimitExceeded) as info:
        parse_within(blob, 0, len(blob), into, Budget(fields=10, messages=0))
    assert info.value.what == "fields" and info.value.offset == 20
    assert len(into[1]) == 10
    exact = Budget(fields=100_000, messages=0)
    parse_within(blob, 0, len(blob), {}, exact)
    assert exact.fields == 0
    # one long field is a single entry however many bytes it holds
    long = _ld(1, b"x" * 10_000) + _uint(2, 1)
    parse_within(long, 0, len(long), {}, Budget(fields=2, messages=0))


def test_bounded_message_shares_its_budget() -> None:
    inner = _uint(1, 1) + _uint(2, 2)
    blob = _ld(1, inner) * 3 + _ld(2, inner) + _ld(2, inner)
    budget = Budget(fields=100, messages=5)
    top = BoundedMessage(blob, [(0, len(blob))], budget)
    assert budget.fields == 95
    assert [m.uint(2) for m in top.messages(1)] == [2, 2, 2]
    merged = top.message(2)                                  # two occurrences: two messages
    assert (budget.messages, budget.fields) == (0, 85) and merged.fields[1] == [(VARINT, 1, 0)] * 2
    few = BoundedMessage(blob, [(0, len(blob))], Budget(fields=100, messages=2)).messages(1)
    assert next(few).uint(1) == next(few).uint(1) == 1
    with pytest.raises(LimitExceeded) as info:
        next(few)
    assert info.value.what == "messages" and info.value.offset == 2 * (len(inner) + 2) + 2


def test_bounded_message_counts_packed_values_before_decoding() -> None:
    blob = _ld(5, b"\x01\x96\x01" * 10) + _uint(5, 3)
    budget = Budget(fields=22, messages=0)
    assert BoundedMessage(blob, [(0, len(blob))], budget).ints(5) == [1, 150] * 10 + [3]
    assert budget.fields == 0
    with pytest.raises(LimitExceeded) as info:
        BoundedMessage(blob, [(0, len(blob))], Budget(fields=20, messages=0)).ints(5)
    assert info.value.what == "values" and info.value.offset == 2
