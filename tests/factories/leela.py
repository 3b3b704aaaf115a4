"""Leela Zero text networks and Lc0 protobuf networks, written from the published descriptions.

Leela Zero (leela-zero `training/tf/tfprocess.py` writes it, `src/Network.cpp` reads it): line 1
is the version; then one line of space-separated floats per tensor in a fixed order. Lc0
(`proto/net.proto`, package pblczero): a protobuf `Net`, encoded here field by field on the wire
so that the tests do not share the reader's message classes.
"""

from __future__ import annotations

import gzip
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------------------------------------
# Leela Zero

FORMATS = ("{:.6g}", "{!r}", "{:.4e}", "{:+.3f}", "{:.9f}", "short", "{:E}")


@dataclass
class LZTensor:
    name: str
    shape: tuple[int, ...]
    tokens: list[str]

    def expected(self) -> np.ndarray:
        """The numbers as written, each parsed by Python's float and rounded to float32."""
        with np.errstate(over="ignore"):
            vals = np.array([np.float32(float(t)) for t in self.tokens], dtype=np.float32)
        return vals.reshape(self.shape)


@dataclass
class LZNet:
    version: int
    tensors: list[LZTensor]

    def lines(self) -> list[str]:
        return [str(self.version)] + [" ".join(t.tokens) for t in self.tensors]

    def text(self, newline: str = "\n", final_newline: bool = False) -> str:
        return newline.join(self.lines()) + (newline if final_newline else "")


def _token(v: float, i: int) -> str:
    fmt = FORMATS[i % len(FORMATS)]
    if fmt == "short":                     # ".5" and "-.25" styles
        s = f"{v:.5f}"
        return s.replace("0.", ".", 1) if s.startswith(("0.", "-0.")) else s
    return fmt.format(v)


def lz_layout(blocks: int, filters: int, planes: int, board: int, policy_planes: int = 2,
              value_planes: int = 1, value_hidden: int = 256) -> list[tuple[str, tuple[int, ...]]]:
    """Names and shapes in file order, from the published description of the format."""
    c, points = filters, board * board
    out: list[tuple[str, tuple[int, ...]]] = []

    def conv(prefix: str, conv_name: str, bn: str, outs: int, ins: int, k: int) -> None:
        out.extend([(f"{prefix}.{conv_name}.weight", (outs, ins, k, k)),
                    (f"{prefix}.{conv_name}.bias", (outs,)),
                    (f"{prefix}.{bn}.mean", (outs,)), (f"{prefix}.{bn}.variance", (outs,))])

    conv("input", "conv", "bn", c, planes, 3)
    for b in range(blocks):
        conv(f"res.{b}", "conv1", "bn1", c, c, 3)
        conv(f"res.{b}", "conv2", "bn2", c, c, 3)
    conv("policy", "conv", "bn", policy_planes, c, 1)
    out += [("policy.fc.weight", (points + 1, policy_planes * points)), ("policy.fc.bias", (points + 1,))]
    conv("value", "conv", "bn", value_planes, c, 1)
    out += [("value.fc1.weight", (value_hidden, value_planes * points)),
            ("value.fc1.bias", (value_hidden,)), ("value.fc2.weight", (1, value_hidden)),
            ("value.fc2.bias", (1,))]
    return out


def lz_net(seed: int = 0, *, blocks: int = 2, filters: int = 8, planes: int = 18, board: int = 5,
           version: int = 1, value_hidden: int = 16) -> LZNet:
    rng = np.random.default_rng(seed)
    tensors = []
    for name, shape in lz_layout(blocks, filters, planes, board, value_hidden=value_hidden):
        vals = rng.standard_normal(math.prod(shape)).astype(np.float32) * 0.1
        if name.endswith("variance"):
            vals = np.abs(vals) + np.float32(0.5)
        tokens = [_token(float(v), i + len(tensors)) for i, v in enumerate(vals)]
        tensors.append(LZTensor(name, shape, tokens))
    return LZNet(version, tensors)


def write_text(path: Path, text: str | bytes, *, compress: bool = False) -> Path:
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


