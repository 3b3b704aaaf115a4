"""Leela Zero (Go) text weights and Lc0 (chess) protobuf weights, read from the published formats.

Both are usually gzip-compressed and both engines also read them uncompressed (zlib's `gzopen`
is transparent), so both readers take either. gzip is inflated here in bounded steps under
`Limits.max_decompressed_bytes` and `Limits.max_compression_ratio`; concatenated gzip members are
read as one stream, bytes after the last member are recorded as `trailing.bytes`.

Leela Zero (leela-zero `src/Network.cpp`, `training/tf/tfprocess.py`): a text file. Line 1 is
the version, `1`, or `2` for the ELF variant whose value head scores for black. Every further
line is one tensor as whitespace-separated decimal floats: the input convolution (weights,
biases, batch-norm means, batch-norm variances), two such convolutions per residual block, then
the policy head (1x1 conv weights, biases, bn means, bn variances, fc weights, fc biases) and the
value head (1x1 conv weights, biases, bn means, bn variances, fc1 weights, fc1 biases, fc2
weights, fc2 biases). Weights are (out, in, kh, kw) and (out, in), row-major. The block and
filter counts and every head size are derived from the data; every line's length is checked.

Lc0 (`proto/net.proto` of lc0 / lczero-common, package `pblczero`): a protobuf `Net` message
whose first field is `magic` (fixed32, 0x1c0). The wire format is read by `assay.io.protobuf`
(field tables over the buffer, with a `Budget` bounding fields and messages by
`Limits.max_tensors`), and turned into dicts following the table `NET_PROTO` below (the
published field numbers), not by the protobuf runtime: upb would need tens of bytes of memory
per embedded message before any limit could be checked, while this keeps the bounds and the
byte offset of every tensor. Every `Weights.Layer` under `Net.weights` becomes one tensor named
by its field path.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from assay.errors import FormatError, LimitError, UnsupportedError
from assay.formats.base import Probe, Reader, record_from_array, record_from_buffer, record_from_file
from assay.io.protobuf import (
    I32,
    LEN,
    MAX_GROUP_DEPTH,
    VARINT,
    BoundedMessage,
    Budget,
    LimitExceeded,
    Message,
    WireError,
)
from assay.limits import Limits
from assay.model.artifact import ModelArtifact
from assay.model.dtypes import DTYPES
from assay.model.tensor import TensorRecord, map_file

if TYPE_CHECKING:
    import numpy as np

GZIP_MAGIC = b"\x1f\x8b"
READ_STEP = 1 << 20          # compressed bytes read from the file at a time
INFLATE_STEP = 1 << 20       # most bytes one inflate call may produce
RATIO_SLACK = 1 << 20        # output allowed beyond ratio x (compressed bytes consumed so far)
SNIFF_BYTES = 64             # decompressed bytes a sniffer looks at

# ---------------------------------------------------------------------------------------------
# gzip (or plain) payload under limits


@dataclass
class Payload:
    """A network file's bytes after decompression, and where trailing bytes start."""

    data: bytes | bytearray | memoryview
    compression: str | None          # "gzip" or None
    trailing_at: int = 0              # offset of bytes after the last gzip member
    trailing: int = 0                 # how many there are


def prefix(head: bytes) -> bytes:
    """The first decompressed bytes of a gzip head, or the head itself; b"" if not inflatable."""
    if head[:2] != GZIP_MAGIC:
        return head[:SNIFF_BYTES]
    try:
        return zlib.decompressobj(31).decompress(head, SNIFF_BYTES)
    except zlib.error:
        return b""


def load_payload(p: Probe, fmt: str, *, mapped: bool = False) -> Payload:
    """The file inflated (gzip) or as it is: read into memory, or memory-mapped if `mapped`."""
    if p.head[:2] == GZIP_MAGIC:
        return _Inflater(p, fmt).run()
    if p.size > p.limits.max_decompressed_bytes:
        raise LimitError(p.path, f"{fmt}: file of {p.size} bytes is over the limit of "
                         f"{p.limits.max_decompressed_bytes} bytes held in memory")
    if mapped:
        return Payload(map_file(p.path), None)
    with open(p.path, "rb") as fh:
        return Payload(fh.read(), None)


