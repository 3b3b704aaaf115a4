"""Plain pickle streams: NumPy arrays as tensors, several pickles, hostile pickles never run."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from assay.errors import FormatError, LimitError, UnknownFormatError
from assay.formats import read_path
from assay.limits import Limits
from assay.model.artifact import ModelArtifact


def le_bytes(ref: np.ndarray) -> bytes:
    """Little-endian, C-order bytes of an array (what assay's canonical bytes must equal)."""
    return np.ascontiguousarray(ref, dtype=ref.dtype.newbyteorder("<")).tobytes()


def arrays() -> dict[str, np.ndarray]:
    rng = np.random.RandomState(0)
    return {
        "c": rng.rand(3, 5).astype(np.float32),
        "fortran": np.asfortranarray(rng.rand(4, 3)),
        "big_endian": np.arange(7, dtype=">i4"),
        "big_endian_f8": np.linspace(0, 1, 6).astype(">f8").reshape(2, 3),
        "large": rng.rand(2000),                      # > 4096 bytes: kept as a span of the file
        "bool": np.array([True, False, True]),
        "uint8": np.arange(10, dtype=np.uint8),
        "half": np.arange(4, dtype=np.float16),
        "complex": np.array([1 + 2j, 3 - 4j], dtype=np.complex64),
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 4), dtype=np.int16),
        "strided": rng.rand(6, 6)[::2, 1::2],
    }


def check(art: ModelArtifact, expected: dict[str, np.ndarray]) -> None:
    got = {t.name: t for t in art.tensors}
    assert set(got) == set(expected)
    for name, ref in expected.items():
        rec = got[name]
        assert rec.shape == ref.shape, name
        assert rec.dtype.name == ref.dtype.name, name
        assert np.array_equal(rec.read(), ref), name
        assert rec.canonical_bytes() == le_bytes(ref), name


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_dict_of_arrays(tmp_path: Path, protocol: int) -> None:
    p = tmp_path / "arrays.pkl"
    obj = arrays()
    p.write_bytes(pickle.dumps(obj, protocol=protocol))
    art = read_path(str(p))
    assert art.format == "pickle"
    assert art.metadata["pickle"]["protocols"] == [protocol if protocol >= 2 else 0]
    check(art, obj)
    assert art.tensor("big_endian").byteorder == ">"


def test_large_arrays_point_into_the_file(tmp_path: Path) -> None:
    p = tmp_path / "a.pkl"
    ref = np.random.RandomState(3).rand(3000)
    p.write_bytes(pickle.dumps({"w": ref}, protocol=4))
    rec = read_path(str(p)).tensor("w")
    assert not rec.span.in_memory
    assert p.read_bytes()[rec.span.offset:rec.span.offset + rec.nbytes] == ref.tobytes()


def test_structured_array_splits_into_fields(tmp_path: Path) -> None:
    dt = np.dtype({"names": ["a", "b", "flag", "odd"], "formats": ["<i8", "<f4", "u1", "<i2"],
                   "offsets": [0, 8, 12, 13], "itemsize": 16})
    rec_arr = np.zeros(300, dtype=dt)
    rec_arr["a"] = np.arange(300)
    rec_arr["b"] = np.linspace(0, 1, 300)
    rec_arr["flag"] = np.arange(300) % 2
    rec_arr["odd"] = -np.arange(300)
    p = tmp_path / "s.pkl"
    p.write_bytes(pickle.dumps({"r": rec_arr}, protocol=4))
    art = read_path(str(p))
    check(art, {f"r.{f}": np.ascontiguousarray(rec_arr[f]) for f in dt.names})
    b = art.tensor("r.b")
    assert (b.strides, b.element_offset, b.span.in_memory) == ((4,), 2, False)   # in place
    assert art.tensor("r.odd").span.in_memory          # offset 13 is not 2-aligned: copied out


def test_two_pickles_back_to_back(tmp_path: Path) -> None:
    p = tmp_path / "two.pkl"
    a, b = np.arange(4.0), np.arange(6, dtype=np.int32).reshape(2, 3)
    p.write_bytes(pickle.dumps({"a": a}, protocol=4) + pickle.dumps({"b": b}, protocol=2))
    art = read_path(str(p))
    assert art.metadata["pickle"]["pickles"] == 2
    assert art.metadata["pickle"]["protocols"] == [4, 2]
    check(art, {"0.a": a, "1.b": b})


def test_protocol_0_text_pickle(tmp_path: Path) -> None:
    p = tmp_path / "text.pkl"
    p.write_bytes(pickle.dumps({"name": "x", "w": np.arange(3, dtype=np.int64)}, protocol=0))
    assert p.read_bytes()[:1] == b"("
    art = read_path(str(p))
    check(art, {"w": np.arange(3, dtype=np.int64)})


def test_trailing_bytes_are_recorded(tmp_path: Path) -> None:
    p = tmp_path / "t.pkl"
    body = pickle.dumps({"w": np.arange(2.0)}, protocol=3)
    p.write_bytes(body + b"\x00\x00not a pickle")
    art = read_path(str(p))
    trailing = [o for o in art.observations if o.kind == "trailing.bytes"]
    assert len(trailing) == 1
    assert trailing[0].location.offset == len(body) and trailing[0].data["length"] == 14


