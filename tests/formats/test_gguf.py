"""GGUF reader: real files written with gguf.GGUFWriter, checked against gguf.GGUFReader;
hostile headers built with struct.pack."""

from __future__ import annotations

import random
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

from gguf.constants import GGMLQuantizationType as Q  # noqa: E402
from gguf.constants import GGUFEndian  # noqa: E402

from assay.errors import FormatError, LimitError, UnsupportedError  # noqa: E402
from assay.formats import detect, read_file  # noqa: E402
from assay.formats.base import Probe  # noqa: E402
from assay.formats.gguf_format import READERS, dequantize  # noqa: E402
from assay.limits import Limits  # noqa: E402
from assay.model.artifact import ModelArtifact  # noqa: E402

TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
TOOL_TEMPLATE = "{{ tools | tojson }}"
DTYPE_NAMES = {Q.F32: "float32", Q.F16: "float16", Q.BF16: "bfloat16", Q.I32: "int32",
               Q.Q8_0: "gguf.q8_0", Q.Q4_0: "gguf.q4_0"}


# ---------------------------------------------------------------- real files, official writer

def _metadata(w: Any, n_tokens: int) -> None:
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -5)
    w.add_uint16("t.u16", 65000)
    w.add_int16("t.i16", -3000)
    w.add_uint32("t.u32", 4_000_000_000)
    w.add_int32("t.i32", -2_000_000_000)
    w.add_uint64("t.u64", 2**63 + 5)
    w.add_int64("t.i64", -(2**62))
    w.add_float32("t.f32", 0.1)
    w.add_float64("t.f64", 1e-300)
    w.add_bool("t.bool", True)
    w.add_string("general.name", "tiny ünïcode model")
    w.add_array("t.ints", [1, -2, 3])
    w.add_array("t.floats", [0.5, 1.5])
    w.add_array("t.names", ["a", "bb", "ccc"])
    w.add_array("t.nested", [[1, 2], [3, 4, 5]])
    w.add_array("tokenizer.ggml.tokens", [f"tok{i}" for i in range(n_tokens)])
    w.add_array("tokenizer.ggml.scores", [float(i) / 4 for i in range(n_tokens)])
    w.add_chat_template([{"name": "default", "template": TEMPLATE},
                         {"name": "tool_use", "template": TOOL_TEMPLATE}])


def _tensors(w: Any, rng: np.random.Generator) -> None:
    w.add_tensor("f32", rng.standard_normal((3, 4)).astype(np.float32))
    w.add_tensor("f16", rng.standard_normal((2, 5, 3)).astype(np.float16))
    w.add_tensor("i32", rng.integers(-9, 9, (7,), dtype=np.int32))
    bf = gguf.quants.quantize(rng.standard_normal((2, 6)).astype(np.float32), Q.BF16)
    w.add_tensor("bf16", bf, raw_dtype=Q.BF16)
    q8 = gguf.quants.quantize(rng.standard_normal((4, 64)).astype(np.float32), Q.Q8_0)
    w.add_tensor("blk.0.q8", q8, raw_dtype=Q.Q8_0)
    q4 = gguf.quants.quantize(rng.standard_normal((3, 2, 32)).astype(np.float32), Q.Q4_0)
    w.add_tensor("blk.0.q4", q4, raw_dtype=Q.Q4_0)


def _write(path: Path, *, alignment: int | None = None, endian: Any = GGUFEndian.LITTLE,
           n_tokens: int = 1000) -> Path:
    w = gguf.GGUFWriter(str(path), "llama", endianess=endian)
    if alignment is not None:
        w.add_custom_alignment(alignment)
    _metadata(w, n_tokens)
    _tensors(w, np.random.default_rng(7))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _read(path: Path, limits: Limits | None = None) -> ModelArtifact:
    return READERS[0].read(Probe.of(str(path), limits or Limits()))


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("gguf") / "model.gguf")