class _Inflater:
    """Inflate a (multi-member) gzip file in bounded steps, checking size and ratio as it grows."""

    def __init__(self, p: Probe, fmt: str) -> None:
        self.path, self.size, self.lim, self.fmt = p.path, p.size, p.limits, fmt
        self.out = bytearray()
        self.consumed = 0

    def run(self) -> Payload:
        with open(self.path, "rb") as fh:
            pending = fh.read(READ_STEP)
            while True:
                rest = self._member(fh, pending)
                while len(rest) < 2 and (more := fh.read(READ_STEP)):
                    rest += more
                if not rest:
                    return Payload(self.out, "gzip")
                if rest[:2] != GZIP_MAGIC:
                    return Payload(self.out, "gzip", self.consumed, self.size - self.consumed)
                pending = rest

    def _member(self, fh: BinaryIO, data: bytes) -> bytes:
        d = zlib.decompressobj(31)
        while not d.eof:
            if not data:
                data = fh.read(READ_STEP)
            room = min(INFLATE_STEP, self.lim.max_decompressed_bytes - len(self.out) + 1)
            try:
                piece = d.decompress(data, room)
            except zlib.error as exc:
                raise FormatError(self.path, f"{self.fmt}: gzip data is corrupt ({exc})",
                                  offset=self.consumed) from None
            self.consumed += len(data) - len(d.unconsumed_tail) - len(d.unused_data)
            if not data and not piece:
                raise FormatError(self.path, f"{self.fmt}: gzip stream ends before its end marker "
                                  "(truncated)", offset=self.consumed)
            self.out += piece
            self._check()
            data = d.unconsumed_tail
        return d.unused_data

    def _check(self) -> None:
        cap, ratio = self.lim.max_decompressed_bytes, self.lim.max_compression_ratio
        if len(self.out) > cap:
            raise LimitError(self.path, f"{self.fmt}: gzip data inflates past the limit of {cap} bytes")
        if len(self.out) > self.consumed * ratio + RATIO_SLACK:
            raise LimitError(self.path, f"{self.fmt}: gzip data inflates more than {ratio}:1 "
                             f"({len(self.out)} bytes from {self.consumed}; compression ratio limit)")


def _new_artifact(p: Probe, fmt: str, payload: Payload) -> ModelArtifact:
    art = ModelArtifact(path=p.path, format=fmt, files=[p.path])
    if payload.trailing:
        art.observe("trailing.bytes", f"{payload.trailing} bytes after the last gzip member",
                    p.path, offset=payload.trailing_at, length=payload.trailing)
    return art


# ---------------------------------------------------------------------------------------------
# Leela Zero text weights

LZ_SNIFF = re.compile(rb"[12][ \t\r]*\n[ \t\r\v\f]*[-+]?(?:\d|\.\d|nan|inf)", re.IGNORECASE)
_SEP = rb"[ \t\r\v\f]"
_NUM = rb"[-+]?+(?:(?:\d++\.?+\d*+|\.\d++)(?:[eE][-+]?+\d++)?+|(?i:nan|inf(?:inity)?+))"
LZ_WORD_END = re.compile(rb"[^ \t\r\v\f]*\Z")
LZ_LINE = re.compile(_SEP + rb"*+(?:" + _NUM + rb"(?:" + _SEP + rb"++" + _NUM + rb")*+)?+" + _SEP + rb"*+")
LZ_HEAD_LINES = 4 + 14       # input convolution + policy and value heads
LZ_BLOCK_LINES = 8           # two convolutions of four lines per residual block
LZ_VERSIONS = {1: "side to move", 2: "black"}   # what the value head scores


def sniff_leela_zero(p: Probe) -> bool:
    return LZ_SNIFF.match(prefix(p.head)) is not None


def read_leela_zero(p: Probe) -> ModelArtifact:
    path = p.path
    payload = load_payload(p, "leela-zero")           # read, never mapped: bytes or bytearray
    data = payload.data
    assert not isinstance(data, memoryview)
    spans = _line_spans(data, path, p.limits)
    version = _lz_version(bytes(data[spans[0][0]:spans[0][1]]), path)
    view = memoryview(data)
    arrays = [_lz_numbers(bytes(view[s:e]), i + 2, path) for i, (s, e) in enumerate(spans[1:])]
    view.release()
    layout, meta = _lz_layout([a.size for a in arrays], path)
    art = _new_artifact(p, "leela-zero", payload)
    art.metadata["leela-zero"] = {"version": version, "value_head_scores_for": LZ_VERSIONS[version],
                                  **meta, "compression": payload.compression}
    for i, ((name, shape), arr) in enumerate(zip(layout, arrays)):
        art.tensors.append(record_from_array(name, arr.reshape(shape), path, line=i + 2))
    return art


def _line_spans(data: bytes | bytearray, path: str, lim: Limits) -> list[tuple[int, int]]:
    """(start, end) of every line; a final newline does not start another line."""
    n = data.count(b"\n") + 1
    if n > lim.max_tensors + 2:           # the version line and a final newline
        raise LimitError(path, f"leela-zero: {n} lines exceed the limit of {lim.max_tensors} tensors")
    spans, at = [], 0
    for _ in range(n):
        end = data.find(b"\n", at)
        end = len(data) if end < 0 else end
        spans.append((at, end))
        at = end + 1
    if len(spans) > 1 and spans[-1][0] == spans[-1][1]:
        spans.pop()                   # the newline that ends the last line
    return spans