def write_gzip_stream(path: Path, head: bytes, fill: bytes, total: int) -> Path:
    """gzip of `head` then `fill` repeated up to `total` bytes, compressed in stream (a bomb)."""
    import zlib
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = fill * max(1, (1 << 20) // len(fill))
    with open(path, "wb") as fh:
        fh.write(comp.compress(head))
        done = 0
        while done < total:
            fh.write(comp.compress(chunk))
            done += len(chunk)
        fh.write(comp.flush())
    return path


# ---------------------------------------------------------------------------------------------
# Lc0: protobuf wire encoding by hand

def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def ld(number: int, payload: bytes) -> bytes:
    """A length-delimited field: embedded message, bytes or string."""
    return key(number, 2) + varint(len(payload)) + payload


def uint(number: int, value: int) -> bytes:
    return key(number, 0) + varint(value)


def fixed32(number: int, value: int) -> bytes:
    return key(number, 5) + struct.pack("<I", value)


def f32(number: int, value: float) -> bytes:
    return key(number, 5) + struct.pack("<f", value)


LC0_MAGIC = 0x1C0
LINEAR16, FLOAT16, BFLOAT16, FLOAT32 = 1, 2, 3, 4


@dataclass
class Lc0Layer:
    """What was written for one Weights.Layer."""

    encoding: int | None
    params: bytes
    min_val: float = 0.0
    max_val: float = 0.0
    dims: tuple[int, ...] = ()
    logical: np.ndarray | None = None     # the trainer's array (shape dims) for float encodings


@dataclass
class Lc0Builder:
    """Makes Layer messages with random contents and remembers them by their expected name."""

    seed: int = 0
    layers: dict[str, Lc0Layer] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def linear16(self, name: str, n: int, *, dims: tuple[int, ...] = (), explicit: bool = False) -> bytes:
        q = self.rng.integers(0, 65536, n, dtype=np.uint16)
        if n >= 2:
            q[:2] = (0, 65535)          # the ends of the range
        lo = float(np.float32(self.rng.uniform(-2, -0.1)))
        hi = float(np.float32(self.rng.uniform(0.1, 2)))
        params = q.astype("<u2").tobytes()
        self.layers[name] = Lc0Layer(LINEAR16 if explicit else None, params, lo, hi, dims)
        msg = f32(1, lo) + f32(2, hi) + ld(3, params)
        if explicit:
            msg += uint(4, LINEAR16)
        return msg + b"".join(uint(5, d) for d in dims)

    def floats(self, name: str, dims: tuple[int, ...], encoding: int) -> bytes:
        """A float-encoded layer stored the way lczero-training does: the array of shape `dims`
        flattened in column-major order, with `dims` listed (packed)."""
        arr = self.rng.standard_normal(dims).astype(np.float32)
        if encoding == FLOAT16:
            stored = arr.astype(np.float16)
        elif encoding == BFLOAT16:
            import ml_dtypes
            stored = arr.astype(ml_dtypes.bfloat16)
        else:
            stored = arr
        params = stored.T.flatten().tobytes()
        self.layers[name] = Lc0Layer(encoding, params, dims=dims, logical=stored)
        return ld(3, params) + uint(4, encoding) + ld(5, b"".join(varint(d) for d in dims))

    def conv_block(self, prefix: str, outs: int, ins: int, k: int) -> bytes:
        sizes = {"weights": outs * ins * k * k, "biases": outs, "bn_means": outs, "bn_stddivs": outs}
        return b"".join(ld(i + 1, self.linear16(f"{prefix}.{name}", n))
                        for i, (name, n) in enumerate(sizes.items()))


def lc0_header(*, license: str = "GPL-3.0-or-later", version: tuple[int, int, int] = (0, 30, 0),
               network: int = 4) -> bytes:
    fmt = uint(1, 1) + ld(2, uint(1, 1) + uint(2, 2) + uint(3, network) + uint(4, 2) + uint(5, 2)
                         + uint(6, 1))
    training = uint(1, 123456) + f32(2, 0.02) + ld(6, b"--some-params")
    return (fixed32(1, LC0_MAGIC) + ld(2, license.encode())
            + ld(3, uint(1, version[0]) + uint(2, version[1]) + uint(3, version[2]))
            + ld(4, fmt) + ld(5, training))


def lc0_classical(b: Lc0Builder, *, blocks: int = 2, filters: int = 8, se: int = 4) -> bytes:
    """Weights of a small SE residual net with convolutional heads (all LINEAR16, no dims)."""
    w = ld(1, b.conv_block("input", filters, 112, 3))
    for i in range(blocks):
        res = ld(1, b.conv_block(f"residual.{i}.conv1", filters, filters, 3))
        res += ld(2, b.conv_block(f"residual.{i}.conv2", filters, filters, 3))
        res += ld(3, ld(1, b.linear16(f"residual.{i}.se.w1", se * filters))
                  + ld(2, b.linear16(f"residual.{i}.se.b1", se))
                  + ld(3, b.linear16(f"residual.{i}.se.w2", 2 * filters * se))
                  + ld(4, b.linear16(f"residual.{i}.se.b2", 2 * filters)))
        w += ld(2, res)
    w += ld(3, b.conv_block("policy", 32, filters, 1))
    w += ld(4, b.linear16("ip_pol_w", 40 * 32)) + ld(5, b.linear16("ip_pol_b", 40))
    w += ld(6, b.conv_block("value", 32, filters, 1))
    w += ld(7, b.linear16("ip1_val_w", 16 * 32, explicit=True)) + ld(8, b.linear16("ip1_val_b", 16))
    w += ld(9, b.linear16("ip2_val_w", 3 * 16)) + ld(10, b.linear16("ip2_val_b", 3))
    w += ld(12, b.conv_block("moves_left", 8, filters, 1))
    return w


def lc0_attention(b: Lc0Builder) -> bytes:
    """Weights of a tiny attention-body net with multi-head policy and value heads."""
    mha = (ld(1, b.floats("encoder.0.mha.q_w", (16, 12), FLOAT16))
           + ld(2, b.floats("encoder.0.mha.q_b", (12,), FLOAT32))
           + ld(9, ld(1, b.linear16("encoder.0.mha.smolgen.compress", 16 * 4, dims=(16, 4)))))
    enc = ld(1, mha) + ld(2, b.floats("encoder.0.ln1_gammas", (16,), BFLOAT16))
    enc += ld(4, ld(1, b.floats("encoder.0.ffn.dense1_w", (16, 8, 2), FLOAT32)))
    vanilla = ld(1, b.linear16("policy_heads.vanilla.ip_pol_w", 24))
    mapped = ld(7, ld(1, b"optimistic") + ld(2, ld(3, b.linear16(
        "policy_heads.policy_head_map.optimistic.ip2_pol_w", 10))))
    heads = ld(45, ld(1, b.linear16("policy_heads.ip_pol_w", 32)) + ld(3, vanilla) + mapped)
    winner = ld(1, ld(1, b.linear16("value_heads.winner.ip_val_w", 20)))
    qmap = ld(4, ld(1, b"q") + ld(2, ld(3, b.linear16("value_heads.value_head_map.q.ip1_val_w", 6))))
    w = ld(25, b.linear16("ip_emb_w", 112 * 16)) + ld(27, enc) + uint(28, 2)
    return w + ld(44, winner + qmap) + heads


def lc0_net(weights: bytes, header: bytes | None = None) -> bytes:
    return (lc0_header() if header is None else header) + ld(10, weights)


def expected_linear16(layer: Lc0Layer) -> np.ndarray:
    """lc0's LINEAR16 decoding, q / 65535 * (max - min) + min in float32, one element at a time."""
    lo, hi = np.float32(layer.min_val), np.float32(layer.max_val)
    q = np.frombuffer(layer.params, dtype="<u2")
    out = [np.float32(np.float32(v) / np.float32(65535.0)) * np.float32(hi - lo) + lo for v in q]
    return np.array(out, dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# The same schema in the protobuf runtime (upb), to check assay's own wire walker against it

def upb_net_class() -> type:
    """A `Net` message class built at runtime from the reader's schema table (enums as uint32,
    strings as bytes, as the reader keeps them)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    from assay.formats.leela import SCHEMA
    fd = descriptor_pb2.FieldDescriptorProto
    types = {"uint32": fd.TYPE_UINT32, "float": fd.TYPE_FLOAT, "fixed32": fd.TYPE_FIXED32,
             "bytes": fd.TYPE_BYTES}
    proto = descriptor_pb2.FileDescriptorProto(name="test_lc0.proto", package="t", syntax="proto2")
    for msg_name, fields in SCHEMA.items():
        msg = proto.message_type.add(name=msg_name)
        for number, f in fields.items():
            label = fd.LABEL_REPEATED if f.repeated else fd.LABEL_OPTIONAL
            field_proto = msg.field.add(name=f.name, number=number, label=label)
            if f.kind in types:
                field_proto.type = types[f.kind]
            else:
                field_proto.type, field_proto.type_name = fd.TYPE_MESSAGE, f".t.{f.kind}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("t.Net"))


def _repeated(fd: object) -> bool:
    flag = getattr(fd, "is_repeated", None)           # protobuf >= 5; `label` before
    return bool(flag) if flag is not None else fd.label == fd.LABEL_REPEATED  # type: ignore[attr-defined]


def upb_tree(msg: object) -> dict:
    """A parsed protobuf message as nested dicts and lists, the shape assay's decoder gives."""
    out: dict = {}
    for fd, value in msg.ListFields():  # type: ignore[attr-defined]
        many = _repeated(fd)
        if fd.message_type is not None:
            out[fd.name] = [upb_tree(v) for v in value] if many else upb_tree(value)
        else:
            out[fd.name] = list(value) if many else value
    return out


def plain_tree(tree: object) -> object:
    """assay's decoded dicts with byte fields as bytes."""
    if isinstance(tree, dict):
        return {k: plain_tree(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [plain_tree(v) for v in tree]
    view = getattr(tree, "view", None)
    return bytes(view) if view is not None else tree