def _flat(v: Any) -> list[Any]:
    return [x for item in v for x in _flat(item)] if isinstance(v, list) else [v]


def _assert_same_metadata(art: ModelArtifact, ref: Any) -> None:
    keys = [k for k in ref.fields if not k.startswith("GGUF.")]
    assert list(art.metadata["gguf"]) == keys
    for key in keys:
        expected, mine = ref.fields[key].contents(), art.metadata["gguf"][key]
        if isinstance(mine, dict):   # a long array, summarised
            assert mine["length"] == len(expected) > 256
            assert mine["head"] == expected[:len(mine["head"])] and len(mine["head"]) == 8
        elif isinstance(mine, list):
            assert _flat(mine) == expected     # GGUFReader flattens nested arrays
        else:
            assert mine == expected, key


def _assert_same_tensors(art: ModelArtifact, ref: Any) -> None:
    assert [t.name for t in art.tensors] == [t.name for t in ref.tensors]
    for rt in ref.tensors:
        rec = art.tensor(rt.name)
        assert rec.shape == tuple(int(d) for d in reversed(rt.shape.tolist()))
        assert rec.dtype.name == DTYPE_NAMES[rt.tensor_type]
        assert rec.attrs["ggml_type"] == rt.tensor_type.name
        if rec.dtype.is_block:
            sizes = gguf.constants.GGML_QUANT_SIZES[rt.tensor_type]
            assert (rec.dtype.block_size, rec.dtype.block_bytes) == sizes
        assert rec.span is not None and rec.span.offset == rt.data_offset
        assert rec.span.length == rt.n_bytes == rec.nbytes
        assert np.asarray(rec.read()).tobytes() == np.asarray(rt.data).tobytes()


def test_tensors_match_gguf_reader(model: Path) -> None:
    art = _read(model)
    _assert_same_tensors(art, gguf.GGUFReader(str(model)))
    assert art.format == "gguf" and art.files == [str(model)]
    assert art.tensor("blk.0.q4").read().shape == (6, 18)      # raw blocks of 18 bytes


def test_dequantize_matches_gguf_quants(model: Path) -> None:
    art = _read(model)
    for rt in gguf.GGUFReader(str(model)).tensors:
        rec = art.tensor(rt.name)
        got = dequantize(rec)
        if rt.tensor_type == Q.I32:      # gguf.quants decodes float types only
            want = np.asarray(rt.data).astype(np.float32)
        else:
            want = gguf.quants.dequantize(np.asarray(rt.data), rt.tensor_type).astype(np.float32)
        assert got.dtype == np.float32 and got.shape == rec.shape
        np.testing.assert_array_equal(got, want.reshape(rec.shape))
    assert np.count_nonzero(dequantize(art.tensor("blk.0.q8"))) > 200


def test_metadata_matches_gguf_reader(model: Path) -> None:
    art = _read(model)
    _assert_same_metadata(art, gguf.GGUFReader(str(model)))
    md = art.metadata["gguf"]
    assert md["t.u64"] == 2**63 + 5 and md["t.bool"] is True and md["t.nested"] == [[1, 2], [3, 4, 5]]
    assert md["tokenizer.ggml.tokens"] == {"type": "string", "length": 1000,
                                           "head": [f"tok{i}" for i in range(8)]}
    assert md["tokenizer.ggml.scores"]["type"] == "float32"
    header = art.metadata["gguf_file"]
    assert header["version"] == 3 and header["alignment"] == 32 and header["byteorder"] == "little"
    assert header["tensor_count"] == 6 and header["data_offset"] % 32 == 0


def test_chat_templates_are_observed(model: Path) -> None:
    art = _read(model)
    templates = {o.detail: o.data["text"] for o in art.observations if o.kind == "template"}
    assert templates == {"tokenizer.chat_template": TEMPLATE,
                         "tokenizer.chat_template.tool_use": TOOL_TEMPLATE}
    assert not [o for o in art.observations if o.kind == "trailing.bytes"]