def _lz_version(line: bytes, path: str) -> int:
    text = line.strip()
    if text not in (b"1", b"2"):
        raise FormatError(path, f"leela-zero: line 1 must be the version 1 or 2, not {text[:20]!r}")
    return int(text)


def _lz_numbers(raw: bytes, line_no: int, path: str) -> np.ndarray:
    if LZ_LINE.fullmatch(raw) is None:
        raise FormatError(path, f"leela-zero: line {line_no}: {_bad_token(raw)!r} is not a number")
    import numpy as np
    with np.errstate(over="ignore"):
        return np.fromstring(raw, dtype=np.float64, sep=" ").astype(np.float32)


def _bad_token(raw: bytes) -> bytes:
    """The token where the longest well-formed start of a line ends (at most 40 bytes of it)."""
    m = LZ_LINE.match(raw)          # always matches: every part of the pattern is optional
    at = m.end() if m else 0
    tail = LZ_WORD_END.search(raw, max(0, at - 40), at)
    start = tail.start() if tail else at
    return (raw[start:at + 40].split() or [raw[start:at + 40]])[0][:40]


class _Sizes(NamedTuple):
    """Element counts of the weight lines (index 0 is file line 2) and their checks."""

    counts: list[int]
    path: str

    def nonzero(self, i: int, what: str) -> int:
        if self.counts[i] == 0:
            raise FormatError(self.path, f"leela-zero: line {i + 2} ({what}) is empty")
        return self.counts[i]

    def per(self, i: int, unit: int, what: str, unit_text: str) -> int:
        n = self.counts[i]
        if n == 0 or n % unit:
            raise FormatError(self.path, f"leela-zero: line {i + 2} ({what}) has {n} numbers, "
                              f"not a positive multiple of {unit_text} = {unit}")
        return n // unit


def _lz_layout(counts: list[int], path: str) -> tuple[list[tuple[str, tuple[int, ...]]], dict[str, Any]]:
    n = len(counts)
    if n < LZ_HEAD_LINES or (n - LZ_HEAD_LINES) % LZ_BLOCK_LINES:
        raise FormatError(path, f"leela-zero: {n} weight lines after the version line; the format "
                          f"needs {LZ_HEAD_LINES} + {LZ_BLOCK_LINES} x blocks")
    blocks = (n - LZ_HEAD_LINES) // LZ_BLOCK_LINES
    s = _Sizes(counts, path)
    c = s.nonzero(1, "input.conv.bias")
    planes = s.per(0, 9 * c, "input.conv.weight", f"3 x 3 x {c} filters")
    h = 4 + LZ_BLOCK_LINES * blocks
    pol, moves = s.nonzero(h + 1, "policy.conv.bias"), s.nonzero(h + 5, "policy.fc.bias")
    val, hidden = s.nonzero(h + 7, "value.conv.bias"), s.nonzero(h + 11, "value.fc1.bias")
    out = s.nonzero(h + 13, "value.fc2.bias")
    points = s.per(h + 10, hidden * val, "value.fc1.weight", f"{hidden} outputs x {val} planes")
    layout = _conv("input", "conv", "bn", c, planes, 3)
    for b in range(blocks):
        layout += _conv(f"res.{b}", "conv1", "bn1", c, c, 3) + _conv(f"res.{b}", "conv2", "bn2", c, c, 3)
    layout += _conv("policy", "conv", "bn", pol, c, 1)
    layout += [("policy.fc.weight", (moves, pol * points)), ("policy.fc.bias", (moves,))]
    layout += _conv("value", "conv", "bn", val, c, 1)
    layout += [("value.fc1.weight", (hidden, val * points)), ("value.fc1.bias", (hidden,)),
               ("value.fc2.weight", (out, hidden)), ("value.fc2.bias", (out,))]
    for i, (name, shape) in enumerate(layout):
        if math.prod(shape) != counts[i]:
            raise FormatError(path, f"leela-zero: line {i + 2} ({name}) has {counts[i]} numbers; "
                              f"expected {math.prod(shape)} for shape {list(shape)}")
    side = math.isqrt(points)
    meta = {"blocks": blocks, "filters": c, "input_planes": planes, "board_points": points,
            "board_size": side if side * side == points else None, "policy_outputs": moves,
            "value_hidden": hidden}
    return layout, meta


