"""Leela Zero (Go) text weights and Lc0 (chess) protobuf weights.

Networks are written from the published descriptions in tests/factories/leela.py (the Lc0
protobuf by hand on the wire), and every tensor assay reads is compared bit for bit with the
numbers written: Leela Zero tokens parsed by Python's float and rounded to float32, Lc0 LINEAR16
values decoded one element at a time with lc0's formula.
"""

from __future__ import annotations

import gzip
import math
import random
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assay import Limits, ModelArtifact, open_model
from assay.errors import FormatError, LimitError, UnknownFormatError, UnsupportedError
from assay.formats import detect
from assay.formats.base import Probe
from assay.formats.leela import NetDecoder, read_lc0, read_leela_zero
from tests.factories import leela as f


def _bytes(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).view(np.uint8).tobytes()


def _check_lz(art: ModelArtifact, net: f.LZNet) -> None:
    got = {t.name: t for t in art.tensors}
    assert [t.name for t in art.tensors] == [t.name for t in net.tensors]
    for t in net.tensors:
        rec = got[t.name]
        assert rec.dtype.name == "float32" and rec.shape == t.shape, t.name
        assert _bytes(rec.read()) == _bytes(t.expected()), t.name


# --- Leela Zero: valid networks ------------------------------------------------------------

def test_lz_plain_text_is_bit_identical(tmp_path: Path) -> None:
    net = f.lz_net(1, blocks=2, filters=8)
    p = f.write_text(tmp_path / "net.txt", net.text())
    assert detect(str(p))[0].name == "leela-zero"
    art = open_model(p)
    assert art.format == "leela-zero"
    _check_lz(art, net)
    assert art.metadata["leela-zero"] == {
        "version": 1, "value_head_scores_for": "side to move", "blocks": 2, "filters": 8,
        "input_planes": 18, "board_points": 25, "board_size": 5, "policy_outputs": 26,
        "value_hidden": 16, "compression": None}
    assert art.tensor("input.conv.weight").shape == (8, 18, 3, 3)
    assert art.tensor("res.1.conv2.weight").shape == (8, 8, 3, 3)
    assert art.tensor("policy.fc.weight").shape == (26, 50)
    assert art.tensor("value.fc2.bias").shape == (1,)
    assert art.parameter_count == sum(t.expected().size for t in net.tensors)


def test_lz_gzip_19x19_version2(tmp_path: Path) -> None:
    net = f.lz_net(2, blocks=1, filters=4, board=19, version=2, value_hidden=256)
    p = f.write_text(tmp_path / "elf.gz", net.text(final_newline=True), compress=True)
    assert detect(str(p))[0].name == "leela-zero"
    art = open_model(p)
    _check_lz(art, net)
    meta = art.metadata["leela-zero"]
    assert (meta["version"], meta["value_head_scores_for"], meta["compression"]) == (2, "black", "gzip")
    assert (meta["board_size"], meta["policy_outputs"], meta["blocks"]) == (19, 362, 1)
    assert art.tensor("policy.fc.weight").shape == (362, 722)
    assert art.tensor("value.fc1.weight").shape == (256, 361)


def test_lz_zero_blocks_crlf_and_extra_whitespace(tmp_path: Path) -> None:
    net = f.lz_net(3, blocks=0, filters=3)
    text = net.text(newline=" \t\r\n", final_newline=True)
    art = open_model(f.write_text(tmp_path / "w.txt", text))
    _check_lz(art, net)
    assert art.metadata["leela-zero"]["blocks"] == 0


def test_lz_multi_member_gzip_and_trailing_bytes(tmp_path: Path) -> None:
    net = f.lz_net(4, blocks=1, filters=4)
    raw = net.text().encode()
    half = len(raw) // 2
    blob = gzip.compress(raw[:half], mtime=0) + gzip.compress(raw[half:], mtime=0)
    p = f.write_text(tmp_path / "multi.gz", blob + b"JUNK")
    art = open_model(p)
    _check_lz(art, net)
    [obs] = [o for o in art.observations if o.kind == "trailing.bytes"]
    assert obs.location.offset == len(blob) and obs.data["length"] == 4