def test_picked_by_content_not_name(model: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "weights.bin"
    renamed.write_bytes(model.read_bytes())
    reader, _ = detect(str(renamed))
    assert reader.name == "gguf"
    assert read_file(str(renamed)).format == "gguf"


def test_custom_alignment(tmp_path: Path) -> None:
    path = _write(tmp_path / "a64.gguf", alignment=64)
    art, ref = _read(path), gguf.GGUFReader(str(path))
    assert art.metadata["gguf_file"]["alignment"] == 64 == ref.alignment
    assert art.metadata["gguf_file"]["data_offset"] == ref.data_offset
    _assert_same_tensors(art, ref)


def test_big_endian(tmp_path: Path) -> None:
    path = _write(tmp_path / "be.gguf", endian=GGUFEndian.BIG)
    art, ref = _read(path), gguf.GGUFReader(str(path))
    assert art.metadata["gguf_file"]["byteorder"] == "big"
    _assert_same_metadata(art, ref)
    _assert_same_tensors(art, ref)
    np.testing.assert_array_equal(art.tensor("f32").read(), np.asarray(ref.tensors[0].data))
    assert art.tensor("f32").canonical_bytes() == np.asarray(ref.tensors[0].data).astype("<f4").tobytes()
    with pytest.raises(UnsupportedError, match="big-endian"):
        dequantize(art.tensor("blk.0.q8"))


def test_trailing_bytes_observed(model: Path, tmp_path: Path) -> None:
    path = tmp_path / "trail.gguf"
    path.write_bytes(model.read_bytes() + b"\0" * 64 + b"extra")
    art = _read(path)
    (obs,) = [o for o in art.observations if o.kind == "trailing.bytes"]
    assert obs.data["length"] == 69


# ---------------------------------------------------------------- hand-built files (struct.pack)

def _str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def _kv(key: str, vtype: int, payload: bytes) -> bytes:
    return _str(key) + struct.pack("<I", vtype) + payload


def _info(name: str, dims: list[int], ggml: int = 0, offset: int = 0) -> bytes:
    return (_str(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
            + struct.pack("<IQ", ggml, offset))


def _file(tmp_path: Path, *, kvs: Sequence[bytes] = (), infos: Sequence[bytes] = (), data: bytes = b"",
          n_kv: int | None = None, n_tensors: int | None = None, version: int = 3,
          alignment: int = 32) -> Path:
    head = b"GGUF" + struct.pack("<IQQ", version, len(infos) if n_tensors is None else n_tensors,
                                 len(kvs) if n_kv is None else n_kv)
    body = head + b"".join(kvs) + b"".join(infos)
    body += b"\0" * (-len(body) % alignment)
    path = tmp_path / "hand.gguf"
    path.write_bytes(body + data)
    return path


def _floats(n: int) -> bytes:
    return np.arange(n, dtype="<f4").tobytes()


def test_hand_built_file_reads(tmp_path: Path) -> None:
    path = _file(tmp_path, infos=[_info("a", [3, 2], 0, 0), _info("b", [4], 0, 32)],
                 data=_floats(6) + b"\0" * 8 + _floats(4))
    art = _read(path)
    assert art.tensor("a").shape == (2, 3)
    np.testing.assert_array_equal(art.tensor("a").read(), np.arange(6, dtype="<f4").reshape(2, 3))
    np.testing.assert_array_equal(art.tensor("b").read(), np.arange(4, dtype="<f4"))


def test_version_2_accepted(tmp_path: Path) -> None:
    path = _file(tmp_path, version=2, infos=[_info("a", [4])], data=_floats(4))
    assert _read(path).metadata["gguf_file"]["version"] == 2


def test_gap_between_tensors_counted(tmp_path: Path) -> None:
    path = _file(tmp_path, infos=[_info("a", [4], 0, 0), _info("b", [4], 0, 64)],
                 data=_floats(4) + b"\0" * 48 + _floats(4))
    assert _read(path).metadata["gguf_file"]["unused_bytes_between_tensors"] == 32


HOSTILE: dict[str, tuple[dict[str, Any], type[Exception], str]] = {
    "n_tensors_2_60": ({"n_tensors": 2**60}, LimitError, "tensor count"),
    "n_kv_2_60": ({"n_kv": 2**60}, LimitError, "key/value count"),
    "n_kv_past_eof": ({"n_kv": 1000}, LimitError, "needs at least 13000 bytes"),
    "key_length_huge": ({"kvs": [struct.pack("<Q", 2**62) + b"k"]}, LimitError, "key #0 length"),
    "string_past_eof": ({"kvs": [_kv("s", 8, struct.pack("<Q", 5000) + b"short")]}, LimitError,
                        "needs 5000 bytes"),
    "array_count_huge": ({"kvs": [_kv("a", 9, struct.pack("<IQ", 4, 2**62))]}, LimitError,
                         "item count"),
    "string_array_past_eof": ({"kvs": [_kv("a", 9, struct.pack("<IQ", 8, 10**6))]}, LimitError,
                              "item count"),
    "nested_arrays_deep": ({"kvs": [_kv("a", 9, struct.pack("<IQ", 9, 1) * 200)]}, LimitError,
                           "nested deeper"),
    "unknown_value_type": ({"kvs": [_kv("a", 13, b"\0" * 8)]}, FormatError, "unknown value type 13"),
    "unknown_item_type": ({"kvs": [_kv("a", 9, struct.pack("<IQ", 77, 1))]}, FormatError,
                          "unknown item type 77"),
    "duplicate_key": ({"kvs": [_kv("k", 4, b"\1\0\0\0")] * 2}, FormatError, "duplicate metadata key"),
    "key_not_utf8": ({"kvs": [_str(b"\xff\xfe") + struct.pack("<IB", 0, 1)]}, FormatError, "UTF-8"),
    "alignment_zero": ({"kvs": [_kv("general.alignment", 4, struct.pack("<I", 0))]}, FormatError,
                       "power of two"),
    "alignment_48": ({"kvs": [_kv("general.alignment", 4, struct.pack("<I", 48))]}, FormatError,
                     "power of two"),
    "alignment_u64": ({"kvs": [_kv("general.alignment", 10, struct.pack("<Q", 32))]}, FormatError,
                      "must be a uint32"),
    "n_dims_1000": ({"infos": [_str("t") + struct.pack("<I", 1000) + b"\0" * 8000]}, FormatError,
                    "n_dims 1000"),
    "too_many_elements": ({"infos": [_info("t", [2**40, 2**40])]}, LimitError, "too many elements"),
    "offset_out_of_bounds": ({"infos": [_info("t", [4], 0, 2**40)], "data": _floats(4)}, FormatError,
                             "run past the end"),
    "data_truncated": ({"infos": [_info("t", [64])], "data": _floats(8)}, FormatError,
                       "run past the end"),
    "unaligned_offset": ({"infos": [_info("t", [4], 0, 4)], "data": _floats(8)}, FormatError,
                         "not a multiple of the alignment"),
    "unknown_ggml_type": ({"infos": [_info("t", [4], 99)], "data": _floats(4)}, FormatError,
                          "unknown ggml type 99"),
    "duplicate_tensor": ({"infos": [_info("t", [4], 0, 0), _info("t", [4], 0, 32)],
                          "data": _floats(16)}, FormatError, "duplicate tensor name"),
    "overlapping": ({"infos": [_info("a", [16], 0, 0), _info("b", [4], 0, 32)], "data": _floats(16)},
                    FormatError, "overlaps"),
    "q4_row_not_blocks": ({"infos": [_info("q", [31, 2], int(Q.Q4_0))], "data": b"\0" * 64},
                          FormatError, "not a multiple of the Q4_0 block size 32"),
    "q8_scalar": ({"infos": [_info("q", [], int(Q.Q8_0))], "data": b"\0" * 64}, FormatError,
                  "block size"),
    "tensor_name_huge": ({"infos": [struct.pack("<Q", 2**50)], "data": bytes(64)}, LimitError,
                         "name of tensor #0 length"),
    "version_1": ({"version": 1}, UnsupportedError, "version 1"),
    "version_4": ({"version": 4}, UnsupportedError, "version 4"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_header(tmp_path: Path, case: str) -> None:
    kwargs, exc, message = HOSTILE[case]
    with pytest.raises(exc, match=message) as info:
        _read(_file(tmp_path, **kwargs))
    assert str(tmp_path) in str(info.value)


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "t.gguf"
    path.write_bytes(b"GGUF\x03\x00")
    with pytest.raises(LimitError, match="version needs 4 bytes"):
        _read(path)


def test_bad_magic(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUG" + bytes(20))
    assert not READERS[0].sniff(Probe.of(str(path), Limits()))
    with pytest.raises(FormatError, match="magic"):
        _read(path)


def test_limits_are_applied(model: Path) -> None:
    with pytest.raises(LimitError, match="tensor count 6 exceeds the limit of 2"):
        _read(model, Limits(max_tensors=2))
    with pytest.raises(LimitError, match="exceeds the limit of 20 bytes"):
        _read(model, Limits(max_string_bytes=20))
    with pytest.raises(LimitError, match="item count 1000 exceeds the limit of 500"):
        _read(model, Limits(max_array_items=500))
    with pytest.raises(LimitError, match="header limit"):
        _read(model, Limits(max_header_bytes=1000))


def _outcome(path: Path) -> ModelArtifact | None:
    """Read; a FormatError (or subclass) is fine, any other exception fails the test."""
    try:
        art = _read(path)
    except FormatError:
        return None
    for rec in art.tensors:      # what the reader accepted must also be readable
        assert len(np.asarray(rec.read()).tobytes()) == rec.nbytes
    return art


def test_every_prefix_is_rejected_or_read(tmp_path: Path) -> None:
    small = _write(tmp_path / "small.gguf", n_tokens=260)
    data = small.read_bytes()
    path = tmp_path / "cut.gguf"
    data_offset = _read(small).metadata["gguf_file"]["data_offset"]
    for n in [*range(64), *range(64, len(data), 5)]:
        path.write_bytes(data[:n])
        art = _outcome(path)
        if n <= data_offset:
            assert art is None, n


def test_random_corruption_never_escapes(model: Path, tmp_path: Path) -> None:
    data = model.read_bytes()
    header_end = _read(model).metadata["gguf_file"]["data_offset"]
    rnd = random.Random(1234)
    path = tmp_path / "fuzz.gguf"
    rejected = 0
    for _ in range(300):
        buf = bytearray(data)
        for _ in range(rnd.randint(1, 4)):
            buf[rnd.randrange(4, header_end)] = rnd.randrange(256)
        path.write_bytes(bytes(buf))
        rejected += _outcome(path) is None
    assert rejected > 0


def test_open_cost_independent_of_size(tmp_path: Path) -> None:
    """A 16 GiB tensor (sparse file) opens without its bytes being read."""
    dims = [1 << 16, 1 << 16]          # 2**32 float32 values
    path = _file(tmp_path, infos=[_info("huge", dims)])
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size + 4 * (1 << 32))
    start = time.perf_counter()
    art = _read(path)
    arr = art.tensor("huge").read()
    assert time.perf_counter() - start < 2.0
    assert art.tensor("huge").nbytes == 1 << 34 and arr.shape == (1 << 16, 1 << 16)
    assert float(arr[12345, 54321]) == 0.0


def test_ggml_type_table_matches_the_gguf_package() -> None:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    from assay.formats.gguf_format import GGML_TYPES

    theirs = {int(qt): (qt.name, *GGML_QUANT_SIZES[qt]) for qt in GGMLQuantizationType
              if qt in GGML_QUANT_SIZES}
    assert GGML_TYPES == theirs