def _conv(scope: str, conv: str, bn: str, outs: int, ins: int, k: int) -> list[tuple[str, tuple[int, ...]]]:
    """A convolution and its batch norm: weights (out, in, k, k), biases, means, variances."""
    return [(f"{scope}.{conv}.weight", (outs, ins, k, k)), (f"{scope}.{conv}.bias", (outs,)),
            (f"{scope}.{bn}.mean", (outs,)), (f"{scope}.{bn}.variance", (outs,))]


# ---------------------------------------------------------------------------------------------
# Lc0 protobuf weights

LC0_MAGIC = 0x1C0
LC0_PREFIX = b"\x0d" + LC0_MAGIC.to_bytes(4, "little")   # field 1, wire type 5 (fixed32)

# The messages of pblczero's net.proto that assay reads, one per line (indented lines continue
# the message above): `field=number:type`, the type `Layer` when left out, `*` for repeated
# (a message, or `uint32`: the scalar kinds `REPEATED_READ` knows).
# Strings are kept as bytes (decoded leniently for metadata) and enums as integers (named from
# `ENUMS`), so invalid text or an enum value this table does not know stays visible.
NET_PROTO = """
EngineVersion major=1:uint32 minor=2:uint32 patch=3:uint32
Layer min_val=1:float max_val=2:float params=3:bytes encoding=4:uint32 dims=5:*uint32
ConvBlock weights=1 biases=2 bn_means=3 bn_stddivs=4 bn_gammas=5 bn_betas=6
SEunit w1=1 b1=2 w2=3 b2=4
Residual conv1=1:ConvBlock conv2=2:ConvBlock se=3:SEunit
Smolgen compress=1 dense1_w=2 dense1_b=3 ln1_gammas=4 ln1_betas=5 dense2_w=6 dense2_b=7
    ln2_gammas=8 ln2_betas=9
MHA q_w=1 q_b=2 k_w=3 k_b=4 v_w=5 v_b=6 dense_w=7 dense_b=8 smolgen=9:Smolgen
    rpe_q=10 rpe_k=11 rpe_v=12
FFN dense1_w=1 dense1_b=2 dense2_w=3 dense2_b=4
EncoderLayer mha=1:MHA ln1_gammas=2 ln1_betas=3 ffn=4:FFN ln2_gammas=5 ln2_betas=6
PolicyHead ip_pol_w=1 ip_pol_b=2 ip2_pol_w=3 ip2_pol_b=4 ip3_pol_w=5 ip3_pol_b=6 ip4_pol_w=7
    pol_encoder=8:*EncoderLayer pol_headcount=9:uint32 policy1=10:ConvBlock policy=11:ConvBlock
ValueHead ip_val_w=1 ip_val_b=2 ip1_val_w=3 ip1_val_b=4 ip2_val_w=5 ip2_val_b=6
    ip_val_err_w=7 ip_val_err_b=8 ip_val_cat_w=9 ip_val_cat_b=10 value=11:ConvBlock
PolicyHeadMap key=1:bytes value=2:PolicyHead
PolicyHeads ip_pol_w=1 ip_pol_b=2 vanilla=3:PolicyHead optimistic_st=4:PolicyHead
    soft=5:PolicyHead opponent=6:PolicyHead policy_head_map=7:*PolicyHeadMap
ValueHeadMap key=1:bytes value=2:ValueHead
ValueHeads winner=1:ValueHead q=2:ValueHead st=3:ValueHead value_head_map=4:*ValueHeadMap
Weights input=1:ConvBlock residual=2:*Residual policy=3:ConvBlock ip_pol_w=4 ip_pol_b=5
    value=6:ConvBlock ip1_val_w=7 ip1_val_b=8 ip2_val_w=9 ip2_val_b=10 policy1=11:ConvBlock
    moves_left=12:ConvBlock ip1_mov_w=13 ip1_mov_b=14 ip2_mov_w=15 ip2_mov_b=16
    ip2_pol_w=17 ip2_pol_b=18 ip3_pol_w=19 ip3_pol_b=20 pol_encoder=21:*EncoderLayer
    ip4_pol_w=22 pol_headcount=24:uint32 ip_emb_w=25 ip_emb_b=26 encoder=27:*EncoderLayer
    headcount=28:uint32 ip_val_w=29 ip_val_b=30 ip_mov_w=31 ip_mov_b=32 ip_mult_gate=33
    ip_add_gate=34 smolgen_w=35 smolgen_b=36 ip_emb_preproc_w=37 ip_emb_preproc_b=38
    ip_emb_ln_gammas=39 ip_emb_ln_betas=40 ip_emb_ffn=41:FFN ip_emb_ffn_ln_gammas=42
    ip_emb_ffn_ln_betas=43 value_heads=44:ValueHeads policy_heads=45:PolicyHeads
TrainingParams training_steps=1:uint32 learning_rate=2:float mse_loss=3:float
    policy_loss=4:float accuracy=5:float lc0_params=6:bytes
NetworkFormat input=1:uint32 output=2:uint32 network=3:uint32 policy=4:uint32 value=5:uint32
    moves_left=6:uint32 default_activation=7:uint32 smolgen_activation=8:uint32
    ffn_activation=9:uint32 input_embedding=10:uint32
Format weights_encoding=1:uint32 network_format=2:NetworkFormat
OnnxModel model=1:bytes data_type=2:uint32 input_planes=3:bytes output_value=4:bytes
    output_wdl=5:bytes output_policy=6:bytes output_mlh=7:bytes
Net magic=1:fixed32 license=2:bytes min_version=3:EngineVersion format=4:Format
    training_params=5:TrainingParams weights=10:Weights onnx_model=11:OnnxModel
"""