def test_lz_special_numbers(tmp_path: Path) -> None:
    net = f.lz_net(5, blocks=0, filters=2)
    net.tensors[1].tokens = ["nan", "-inf"]
    net.tensors[2].tokens = ["Infinity", "1e39"]      # float32 overflow becomes inf
    art = open_model(f.write_text(tmp_path / "w.txt", net.text()))
    _check_lz(art, net)


# --- Leela Zero: bad input -----------------------------------------------------------------

def _lz_with(tmp_path: Path, edit: Callable[[list[str]], None], *, compress: bool = False) -> Path:
    net = f.lz_net(6, blocks=1, filters=4)
    lines = net.lines()
    edit(lines)
    return f.write_text(tmp_path / "bad.txt", "\n".join(lines), compress=compress)


def _line(i: int, change: Callable[[str], str]) -> Callable[[list[str]], None]:
    """An edit of the line at index `i` (the version line is index 0, file line i + 1)."""
    return lambda lines: lines.__setitem__(i, change(lines[i]))


def _insert_token(token: str) -> Callable[[str], str]:
    return lambda line: line.replace(" ", f" {token} ", 1)


# Layout of lz_net(6, blocks=1, filters=4, board=5): file line 2 input.conv.weight, 3 its bias,
# 6-13 the residual block, 14-19 the policy head, 20-27 the value head.
@pytest.mark.parametrize(("edit", "rule"), [
    (_line(6, lambda s: s.rsplit(" ", 1)[0]), r"line 7 \(res.0.conv1.bias\) has 3 numbers; expected 4"),
    (_line(2, lambda s: s + " 0.5"), r"line 2 \(input.conv.weight\) has 648 numbers, "
                                     r"not a positive multiple of 3 x 3 x 5 filters = 45"),
    (_line(5, _insert_token("1.2.3")), r"line 6: b'1.2.3' is not a number"),
    (_line(5, _insert_token("abc")), r"line 6: b'abc' is not a number"),
    (_line(4, _insert_token("1_0")), r"line 5: b'1_0' is not a number"),
    (_line(4, _insert_token("0x1p3")), r"line 5: b'0x1p3' is not a number"),
    (_line(4, lambda s: s.replace(" ", ",", 1)), r"line 5: b'[-+.0-9eE]+,[-+.0-9eE]+' is not a number"),
    (_line(3, lambda s: s + " nan(1)"), r"line 4: b'nan\(1\)' is not a number"),
    (_line(3, lambda s: s + " 1e"), r"line 4: b'1e' is not a number"),
    (lambda ls: ls.pop(9), r"25 weight lines after the version line; the format needs 18 \+ 8 x blocks"),
    (lambda ls: ls.append("0.5"), r"27 weight lines"),
    (_line(2, lambda s: ""), r"line 3 \(input.conv.bias\) is empty"),
    (_line(1, lambda s: s + " 0.1"), r"line 2 \(input.conv.weight\) has 649 numbers, "
                                     r"not a positive multiple of 3 x 3 x 4 filters = 36"),
    (_line(23, lambda s: s + " 0.1"), r"line 24 \(value.fc1.weight\) has 401 numbers, "
                                      r"not a positive multiple of 16 outputs x 1 planes"),
    (_line(17, lambda s: s + " 0.1"), r"line 18 \(policy.fc.weight\) has 1301 numbers; "
                                      r"expected 1300 for shape \[26, 50\]"),
])
def test_lz_rules(tmp_path: Path, edit: Callable[[list[str]], None], rule: str) -> None:
    with pytest.raises(FormatError, match=rule):
        open_model(_lz_with(tmp_path, edit))


def test_lz_rules_also_hold_when_gzipped(tmp_path: Path) -> None:
    p = _lz_with(tmp_path, _line(6, lambda s: s + " 7"), compress=True)
    with pytest.raises(FormatError, match=r"line 7 \(res.0.conv1.bias\) has 5 numbers"):
        open_model(p)


def test_lz_wrong_version(tmp_path: Path) -> None:
    p = _lz_with(tmp_path, _line(0, lambda s: "3"))
    with pytest.raises(UnknownFormatError):
        open_model(p)
    with pytest.raises(FormatError, match="line 1 must be the version 1 or 2"):
        read_leela_zero(Probe.of(str(p), Limits()))


