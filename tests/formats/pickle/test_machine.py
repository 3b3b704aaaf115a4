"""The emulated machine against the real one, on benign data the test itself pickles."""

from __future__ import annotations

import collections
import pickle
import pickletools
from typing import Any

import pytest

from assay.errors import FormatError, LimitError
from assay.formats.pickle import Call, Global, Persistent, run_pickle
from assay.formats.pickle.symbols import Raw
from assay.limits import Limits

VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 255, 256, 65535, 65536, -(2**31), 2**31, 2**70, -(2**100),
    1.5, -0.0, float("inf"), "", "héllo", "x" * 300, b"", b"\x00\xff", b"y" * 300,
    bytearray(b"ab"), (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), [], [1, [2, [3]]], {},
    {"a": 1, 2: "b", (1, 2): [3]}, {1, 2, 3}, frozenset({4, 5}),
]


def plainify(v: Any) -> Any:
    if isinstance(v, Raw):
        return v.tobytes()
    if isinstance(v, list):
        return [plainify(x) for x in v]
    if isinstance(v, tuple):
        return tuple(plainify(x) for x in v)
    if isinstance(v, dict):
        return {plainify(k): plainify(x) for k, x in v.items()}
    return v


@pytest.mark.parametrize("protocol", range(6))
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_values_match_the_real_unpickler(protocol: int, value: Any) -> None:
    blob = pickle.dumps(value, protocol=protocol)
    res = run_pickle(blob, "t.pkl")
    expected = pickle.loads(blob)  # unsafe-ok: oracle on bytes this test pickled itself
    got = plainify(res.value)
    if isinstance(res.value, Call) and type(expected) in (set, frozenset) and protocol < 4:
        # before protocol 4, sets are spelled as a call of the builtin type: kept symbolic
        assert res.value.target.rpartition(".")[2] == type(expected).__name__
        return
    if isinstance(expected, bytes) and protocol < 3:
        # protocols 0-2 spell bytes as _codecs.encode(text, 'latin1'): a symbolic call here
        assert isinstance(res.value, Call)
        assert res.value.target in ("_codecs.encode", "__builtin__.bytes", "builtins.bytes")
        return
    if isinstance(expected, bytearray):
        assert isinstance(res.value, Call) or bytes(got) == bytes(expected)
        return
    assert got == expected
    assert res.end == len(blob)


@pytest.mark.parametrize("protocol", range(6))
def test_shared_and_recursive_references_follow_the_memo(protocol: int) -> None:
    inner = [1, 2]
    outer: list[Any] = [inner, inner]
    outer.append(outer)
    res = run_pickle(pickle.dumps(outer, protocol=protocol), "t.pkl")
    v = res.value
    assert v[0] is v[1] and v[2] is v


def test_globals_and_reduce_are_symbolic() -> None:
    od = collections.OrderedDict([("a", 1), ("b", 2)])
    res = run_pickle(pickle.dumps(od, protocol=2), "t.pkl")
    assert isinstance(res.value, Call)
    assert isinstance(res.value.func, Global) and res.value.func.qualname == "collections.OrderedDict"
    assert [g.qualname for g in res.imports] == ["collections.OrderedDict"]


def test_every_opcode_is_known() -> None:
    """Every opcode pickletools knows is handled (none falls through as unknown)."""
    from assay.formats.pickle import machine
    src = open(machine.__file__).read()
    missing = []
    for op in pickletools.opcodes:
        code = op.code
        literal = repr(code)[1:-1]
        if f'"{literal}"' not in src and f"'{literal}'" not in src and literal not in src:
            missing.append(op.name)
    assert not missing


def test_persistent_ids() -> None:
    class P(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            return ("storage", "k") if obj == "S" else None

    import io
    buf = io.BytesIO()
    P(buf, protocol=2).dump(["S", "T"])
    res = run_pickle(buf.getvalue(), "t.pkl")
    assert isinstance(res.value[0], Persistent) and res.value[0].pid == ("storage", "k")
    assert res.value[1] == "T"


@pytest.mark.parametrize(("blob", "rule"), [
    (b"\x80\x02]q\x00", "without STOP"),
    (b"\x80\x02\xff.", "unknown opcode"),
    (b"\x80\x02h\x05.", "memo key 5"),
    (b"\x80\x02X\xff\xff\xff\x7fabc.", "needs"),
    (b"\x80\x02t.", "MARK"),
    (b"\x80\x02R.", "underflow"),
    (b"\x80\x02(]]]a\x93.", "not strings"),
    (b"I12x\n.", "integer"),
    (b"S'abc\n.", "quoted"),
])
def test_bad_pickles_are_format_errors(blob: bytes, rule: str) -> None:
    with pytest.raises(FormatError) as ei:
        run_pickle(blob, "bad.pkl")
    assert rule in str(ei.value) and "bad.pkl" in str(ei.value)


def test_limits_bound_the_machine() -> None:
    many = b"\x80\x02" + b"N" * 1000 + b"."
    with pytest.raises(LimitError):
        run_pickle(many, "t.pkl", limits=Limits(max_pickle_ops=100))
    with pytest.raises(LimitError):
        run_pickle(many, "t.pkl", limits=Limits(max_pickle_stack=100))
    memo = b"\x80\x02N" + b"".join(b"r" + i.to_bytes(4, "little") for i in range(200)) + b"."
    with pytest.raises(LimitError):
        run_pickle(memo, "t.pkl", limits=Limits(max_pickle_memo=100))


def test_large_bytes_stay_views_with_offsets() -> None:
    payload = bytes(range(256)) * 64
    blob = pickle.dumps(payload, protocol=4)
    res = run_pickle(blob, "t.pkl", base=1000)
    assert isinstance(res.value, Raw) and res.value.tobytes() == payload
    assert blob[res.value.offset - 1000:res.value.offset - 1000 + len(payload)] == payload


def test_a_failing_pickle_keeps_what_it_saw() -> None:
    with pytest.raises(FormatError) as ei:
        run_pickle(b"\x80\x02cos\nsystem\n\xff", "t.pkl")
    assert [o.detail for o in ei.value.observations] == ["os.system"]
    assert ei.value.observations[0].kind == "pickle.import"


def test_bad_unicode_escape_is_a_format_error() -> None:
    with pytest.raises(FormatError, match="UNICODE"):
        run_pickle(b"\x80\x02V\\u12\n.", "t.pkl")