def parse_schema(text: str) -> dict[str, list[tuple[str, int, str]]]:
    """`NET_PROTO` as message name -> [(field name, number, type)]."""
    schema: dict[str, list[tuple[str, int, str]]] = {}
    fields: list[tuple[str, int, str]] = []
    for line in text.strip().splitlines():
        words = line.split()
        if not line[0].isspace():
            fields = schema.setdefault(words.pop(0), [])
        for word in words:
            name, _, spec = word.partition("=")
            number, _, kind = spec.partition(":")
            fields.append((name, int(number), kind or "Layer"))
    return schema


SCALAR_WIRE = {"uint32": VARINT, "float": I32, "fixed32": I32, "bytes": LEN}   # messages: LEN


@dataclass(frozen=True)
class Field:
    """One field of the Lc0 protobuf schema this reader knows."""

    name: str
    kind: str            # "uint32", "float", "fixed32", "bytes" or a message name
    repeated: bool

    @cached_property
    def wires(self) -> frozenset[int]:
        """The wire types it is read from (a repeated scalar may be packed); an entry with
        another one is an unknown field."""
        natural = SCALAR_WIRE.get(self.kind, LEN)
        return frozenset((natural, LEN) if self.repeated else (natural,))


SCHEMA: dict[str, dict[int, Field]] = {
    msg: {number: Field(name, kind.lstrip("*"), kind.startswith("*")) for name, number, kind in fields}
    for msg, fields in parse_schema(NET_PROTO).items()}
ORDERED = {msg: [fields[n] for n in sorted(fields)] for msg, fields in SCHEMA.items()}

_ACTIVATIONS = dict(enumerate(
    "DEFAULT MISH RELU NONE TANH SIGMOID SELU SWISH RELU_2 SOFTMAX".split()))
ENUMS: dict[str, dict[int, str]] = {
    "weights_encoding": {0: "UNKNOWN", 1: "LINEAR16"},
    "input": {0: "INPUT_UNKNOWN", 1: "INPUT_CLASSICAL_112_PLANE", 2: "INPUT_112_WITH_CASTLING_PLANE",
              3: "INPUT_112_WITH_CANONICALIZATION", 4: "INPUT_112_WITH_CANONICALIZATION_HECTOPLIES",
              132: "INPUT_112_WITH_CANONICALIZATION_HECTOPLIES_ARMAGEDDON",
              5: "INPUT_112_WITH_CANONICALIZATION_V2",
              133: "INPUT_112_WITH_CANONICALIZATION_V2_ARMAGEDDON"},
    "output": {0: "OUTPUT_UNKNOWN", 1: "OUTPUT_CLASSICAL", 2: "OUTPUT_WDL"},
    "network": {0: "NETWORK_UNKNOWN", 1: "NETWORK_CLASSICAL", 2: "NETWORK_SE",
                3: "NETWORK_CLASSICAL_WITH_HEADFORMAT", 4: "NETWORK_SE_WITH_HEADFORMAT",
                5: "NETWORK_ONNX", 6: "NETWORK_ATTENTIONBODY_WITH_HEADFORMAT",
                7: "NETWORK_ATTENTIONBODY_WITH_MULTIHEADFORMAT",
                134: "NETWORK_AB_LEGACY_WITH_MULTIHEADFORMAT"},
    "policy": {0: "POLICY_UNKNOWN", 1: "POLICY_CLASSICAL", 2: "POLICY_CONVOLUTION", 3: "POLICY_ATTENTION"},
    "value": {0: "VALUE_UNKNOWN", 1: "VALUE_CLASSICAL", 2: "VALUE_WDL", 3: "VALUE_PARAM"},
    "moves_left": {0: "MOVES_LEFT_NONE", 1: "MOVES_LEFT_V1"},
    "default_activation": {0: "DEFAULT_ACTIVATION_RELU", 1: "DEFAULT_ACTIVATION_MISH"},
    "smolgen_activation": {k: f"ACTIVATION_{v}" for k, v in _ACTIVATIONS.items()},
    "ffn_activation": {k: f"ACTIVATION_{v}" for k, v in _ACTIVATIONS.items()},
    "input_embedding": {0: "INPUT_EMBEDDING_NONE", 1: "INPUT_EMBEDDING_PE_MAP",
                        2: "INPUT_EMBEDDING_PE_DENSE"},
    "data_type": {0: "UNKNOWN_DATATYPE", 1: "FLOAT", 10: "FLOAT16", 16: "BFLOAT16"},
}