def test_object_arrays_are_not_tensors(tmp_path: Path) -> None:
    p = tmp_path / "o.pkl"
    p.write_bytes(pickle.dumps({"o": np.array(["a", None], dtype=object), "w": np.ones(2)}, protocol=2))
    art = read_path(str(p))
    assert [t.name for t in art.tensors] == ["w"]
    assert any(o.kind == "symbolic.object" and "'o'" in o.detail for o in art.observations)


@pytest.mark.parametrize("text", [b"hello world\n", b"(c) 2024 Someone\nAll rights reserved\n",
                                  b"Version 1.0\nChangelog\n", b"]]]]"])
def test_text_files_are_not_pickles(tmp_path: Path, text: bytes) -> None:
    p = tmp_path / "notes.txt"
    p.write_bytes(text)
    with pytest.raises(UnknownFormatError):
        read_path(str(p))


# -- hostile pickles, built opcode by opcode; each would run `touch MARKER` if really unpickled ----
def _uni(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _str0(s: str) -> bytes:
    return b"S'" + s.encode() + b"'\n"


def hostile(kind: str, cmd: str) -> bytes:
    if kind == "global_reduce":
        return b"\x80\x02cos\nsystem\n" + _uni(cmd) + b"\x85R."
    if kind == "stack_global":
        return b"\x80\x04" + _uni("posix") + _uni("system") + b"\x93" + _uni(cmd) + b"\x85R."
    if kind == "inst":
        return b"(" + _str0(cmd) + b"ios\nsystem\n."
    if kind == "obj":
        return b"(cos\nsystem\n" + _str0(cmd) + b"o."
    if kind == "newobj":
        return b"\x80\x02cos\nsystem\n" + _uni(cmd) + b"\x85\x81."
    if kind == "build":
        # an object whose BUILD state a real unpickler would hand to os.system via __setstate__
        return b"\x80\x02cos\nsystem\n)\x81" + _uni(cmd) + b"b."
    if kind == "reduce_text":
        return b"cos\nsystem\n(" + _str0(cmd) + b"tR."
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["global_reduce", "stack_global", "inst", "obj", "newobj", "build",
                                  "reduce_text"])
def test_hostile_pickle_is_recorded_not_run(tmp_path: Path, marker: Path, kind: str) -> None:
    p = tmp_path / "evil.pkl"
    p.write_bytes(hostile(kind, f"touch {marker}"))
    art = read_path(str(p))
    assert not marker.exists()
    assert art.format == "pickle"
    imports = [o.detail for o in art.observations if o.kind == "pickle.import"]
    call_targets = [o.detail for o in art.observations if o.kind == "pickle.call"]
    assert imports in (["os.system"], ["posix.system"])
    assert call_targets[0] == imports[0]
    assert art.tensors == []


def test_hostile_second_pickle_is_recorded(tmp_path: Path, marker: Path) -> None:
    p = tmp_path / "two.pkl"
    evil = hostile("global_reduce", f"touch {marker}")
    p.write_bytes(pickle.dumps({"w": np.arange(2.0)}, protocol=2) + evil)
    art = read_path(str(p))
    assert not marker.exists()
    assert "os.system" in [o.detail for o in art.observations if o.kind == "pickle.call"]


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "rule"), [
    (pickle.dumps({"w": list(range(50))}, protocol=2)[:-5], "without STOP"),
    (b"\x80\x02}q\x00\xff.", "unknown opcode"),
    (b"\x80\x02h\x07.", "memo key 7 was never stored"),
    (b"\x80\x02X\xff\xff\xff\x7fabc.", "needs 2147483647 bytes"),
    (b"\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\x7fabc.", "needs"),
    (b"\x80\x02)R.", "stack underflow"),
    (b"\x80\x02}(K\x01u.", "odd number"),
    (b"\x80\x02V\\u12\n.", "bad escape in UNICODE"),
])
def test_bad_input(tmp_path: Path, body: bytes, rule: str) -> None:
    p = tmp_path / "bad.pkl"
    p.write_bytes(body)
    with pytest.raises(FormatError, match=rule):
        read_path(str(p))


def test_array_state_shorter_than_its_shape(tmp_path: Path) -> None:
    body = bytearray(pickle.dumps({"w": np.arange(4.0)}, protocol=2))
    body = bytes(body).replace(b"K\x04\x85", b"M\x00\x10\x85", 1)   # shape (4,) -> (4096,)
    p = tmp_path / "short.pkl"
    p.write_bytes(body)
    with pytest.raises(FormatError, match="needs 32768 bytes"):
        read_path(str(p))


def test_too_many_pickles(tmp_path: Path) -> None:
    p = tmp_path / "many.pkl"
    p.write_bytes(b"\x80\x02N." * 20)
    assert read_path(str(p)).metadata["pickle"]["pickles"] == 20
    with pytest.raises(LimitError, match="more than 5 pickles"):
        read_path(str(p), Limits(max_pickles_per_stream=5))