def test_lz_truncated_and_corrupt_gzip(tmp_path: Path) -> None:
    blob = gzip.compress(f.lz_net(7).text().encode(), mtime=0)
    p = f.write_text(tmp_path / "cut.gz", blob[: len(blob) // 2])
    with pytest.raises(FormatError, match=r"gzip stream ends before its end marker \(truncated\)"):
        open_model(p)
    bad = bytearray(blob)
    bad[-6] ^= 0xFF                                     # inside the CRC-32
    with pytest.raises(FormatError, match="gzip data is corrupt"):
        open_model(f.write_text(tmp_path / "crc.gz", bytes(bad)))


def test_lz_gzip_bomb_stops_early(tmp_path: Path) -> None:
    """200 MB of text compressed ~1000:1, written in stream; refused long before it is inflated."""
    p = f.write_gzip_stream(tmp_path / "bomb.gz", b"1\n", b"0 ", 200 << 20)
    assert p.stat().st_size < 400_000
    with pytest.raises(LimitError, match=r"inflates more than 1000:1"):
        open_model(p)


def test_lz_size_limit_through_probe(tmp_path: Path) -> None:
    net = f.lz_net(8, blocks=2, filters=8)
    gz = f.write_text(tmp_path / "w.gz", net.text(), compress=True)
    plain = f.write_text(tmp_path / "w.txt", net.text())
    small = Limits(max_decompressed_bytes=4096)
    with pytest.raises(LimitError, match="past the limit of 4096 bytes"):
        open_model(gz, small)
    with pytest.raises(LimitError, match="over the limit of 4096 bytes"):
        open_model(plain, small)
    with pytest.raises(LimitError, match="exceed the limit of 10 tensors"):
        open_model(plain, Limits(max_tensors=10))


# --- Lc0: valid networks -------------------------------------------------------------------

def _check_lc0(art: ModelArtifact, b: f.Lc0Builder) -> None:
    got = {t.name: t for t in art.tensors}
    assert set(got) == set(b.layers)
    for name, layer in b.layers.items():
        rec = got[name]
        if layer.logical is None:
            want = f.expected_linear16(layer)
            assert rec.dtype.name == "float32", name
            n = want.size
            assert rec.shape == (tuple(reversed(layer.dims)) if layer.dims else (n,)), name
            assert _bytes(rec.read()) == _bytes(want.reshape(rec.shape)), name
            # and close to the real-valued decoding
            q = np.frombuffer(layer.params, "<u2").astype(np.float64)
            real = layer.min_val + (layer.max_val - layer.min_val) * q / 65535
            assert np.allclose(np.asarray(rec.read()).ravel(), real, rtol=0, atol=1e-6)
            assert rec.attrs["encoding"] == "LINEAR16"
        else:
            # float encodings keep their stored dtype; dims (trainer shape, column-major) reversed
            assert rec.shape == tuple(reversed(layer.dims)), name
            assert rec.dtype.name == layer.logical.dtype.name, name
            assert _bytes(rec.read()) == layer.params, name
            assert _bytes(rec.read()) == _bytes(layer.logical.T), name


def test_lc0_classical_gzip(tmp_path: Path) -> None:
    b = f.Lc0Builder(1)
    p = f.write_text(tmp_path / "net.pb.gz", f.lc0_net(f.lc0_classical(b)), compress=True)
    assert detect(str(p))[0].name == "lc0"
    art = open_model(p)
    assert art.format == "lc0"
    _check_lc0(art, b)
    names = [t.name for t in art.tensors]
    assert names[:5] == ["input.weights", "input.biases", "input.bn_means", "input.bn_stddivs",
                         "residual.0.conv1.weights"]
    assert "residual.1.se.w2" in names and "ip2_val_b" in names
    assert art.metadata["lc0"] == {
        "magic": 0x1C0, "license": "GPL-3.0-or-later", "min_version": "0.30.0",
        "format": {"weights_encoding": "LINEAR16", "network_format": {
            "input": "INPUT_CLASSICAL_112_PLANE", "output": "OUTPUT_WDL",
            "network": "NETWORK_SE_WITH_HEADFORMAT", "policy": "POLICY_CONVOLUTION",
            "value": "VALUE_WDL", "moves_left": "MOVES_LEFT_V1"}},
        "training_params": {"training_steps": 123456, "learning_rate": float(np.float32(0.02)),
                            "lc0_params": "--some-params"}}


@pytest.mark.parametrize("compress", [False, True])
def test_lc0_attention_float_encodings_and_heads(tmp_path: Path, compress: bool) -> None:
    b = f.Lc0Builder(2)
    blob = f.lc0_net(f.lc0_attention(b))
    p = f.write_text(tmp_path / "net.pb", blob, compress=compress)
    assert detect(str(p))[0].name == "lc0"
    art = open_model(p)
    _check_lc0(art, b)
    for rec in art.tensors:            # offsets point at the params in the (decompressed) stream
        if rec.attrs["encoding"] != "LINEAR16":
            assert rec.span.in_memory == compress
            assert blob[rec.span.offset:rec.span.offset + rec.span.length] == b.layers[rec.name].params
    assert art.tensor("encoder.0.mha.q_w").dtype.name == "float16"
    assert art.tensor("encoder.0.ln1_gammas").dtype.name == "bfloat16"
    assert art.tensor("encoder.0.ffn.dense1_w").shape == (2, 8, 16)
    assert art.metadata["lc0"]["weights"] == {"headcount": 2}


def test_lc0_unknown_fields_and_empty_layers_are_listed(tmp_path: Path) -> None:
    b = f.Lc0Builder(3)
    w = f.ld(1, f.ld(1, b.linear16("input.weights", 9)) + f.ld(2, b"")) + f.uint(46, 7)
    blob = f.lc0_net(w) + f.ld(99, b"future")
    art = open_model(f.write_text(tmp_path / "n.pb.gz", blob, compress=True))
    _check_lc0(art, b)
    meta = art.metadata["lc0"]
    assert meta["empty_layers"] == ["input.biases"]
    assert sorted(meta["unknown_fields"]) == ["99", "weights.46"]


def test_lc0_dims_that_do_not_match_stay_one_dimensional(tmp_path: Path) -> None:
    b = f.Lc0Builder(4)
    w = f.ld(4, b.linear16("ip_pol_w", 12, dims=(5, 3)))
    art = open_model(f.write_text(tmp_path / "n.pb", f.lc0_net(w)))
    rec = art.tensor("ip_pol_w")
    assert rec.shape == (12,) and rec.attrs["dims"] == [5, 3]
    assert _bytes(rec.read()) == _bytes(f.expected_linear16(b.layers["ip_pol_w"]))


# --- Lc0: bad input ------------------------------------------------------------------------

MAGIC = f.fixed32(1, f.LC0_MAGIC)


@pytest.mark.parametrize(("blob", "error", "rule"), [
    (MAGIC + b"\xff" * 16, FormatError, "varint longer than 10 bytes"),
    (MAGIC + f.key(10, 2) + f.varint(1000) + b"\x0a\x02", FormatError,
     "field weights: length 1000 runs past the end of its message"),
    (MAGIC + f.ld(10, f.ld(1, f.ld(1, f.ld(3, b"\x01\x02\x03"))))[:-1], FormatError,
     "field weights: length 9 runs past the end"),
    (MAGIC + f.ld(10, f.ld(1, f.ld(1, f.ld(3, b"\x01\x02") + b"\x0d\x00"))), FormatError,
     "field weights.input.weights.min_val: 4-byte value runs past the end of its message"),
    (MAGIC + b"\x00\x01", FormatError, "field number 0 is out of range"),
    (MAGIC + b"\x0f", FormatError, "field 1 has invalid wire type 7"),
    (MAGIC + b"\x0c", FormatError, "field 1 has a stray end-group wire type 4"),
    (MAGIC + b"\x13\x08\x01", FormatError, "group 2 is not closed"),
    (MAGIC + b"\x13\x1c", FormatError, "group 2 is closed by the end tag of field 3"),
    (MAGIC + b"\x13" * 200 + b"\x14" * 200, LimitError, "groups nested deeper than 64"),
    (MAGIC + f.ld(10, f.ld(4, f.ld(3, b"\x01\x02\x03"))), FormatError,
     "layer 'ip_pol_w' has 3 bytes of LINEAR16 params, not a multiple of 2"),
    (MAGIC + f.ld(10, f.ld(4, f.ld(3, b"\0" * 6) + f.uint(4, 4))), FormatError,
     "6 bytes of FLOAT32 params, not a multiple of 4"),
    (MAGIC + f.ld(10, f.ld(4, f.ld(3, b"\0\0") + f.uint(4, 0))), FormatError,
     r"encoding 0 \(UNKNOWN_ENCODING\)"),
    (MAGIC + f.ld(10, f.ld(4, f.ld(3, b"\0\0") + f.uint(4, 9))), UnsupportedError,
     "encoding 9, which assay does not read"),
    (MAGIC + f.ld(11, f.ld(1, b"onnx") + f.uint(2, 10)), UnsupportedError, "embedded ONNX model"),
    (MAGIC + f.ld(2, b"license only"), FormatError, "Net has neither weights nor onnx_model"),
    (MAGIC + f.ld(10, f.ld(45, f.ld(7, f.ld(1, b"a") + f.ld(2, b"")) * 2)), FormatError,
     r"policy_heads.policy_head_map entry 1 has an empty or repeated key 'a'"),
    (MAGIC + f.ld(10, f.ld(44, f.ld(4, f.ld(2, b"")))), FormatError, "empty or repeated key ''"),
])
def test_lc0_rules(tmp_path: Path, blob: bytes, error: type, rule: str) -> None:
    p = f.write_text(tmp_path / "bad.pb.gz", blob, compress=True)
    with pytest.raises(error, match=rule):
        open_model(p)


def test_lc0_wrong_magic(tmp_path: Path) -> None:
    p = f.write_text(tmp_path / "w.pb", f.lc0_net(b"", header=f.fixed32(1, 0x1C1)))
    with pytest.raises(UnknownFormatError):
        open_model(p)
    with pytest.raises(FormatError, match="magic is 0x1c1, expected 0x1c0"):
        read_lc0(Probe.of(str(p), Limits()))


def test_lc0_field_and_message_budgets(tmp_path: Path) -> None:
    """Tiny messages cost far more memory than their bytes; their number is bounded first."""
    many_messages = f.write_text(tmp_path / "m.pb", MAGIC + f.ld(10, b"\x12\x00" * 5000))
    with pytest.raises(LimitError, match="too many embedded messages"):
        open_model(many_messages, Limits(max_tensors=1000))
    many_fields = f.write_text(tmp_path / "f.pb", MAGIC + b"\x18\x00" * 5000)
    with pytest.raises(LimitError, match="too many protobuf fields"):
        open_model(many_fields, Limits(max_tensors=100))
    packed = f.write_text(tmp_path / "p.pb", MAGIC + f.ld(10, f.ld(4, f.ld(5, b"\x01" * 5000))))
    with pytest.raises(LimitError, match="too many packed values"):
        open_model(packed, Limits(max_tensors=100))


def test_lc0_truncated_gzip(tmp_path: Path) -> None:
    b = f.Lc0Builder(5)
    blob = gzip.compress(f.lc0_net(f.lc0_classical(b)), mtime=0)
    p = f.write_text(tmp_path / "cut.pb.gz", blob[: len(blob) - 100])
    with pytest.raises(FormatError, match="truncated"):
        open_model(p)


def test_lc0_gzip_bomb_and_size_limit(tmp_path: Path) -> None:
    p = f.write_gzip_stream(tmp_path / "bomb.pb.gz", MAGIC, b"\0", 200 << 20)
    assert detect(str(p))[0].name == "lc0"
    with pytest.raises(LimitError, match="compression ratio limit"):
        open_model(p)
    b = f.Lc0Builder(6)
    ok = f.write_text(tmp_path / "ok.pb.gz", f.lc0_net(f.lc0_classical(b)), compress=True)
    with pytest.raises(LimitError, match="past the limit of 1000 bytes"):
        open_model(ok, Limits(max_decompressed_bytes=1000))
    few = f.write_text(tmp_path / "few.pb", f.lc0_net(f.lc0_classical(f.Lc0Builder(7), blocks=0)))
    with pytest.raises(LimitError, match="more than 20 layers"):
        open_model(few, Limits(max_tensors=20))


# --- Lc0: assay's wire decoder agrees with the protobuf runtime ---------------------------

def _decode(blob: bytes) -> Any:
    return f.plain_tree(NetDecoder(memoryview(blob), "x", Limits()).net())


def _upb(blob: bytes) -> object:
    msg = f.upb_net_class()()
    msg.ParseFromString(blob)
    return f.upb_tree(msg)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


TRICKY = f.lc0_header() + f.ld(10, (
    f.ld(1, f.ld(1, f.ld(3, b"ab") + f.uint(5, 3) + f.uint(4, 1 << 33 | 2)))   # uint32 truncates
    + f.ld(1, f.ld(1, f.ld(3, b"cd") + f.ld(5, b"\x02\x03")) + f.ld(2, f.f32(1, 0.5)))  # merged
    + f.ld(2, b"") + f.ld(2, f.ld(3, f.ld(2, f.ld(3, b"\x00\x01"))))
    + f.uint(28, 7) + f.uint(28, 9)                                     # last one wins
    + f.uint(4, 5) + f.key(9, 0) + f.varint(3)                          # wrong wire types: unknown
    + f.ld(45, f.ld(7, f.ld(1, b"k") + f.ld(2, f.ld(1, f.ld(3, b"zz"))))))) + (
    f.ld(99, b"x") + f.key(7, 3) + f.uint(1, 5) + f.key(7, 4) + f.key(8, 1) + b"\0" * 8)


def test_wire_decoder_matches_protobuf_on_tricky_encodings() -> None:
    b = f.Lc0Builder(8)
    for blob in (TRICKY, f.lc0_net(f.lc0_classical(b, blocks=1) + f.lc0_attention(b))):
        assert _same(_decode(blob), _upb(blob))
    tree = _decode(TRICKY)
    layer = tree["weights"]["input"]["weights"]
    assert layer == {"params": b"cd", "dims": [3, 2, 3], "encoding": 2}
    assert tree["weights"]["headcount"] == 9
    dec = NetDecoder(memoryview(TRICKY), "x", Limits())
    dec.net()
    assert sorted(dec.unknown) == ["7", "8", "99", "weights.4", "weights.9"]   # 7 is a group


def test_lc0_wire_errors_keep_their_offset(tmp_path: Path) -> None:
    p = f.write_text(tmp_path / "w.pb", MAGIC + f.key(10, 2) + f.varint(1000) + b"\x0a\x02")
    with pytest.raises(FormatError, match="field weights: length 1000") as info:
        read_lc0(Probe.of(str(p), Limits()))
    assert info.value.offset == 6                  # the length, after the magic and the key


def test_wire_decoder_matches_protobuf_on_mutations() -> None:
    """Seeded random damage: both accept with the same result, or both refuse."""
    rng = random.Random(7)
    agree = {True: 0, False: 0}
    for _ in range(400):
        blob = bytearray(TRICKY)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(blob))
            if rng.random() < 0.6:
                blob[at] = rng.randrange(256)
            else:
                del blob[at:at + rng.randint(1, 6)]
        try:
            ours: object = _decode(bytes(blob))
        except FormatError:
            ours = None
        try:
            theirs: object = _upb(bytes(blob))
        except Exception:
            theirs = None
        assert (ours is None) == (theirs is None), bytes(blob).hex()
        assert ours is None or _same(ours, theirs), bytes(blob).hex()
        agree[ours is not None] += 1
    assert agree[True] > 50 and agree[False] > 50


# --- Recognition ---------------------------------------------------------------------------

@pytest.mark.parametrize("blob", [
    gzip.compress(b"hello world, not a network\n"),
    gzip.compress(b"1\nhello"),
    b"1\nhello",
    b"\x1f\x8b\x08\x00garbage",
    zlib.compress(f.fixed32(1, f.LC0_MAGIC)),          # zlib, not gzip
])
def test_other_content_is_not_claimed(tmp_path: Path, blob: bytes) -> None:
    p = f.write_text(tmp_path / "x.gz", blob)
    try:
        reader, _ = detect(str(p))
    except UnknownFormatError:
        return
    assert reader.name not in ("lc0", "leela-zero")  # e.g. joblib claims a damaged gzip stream