# Weights.Layer.encoding -> (name, canonical dtype of the stored values); unset means LINEAR16.
LINEAR16 = 1
LAYER_ENCODINGS = {1: ("LINEAR16", "uint16"), 2: ("FLOAT16", "float16"),
                   3: ("BFLOAT16", "bfloat16"), 4: ("FLOAT32", "float32")}
MAX_UNKNOWN_LISTED = 256

# The bounds of one decode (a `Budget` of `assay.io.protobuf`).
FIELDS_PER_TENSOR = 16       # protobuf fields allowed per allowed tensor (Limits.max_tensors)
MESSAGES_PER_TENSOR = 2      # embedded messages allowed per allowed tensor
LIMIT_MESSAGES = {           # LimitExceeded.what -> lc0's message
    "fields": f"too many protobuf fields (limit {FIELDS_PER_TENSOR} per allowed tensor)",
    "values": "too many packed values",
    "messages": f"too many embedded messages (limit {MESSAGES_PER_TENSOR} per allowed tensor)",
    "depth": f"groups nested deeper than {MAX_GROUP_DEPTH}",
}


class Blob(NamedTuple):
    """A bytes field: where it starts in the (decompressed) stream and a view of its bytes."""

    offset: int
    view: memoryview


Decoded = dict[str, Any]   # field name -> value; message fields are Decoded, repeated ones lists


def _blob(msg: Message, number: int) -> Blob:
    start, stop = msg.span(number) or (0, 0)
    return Blob(start, memoryview(msg.buf)[start:stop])


SCALAR_READ: dict[str, Callable[[Message, int], Any]] = {
    "uint32": Message.uint32, "float": Message.float32, "fixed32": Message.fixed32, "bytes": _blob}
REPEATED_READ: dict[str, Callable[[Message, int], list[Any]]] = {"uint32": Message.uint32s}


class NetDecoder:
    """pblczero messages as `Decoded` dicts following `SCHEMA`, from the field tables that
    `assay.io.protobuf` parses (the wire format, its checks and its bounds are there).

    protobuf's rules: a repeated scalar may come packed or not; a singular field seen twice
    keeps the last value, a singular message seen twice is merged; a field whose number the
    schema does not know, or that comes with another wire type, is an unknown field, listed in
    `unknown` and skipped (groups included). The fields and embedded messages of the whole
    decode share one `Budget` derived from `Limits.max_tensors`."""

    def __init__(self, buf: memoryview, path: str, limits: Limits) -> None:
        self.buf, self.path = buf, path
        self.budget = Budget(FIELDS_PER_TENSOR * limits.max_tensors + 1024,
                             MESSAGES_PER_TENSOR * limits.max_tensors + 64)
        self.unknown: list[str] = []

    def net(self) -> Decoded:
        """The whole buffer as a `Net`."""
        try:
            top = BoundedMessage(self.buf, [(0, len(self.buf))], self.budget)
        except WireError as e:
            raise self.error(e, "Net", "") from None
        return self.convert("Net", top, "")

    def error(self, e: WireError, kind: str, where: str) -> FormatError:
        """A wire error met while parsing a `kind` message at path `where`, as lc0's
        FormatError (LimitError for a bound), with its byte offset."""
        if isinstance(e, LimitExceeded):
            return LimitError(self.path, f"lc0: {LIMIT_MESSAGES[e.what]}", offset=e.offset)
        return FormatError(self.path, f"lc0: {_describe(e, kind, where)}", offset=e.offset)

    def convert(self, kind: str, msg: Message, where: str) -> Decoded:
        out: Decoded = {}
        schema = SCHEMA[kind]
        for number, entries in msg.fields.items():
            if number < 0:                       # a group (io.protobuf lists it so): unknown
                self.note_unknown(f"{where}{-number}")
                continue
            f = schema.get(number)
            wires = f.wires if f is not None else frozenset()
            other = [e for e in entries if e[0] not in wires]
            if other:
                self.note_unknown(f"{where}{number}")
            if f is not None and len(other) < len(entries):
                out[f.name] = self.value(kind, f, msg, number, where)
        return out

    def value(self, kind: str, f: Field, msg: Message, number: int, where: str) -> Any:
        name = where + f.name
        if f.kind in SCHEMA and f.repeated:
            return self.children(f.kind, msg, number, name)
        if f.kind in SCHEMA:
            try:
                child = msg.message(number)
            except WireError as e:
                raise self.error(e, f.kind, name + ".") from None
            return self.convert(f.kind, child, name + ".")
        if f.repeated:
            try:
                return REPEATED_READ[f.kind](msg, number)
            except WireError as e:
                raise self.error(e, kind, where) from None
        return SCALAR_READ[f.kind](msg, number)

    def children(self, kind: str, msg: Message, number: int, name: str) -> list[Decoded]:
        """A repeated message field, each occurrence parsed as it is reached."""
        items: list[Decoded] = []
        occurrences = msg.messages(number)
        while True:
            where = f"{name}.{len(items)}."
            try:
                child = next(occurrences, None)
            except WireError as e:
                raise self.error(e, kind, where) from None
            if child is None:
                return items
            items.append(self.convert(kind, child, where))

    def note_unknown(self, entry: str) -> None:
        if len(self.unknown) < MAX_UNKNOWN_LISTED and entry not in self.unknown:
            self.unknown.append(entry)


def _describe(e: WireError, kind: str, where: str) -> str:
    """A wire error's reason, naming the field of a `kind` message (at `where`) it is in."""
    if e.field is None:
        return e.reason
    f = SCHEMA[kind].get(e.field)
    name = f"field {where}{f.name}" if f is not None else f"unknown field {where}{e.field}"
    return f"{name}: {e.reason}"


def sniff_lc0(p: Probe) -> bool:
    return prefix(p.head).startswith(LC0_PREFIX)


def read_lc0(p: Probe) -> ModelArtifact:
    payload = load_payload(p, "lc0", mapped=True)
    buf = memoryview(payload.data)
    dec = NetDecoder(buf, p.path, p.limits)
    net = dec.net()
    if net.get("magic") != LC0_MAGIC:
        got = hex(net["magic"]) if "magic" in net else "missing"
        raise FormatError(p.path, f"lc0: magic is {got}, expected {hex(LC0_MAGIC)}")
    art = _new_artifact(p, "lc0", payload)
    meta = art.metadata["lc0"] = _lc0_metadata(net)
    if "weights" not in net:
        if "onnx_model" in net:
            raise UnsupportedError(p.path, "lc0: the network is an embedded ONNX model "
                                   "(Net.onnx_model), which assay does not read inside lc0 files")
        raise FormatError(p.path, "lc0: Net has neither weights nor onnx_model")
    walk = _Walk(p, payload.compression is None)
    walk.message("Weights", net["weights"], "")
    art.tensors.extend(walk.tensors)
    extras = {"weights": walk.scalars, "empty_layers": walk.empty, "unknown_fields": dec.unknown}
    meta.update({k: v for k, v in extras.items() if v})
    return art


def _text(blob: Blob) -> str:
    return bytes(blob.view).decode("utf-8", errors="replace")


def _plain(kind: str, msg: Decoded) -> dict[str, Any]:
    """A small message's set fields as JSON-friendly values, enums by name."""
    out: dict[str, Any] = {}
    for f in ORDERED[kind]:
        if f.name not in msg:
            continue
        value = msg[f.name]
        if f.kind in SCHEMA:
            out[f.name] = _plain(f.kind, value)
        elif isinstance(value, Blob):
            out[f.name] = {"bytes": len(value.view)} if f.name == "model" else _text(value)
        else:
            out[f.name] = ENUMS[f.name].get(value, value) if f.name in ENUMS else value
    return out


def _lc0_metadata(net: Decoded) -> dict[str, Any]:
    meta: dict[str, Any] = {"magic": net["magic"]}
    if "license" in net:
        meta["license"] = _text(net["license"])
    if "min_version" in net:
        v = net["min_version"]
        meta["min_version"] = f"{v.get('major', 0)}.{v.get('minor', 0)}.{v.get('patch', 0)}"
    for f in ORDERED["Net"]:
        if f.name in ("format", "training_params", "onnx_model") and f.name in net:
            meta[f.name] = _plain(f.kind, net[f.name])
    return meta


class _Walk:
    """Every Layer under Weights as one tensor named by its field path; scalars set aside."""

    def __init__(self, p: Probe, plain: bool) -> None:
        self.path, self.lim, self.plain = p.path, p.limits, plain
        self.tensors: list[TensorRecord] = []
        self.names: set[str] = set()
        self.scalars: dict[str, Any] = {}
        self.empty: list[str] = []

    def message(self, kind: str, msg: Decoded, prefix: str) -> None:
        for f in ORDERED[kind]:
            if f.name not in msg:
                continue
            value, name = msg[f.name], prefix + f.name
            if f.kind == "Layer":
                self.layer(value, name)
            elif f.kind not in SCHEMA:
                self.scalars[name] = value
            elif not f.repeated:
                self.message(f.kind, value, name + ".")
            elif f.kind.endswith("Map"):
                self.keyed(f.kind, value, name)
            else:
                for i, item in enumerate(value):
                    self.message(f.kind, item, f"{name}.{i}.")

    def keyed(self, kind: str, entries: list[Decoded], name: str) -> None:
        value_kind = SCHEMA[kind][2].kind
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            key = _text(entry["key"]) if "key" in entry else ""
            if not key or key in seen:
                raise FormatError(self.path, f"lc0: {name} entry {i} has an empty or repeated key {key!r}")
            seen.add(key)
            self.message(value_kind, entry.get("value", {}), f"{name}.{key}.")

    def layer(self, layer: Decoded, name: str) -> None:
        if "params" not in layer or not len(layer["params"].view):
            self.empty.append(name)
            return
        if name in self.names:
            raise FormatError(self.path, f"lc0: two layers are named {name!r}")
        if len(self.tensors) >= self.lim.max_tensors:
            raise LimitError(self.path, f"lc0: more than {self.lim.max_tensors} layers")
        self.names.add(name)
        self.tensors.append(_layer_record(layer, name, self.path, self.lim, self.plain))


def _layer_encoding(layer: Decoded, name: str, path: str) -> int:
    code = layer.get("encoding", LINEAR16)
    if code == 0:
        raise FormatError(path, f"lc0: layer {name!r} has encoding 0 (UNKNOWN_ENCODING)")
    if code not in LAYER_ENCODINGS:
        raise UnsupportedError(path, f"lc0: layer {name!r} has encoding {code}, which assay does not read")
    return int(code)


def _layer_record(layer: Decoded, name: str, path: str, lim: Limits, plain: bool) -> TensorRecord:
    code = _layer_encoding(layer, name, path)
    encoding, stored = LAYER_ENCODINGS[code]
    dt, params = DTYPES[stored], layer["params"]
    if len(params.view) % dt.itemsize:
        raise FormatError(path, f"lc0: layer {name!r} has {len(params.view)} bytes of {encoding} "
                          f"params, not a multiple of {dt.itemsize}", offset=params.offset)
    dims = layer.get("dims", [])
    shape = _layer_shape(dims, len(params.view) // dt.itemsize, lim)
    attrs: dict[str, Any] = {"encoding": encoding}
    if dims:
        attrs["dims"] = dims if len(dims) <= lim.max_dims else {"count": len(dims)}
    if code != LINEAR16 and plain:
        return record_from_file(name, dt, shape, path, params.offset, **attrs)
    if code != LINEAR16:
        return record_from_buffer(name, dt, shape, params.view, path, offset=params.offset, **attrs)
    import numpy as np
    lo, hi = np.float32(layer.get("min_val", 0.0)), np.float32(layer.get("max_val", 0.0))
    attrs.update(min_val=float(lo), max_val=float(hi))
    return record_from_array(name, dequantize(params.view, lo, hi).reshape(shape), path, **attrs)


def _layer_shape(dims: list[int], n: int, lim: Limits) -> tuple[int, ...]:
    """dims, as lczero-training writes them, list the trainer's shape of values stored in
    column-major order: the C-order shape of the stored values is their reverse. 1-D otherwise."""
    if dims and len(dims) <= lim.max_dims and math.prod(dims) == n:
        return tuple(reversed(dims))
    return (n,)


def dequantize(params: memoryview | bytes, lo: np.float32, hi: np.float32) -> np.ndarray:
    """LINEAR16: q / 65535 * (max - min) + min, each step in float32 (lc0's LayerAdapter)."""
    import numpy as np
    q = np.frombuffer(params, dtype="<u2").astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        return q / np.float32(0xFFFF) * np.float32(hi - lo) + lo


READERS = [
    Reader("lc0", sniff_lc0, read_lc0, "Lc0 (Leela Chess Zero) network: gzip of a pblczero.Net protobuf"),
    Reader("leela-zero", sniff_leela_zero, read_leela_zero,
           "Leela Zero (Go) network: text weights, plain or gzip"),
]
