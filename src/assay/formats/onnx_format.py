"""ONNX models, read from the protobuf wire format in place (`assay.io.protobuf`).

A model file is one serialized `ModelProto` message. ONNX has no magic number, so the sniff walks
the first protobuf fields of the head: field 1 `ir_version` (varint, 1..20) must come first and
every following field must be a `ModelProto` field with its wire type (the graph's and opset
entries' first keys and the short producer strings are checked too).

Weights are `graph.initializer`, `graph.sparse_initializer` (kept as two tensors,
`<name>.values` and `<name>.indices`, with the dense shape in their attrs) and the value of every
`Constant` node, in the main graph, in every subgraph of a node attribute (If, Loop, Scan, any
GRAPH / GRAPHS attribute, recursively), in model-local functions and in training-info graphs.
A tensor keeps its ONNX value name; a name already taken (by the main graph or an earlier
subgraph) gets its subgraph path as a prefix (`<node>.<attribute>[i]::<name>`), and `#k` if that
is still taken. Tensor bytes stored in the file (`raw_data`) stay a range of the memory-mapped
file; typed value fields are converted to little-endian bytes as the ONNX spec defines them;
external data is memory-mapped from a file in the model's own folder after its location, offset
and length have been checked.

The `onnx` package is not needed to read a model (it is the test oracle): importing it costs
more than reading most models, and its parser copies every tensor into memory, where the wire
walk leaves them in the file's map until they are used. Field numbers come from onnx.proto.
"""

from __future__ import annotations

import math
import os
import re
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from assay.errors import AssayError, FormatError, LimitError, UnsupportedError
from assay.formats.base import (
    Probe,
    Reader,
    check_shape,
    record_from_buffer,
    record_from_file,
    trailing,
)
from assay.io.protobuf import Message, WireError, varint
from assay.model.artifact import ModelArtifact
from assay.model.dtypes import DTYPES, DType
from assay.model.tensor import TensorRecord, map_file

# -- sniffing: a cheap walk over the first ModelProto fields ---------------------------------------

MAX_IR_VERSION = 20
VARINT, LEN = 0, 2
# ModelProto field number -> wire type
MODEL_FIELDS = {1: VARINT, 2: LEN, 3: LEN, 4: LEN, 5: VARINT, 6: LEN, 7: LEN, 8: LEN, 14: LEN,
                20: LEN, 25: LEN, 26: LEN}
SHORT_STRINGS = {2, 3, 4}            # producer_name, producer_version, domain
MAX_SHORT_STRING = 1024
GRAPH, OPSET = 7, 8
GRAPH_FIELDS = {1, 2, 5, 10, 11, 12, 13, 14, 15, 16}    # every GraphProto field is length-delimited
OPSET_KEYS = {0x0A, 0x10}            # OperatorSetIdProto: domain (1, LEN), version (2, VARINT)
MAX_VARINT_BYTES = 10


def _varint(buf: bytes | memoryview, pos: int) -> tuple[int, int] | None:
    """(value, next position), or None when the varint runs past `buf` or is too long."""
    try:
        return varint(buf, pos, len(buf))
    except WireError:
        return None


def _first_key_ok(number: int, body: bytes) -> bool:
    """The first key inside a graph or opset entry is one of that message's fields."""
    if not body:
        return True
    if number == OPSET:
        return body[0] in OPSET_KEYS
    key = _varint(body, 0)
    return key is None or (key[0] & 7 == LEN and key[0] >> 3 in GRAPH_FIELDS)


def _len_field(head: bytes, number: int, pos: int) -> int | None:
    """Position after a length-delimited field; None past the head; -1 when it is not ONNX."""
    n = _varint(head, pos)
    if n is None:
        return None
    length, start = n
    body = head[start:start + length]
    if number in SHORT_STRINGS:
        if length > MAX_SHORT_STRING:
            return -1
        if len(body) == length:
            try:
                bytes(body).decode("utf-8")
            except UnicodeDecodeError:
                return -1
    if number in (GRAPH, OPSET) and not _first_key_ok(number, body[:MAX_VARINT_BYTES]):
        return -1
    return start + length if start + length <= len(head) else None


def _field(head: bytes, pos: int) -> int | None:
    """Position after the field at `pos`; None when it runs past the head; -1 when not ONNX."""
    key = _varint(head, pos)
    if key is None:
        return None
    number, wire = key[0] >> 3, key[0] & 7
    if MODEL_FIELDS.get(number) != wire:
        return -1
    if wire == VARINT:
        value = _varint(head, key[1])
        return None if value is None else value[1]
    return _len_field(head, number, key[1])


def _walk_fields(buf: bytes | memoryview, pos: int = 2) -> tuple[int, int, bool, bool]:
    """Walk top-level ModelProto fields: (end of the last whole field, fields seen, a graph was
    seen whole, the walk stopped at bytes that are not ONNX)."""
    fields, graph = 1, False
    while pos < len(buf):
        key = _varint(bytes(buf[pos:pos + MAX_VARINT_BYTES]), 0)
        nxt = _field(buf, pos)
        if nxt == -1:
            return pos, fields, graph, True
        fields += 1
        if nxt is None:
            break
        graph = graph or (key is not None and key[0] >> 3 == GRAPH)
        pos = nxt
    return pos, fields, graph, False


def sniff(p: Probe) -> bool:
    head = p.head
    if len(head) < 3 or head[0] != 0x08 or not 1 <= head[1] <= MAX_IR_VERSION:
        return False
    _end, fields, graph, foreign = _walk_fields(head)
    # bytes that are not ONNX after a whole graph: an ONNX model with data appended
    return fields >= 2 and (not foreign or graph)


def model_end(data: bytes | memoryview) -> int:
    """Where the ModelProto's top-level fields end (the file's length unless data follows)."""
    end, _fields, _graph, foreign = _walk_fields(data)
    return end if foreign else len(data)


# -- dtypes ----------------------------------------------------------------------------------------

# TensorProto.DataType code -> canonical dtype name (None: not a numeric tensor, skipped)
DATA_TYPES: dict[int, str | None] = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    8: None, 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
    14: "complex64", 15: "complex128", 16: "bfloat16", 17: "float8_e4m3fn",
    18: "float8_e4m3fnuz", 19: "float8_e5m2", 20: "float8_e5m2fnuz", 24: "float8_e8m0fnu",
}
# Packed sub-byte types: valid ONNX, not read by assay yet.
SUB_BYTE = {21: "UINT4", 22: "INT4", 23: "FLOAT4E2M1", 25: "UINT2", 26: "INT2",
            27: "FLOAT6E2M3", 28: "FLOAT6E3M2"}
STRING = 8
COMPLEX = (14, 15)
EXTERNAL = 1                          # TensorProto.DataLocation.EXTERNAL
ATTR_GRAPH, ATTR_GRAPHS = 5, 10       # AttributeProto.AttributeType
ATTR_TYPES = {"value": 4, "sparse_value": 11, "value_float": 1, "value_floats": 6,
              "value_int": 2, "value_ints": 7, "value_string": 3, "value_strings": 8}
DEFAULT_DOMAINS = ("", "ai.onnx")
MAX_DOC_STRING = 65536
MAX_PROTOBUF_BYTES = (1 << 31) - 1

# Field numbers of the onnx.proto messages assay reads (onnx/onnx.proto, IR version 11).
class M:  # ModelProto
    IR_VERSION, PRODUCER_NAME, PRODUCER_VERSION, DOMAIN, MODEL_VERSION, DOC_STRING = 1, 2, 3, 4, 5, 6
    GRAPH, OPSET_IMPORT, METADATA_PROPS, TRAINING_INFO, FUNCTIONS = 7, 8, 14, 20, 25


class G:  # GraphProto
    NODE, NAME, INITIALIZER, INPUT, OUTPUT, SPARSE_INITIALIZER = 1, 2, 5, 11, 12, 15


class N:  # NodeProto
    INPUT, OUTPUT, NAME, OP_TYPE, ATTRIBUTE, DOMAIN = 1, 2, 3, 4, 5, 7


class A:  # AttributeProto
    NAME, FLOAT, INT, TENSOR, GRAPH, FLOATS, INTS, GRAPHS = 1, 2, 3, 5, 6, 7, 8, 11
    TYPE, REF_ATTR_NAME, SPARSE_TENSOR = 20, 21, 22


class T:  # TensorProto
    DIMS, DATA_TYPE, SEGMENT, FLOAT_DATA, INT32_DATA, INT64_DATA, NAME = 1, 2, 3, 4, 5, 7, 8
    RAW_DATA, DOUBLE_DATA, UINT64_DATA, EXTERNAL_DATA, DATA_LOCATION = 9, 10, 11, 13, 14


class S:  # SparseTensorProto
    VALUES, INDICES, DIMS = 1, 2, 3


class F:  # FunctionProto
    NAME, NODE, DOMAIN, OVERLOAD = 1, 7, 10, 13


class TI:  # TrainingInfoProto
    INITIALIZATION, ALGORITHM = 1, 2


KEY, VALUE = 1, 2                     # StringStringEntryProto; OperatorSetIdProto: domain, version
# ValueInfoProto name / type; TypeProto oneof `value`; TypeProto.Tensor; TensorShapeProto.Dimension
VI_NAME, VI_TYPE = 1, 2
TYPE_KINDS = {1: "tensor_type", 4: "sequence_type", 5: "map_type", 7: "opaque_type",
              8: "sparse_tensor_type", 9: "optional_type"}
ELEM_TYPE, SHAPE, DIM = 1, 2, 1
DIM_VALUE, DIM_PARAM = 1, 2

# data_type -> (typed value field number, its name, struct code of one stored element)
TYPED_FIELDS: dict[int, tuple[int, str, str]] = {
    1: (T.FLOAT_DATA, "float_data", "f"), 14: (T.FLOAT_DATA, "float_data", "f"),
    11: (T.DOUBLE_DATA, "double_data", "d"), 15: (T.DOUBLE_DATA, "double_data", "d"),
    7: (T.INT64_DATA, "int64_data", "q"),
    12: (T.UINT64_DATA, "uint64_data", "I"), 13: (T.UINT64_DATA, "uint64_data", "Q"),
    6: (T.INT32_DATA, "int32_data", "i"), 5: (T.INT32_DATA, "int32_data", "h"),
    3: (T.INT32_DATA, "int32_data", "b"), 4: (T.INT32_DATA, "int32_data", "H"),
    2: (T.INT32_DATA, "int32_data", "B"), 9: (T.INT32_DATA, "int32_data", "?"),
    10: (T.INT32_DATA, "int32_data", "H"), 16: (T.INT32_DATA, "int32_data", "H"),
    17: (T.INT32_DATA, "int32_data", "B"), 18: (T.INT32_DATA, "int32_data", "B"),
    19: (T.INT32_DATA, "int32_data", "B"), 20: (T.INT32_DATA, "int32_data", "B"),
    24: (T.INT32_DATA, "int32_data", "B"),
}


# -- reading ----------------------------------------------------------------------------------------

def read(p: Probe) -> ModelArtifact:
    try:
        buf, model, end = _parse(p)
        art = ModelArtifact(path=p.path, format="onnx", files=[p.path])
        trailing(art, p.path, buf, end, what="the ONNX model")
        walk = _Walk(p, art, buf)
        walk.model(model)
        art.metadata["onnx"] = _metadata(model, walk)
    except AssayError:
        raise
    except WireError:
        raise FormatError(p.path, "onnx: not a valid ModelProto protobuf message "
                          "(truncated or corrupt)") from None
    except (ValueError, struct.error, OverflowError, RecursionError) as exc:
        raise FormatError(p.path, f"onnx: malformed model ({type(exc).__name__}: {exc})") from None
    return art


def _parse(p: Probe) -> tuple[memoryview | bytes, Message, int]:
    """The file, memory-mapped, and its top-level ModelProto (nested messages are parsed when
    the walk reaches them; tensor bytes stay in the map)."""
    if p.size > MAX_PROTOBUF_BYTES:
        raise LimitError(p.path, f"onnx: {p.size}-byte file is larger than a protobuf message may be "
                         "(2 GiB); larger models keep their weights in external data files")
    buf = map_file(p.path)
    end = model_end(buf)
    model = Message.whole(buf, end)
    if model.sint(M.IR_VERSION) < 1:
        raise FormatError(p.path, "onnx: ir_version is missing")
    if not model.has(M.GRAPH):
        raise FormatError(p.path, "onnx: model has no graph")
    return buf, model, end


@dataclass
class _Walk:
    """Collects the tensors of a model: initializers, sparse initializers, Constant values."""

    p: Probe
    art: ModelArtifact
    buf: memoryview | bytes
    taken: set[str] = field(default_factory=set)
    skipped: list[dict[str, str]] = field(default_factory=list)
    ops: Counter[str] = field(default_factory=Counter)
    domains: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    counting: bool = True

    def __post_init__(self) -> None:
        self.folder = os.path.dirname(os.path.abspath(self.p.path))
        self.real_folder = os.path.realpath(self.folder)

    def model(self, model: Message) -> None:
        self.graph(model.message(M.GRAPH), "", 0)
        self.counting = False
        for f in model.messages(M.FUNCTIONS):
            seg = f"function:{f.text(F.DOMAIN)}:{f.text(F.NAME)}"
            if f.text(F.OVERLOAD):
                seg += f":{f.text(F.OVERLOAD)}"
            self.nodes(f.messages(F.NODE), seg, 1)
        for i, info in enumerate(model.messages(M.TRAINING_INFO)):
            for part, number in (("initialization", TI.INITIALIZATION), ("algorithm", TI.ALGORITHM)):
                if info.has(number):
                    self.graph(info.message(number), f"training_info[{i}].{part}", 1)

    def graph(self, g: Message, path: str, depth: int) -> None:
        if depth > self.p.limits.max_json_depth:
            raise LimitError(self.p.path, f"onnx: subgraphs nested deeper than "
                             f"{self.p.limits.max_json_depth} levels")
        if self.counting:
            self.counts["initializers"] += g.count(G.INITIALIZER)
        for i, t in enumerate(g.messages(G.INITIALIZER)):
            name = t.text(T.NAME)
            attrs = {"onnx_name": name, "graph": path, "source": "initializer"}
            self.dense(t, name or f"initializer[{i}]", path, attrs)
        for i, s in enumerate(g.messages(G.SPARSE_INITIALIZER)):
            value = s.message(S.VALUES).text(T.NAME)
            attrs = {"onnx_name": value, "graph": path, "source": "sparse_initializer"}
            self.sparse(s, value or f"sparse_initializer[{i}]", path, attrs)
        self.nodes(g.messages(G.NODE), path, depth)

    def nodes(self, nodes: Iterator[Message], path: str, depth: int) -> None:
        subgraphs: list[tuple[Message, str]] = []
        for i, n in enumerate(nodes):
            op, domain = n.text(N.OP_TYPE), n.text(N.DOMAIN)
            label = n.text(N.NAME) or f"{op}#{i}"
            if self.counting:
                self.counts["nodes"] += 1
                self.ops[op if domain in DEFAULT_DOMAINS else f"{domain}:{op}"] += 1
                if domain not in DEFAULT_DOMAINS and domain not in self.domains:
                    self.domains.add(domain)
                    self.art.observe("onnx.domain", domain, self.p.path, op=op, graph=path)
            attributes = list(n.messages(N.ATTRIBUTE)) if n.has(N.ATTRIBUTE) else []
            if op == "Constant" and domain in DEFAULT_DOMAINS:
                self.constant(n, attributes, label, path)
            for a in attributes:
                kind = a.sint(A.TYPE)
                if kind == ATTR_GRAPH:
                    subgraphs.append((a.message(A.GRAPH), f"{label}.{a.text(A.NAME)}"))
                elif kind == ATTR_GRAPHS:
                    subgraphs.extend((g, f"{label}.{a.text(A.NAME)}[{j}]")
                                     for j, g in enumerate(a.messages(A.GRAPHS)))
        for g, seg in subgraphs:
            if self.counting:
                self.counts["subgraphs"] += 1
            self.graph(g, f"{path}::{seg}" if path else seg, depth + 1)

    # -- names and records --

    def name(self, value: str, path: str, suffixes: tuple[str, ...] = ("",)) -> str:
        """The value name if free, else prefixed with the subgraph path, else numbered."""
        if suffixes == ("",) and value not in self.taken:     # the common case, first
            self.taken.add(value)
            return value

        def free(base: str) -> bool:
            return all(base + s not in self.taken for s in suffixes)

        base = value if free(value) or not path else f"{path}::{value}"
        k, name = 1, base
        while not free(name):
            k += 1
            name = f"{base}#{k}"
        self.taken.update(name + s for s in suffixes)
        return name

    def add(self, rec: TensorRecord | None) -> None:
        if rec is None:
            return
        if len(self.art.tensors) >= self.p.limits.max_tensors:
            raise LimitError(self.p.path, f"onnx: more than {self.p.limits.max_tensors} tensors")
        self.art.tensors.append(rec)

    def dense(self, t: Message, value: str, path: str, attrs: dict[str, Any]) -> None:
        if t.sint(T.DATA_TYPE) == STRING:
            self.skip(value, path, "string tensor")
            return
        self.add(self.tensor(t, self.name(value, path), attrs))

    def skip(self, value: str, path: str, reason: str) -> None:
        self.skipped.append({"name": value, "graph": path, "reason": reason})

    def sparse(self, s: Message, value: str, path: str, attrs: dict[str, Any]) -> None:
        what = f"onnx: sparse tensor {value!r}"
        dense = check_shape(self.p.path, s.ints(S.DIMS), self.p.limits, what)
        values_msg, indices_msg = s.message(S.VALUES), s.message(S.INDICES)
        if values_msg.sint(T.DATA_TYPE) == STRING:
            self.skip(value, path, "string tensor")
            return
        base = self.name(value, path, (".values", ".indices"))
        attrs = {**attrs, "dense_shape": list(dense)}
        values = self.tensor(values_msg, base + ".values", {**attrs, "sparse": "values"})
        indices = self.tensor(indices_msg, base + ".indices", {**attrs, "sparse": "indices"})
        _check_sparse(self.p.path, what, dense, values, indices)
        self.add(values)
        self.add(indices)

    def tensor(self, t: Message, name: str, attrs: dict[str, Any]) -> TensorRecord:
        """The record of one TensorProto: external file range, raw bytes (a range of the mapped
        file) or typed values (converted to little-endian bytes)."""
        what = f"onnx: tensor {name!r}"
        code = t.sint(T.DATA_TYPE)
        dt = _dtype(self.p.path, code, what)
        shape = check_shape(self.p.path, t.ints(T.DIMS), self.p.limits, what)
        if t.has(T.SEGMENT):
            raise UnsupportedError(self.p.path, f"{what} is stored in segments, which assay does "
                                   "not read")
        numel = _numel(shape)
        if t.sint(T.DATA_LOCATION) == EXTERNAL:
            return self.external(t, name, dt, shape, attrs)
        raw = t.span(T.RAW_DATA)
        if raw is not None:
            length = raw[1] - raw[0]
            if length != dt.nbytes(numel):
                raise FormatError(self.p.path, f"{what}: raw_data holds {length} bytes but "
                                  f"{dt.name}{list(shape)} needs {dt.nbytes(numel)}")
            return record_from_file(name, dt, shape, self.p.path, raw[0], **attrs)
        number, fname, code_char = TYPED_FIELDS[code]
        raw_bytes, count = _typed_values(t, number, code_char)
        need = numel * (2 if code in COMPLEX else 1)
        if count != need:
            raise FormatError(self.p.path, f"{what}: {fname} holds {count} values but "
                              f"{dt.name}{list(shape)} needs {need}")
        return record_from_buffer(name, dt, shape, raw_bytes, self.p.path, **attrs)

    # -- Constant nodes --

    def constant(self, n: Message, attributes: list[Message], label: str, path: str) -> None:
        where = f"onnx: Constant node {label!r}"
        values = [a for a in attributes if a.text(A.NAME) in ATTR_TYPES]
        if len(values) != 1:
            raise FormatError(self.p.path, f"{where} must have exactly one value attribute "
                              f"(has {len(values)})")
        a = values[0]
        kind = a.text(A.NAME)
        outputs = n.texts(N.OUTPUT)
        value = outputs[0] if outputs and outputs[0] else label
        ref = a.text(A.REF_ATTR_NAME)
        if ref:
            self.skip(value, path, f"{kind} refers to function attribute {ref!r}")
            return
        if a.sint(A.TYPE) != ATTR_TYPES[kind]:
            raise FormatError(self.p.path, f"{where}: attribute {kind!r} has type {a.sint(A.TYPE)}, "
                              f"not {ATTR_TYPES[kind]}")
        if self.counting:
            self.counts["constants"] += 1
        attrs = {"onnx_name": value, "graph": path, "source": "constant"}
        if kind == "value":
            self.dense(a.message(A.TENSOR), value, path, attrs)
        elif kind == "sparse_value":
            self.sparse(a.message(A.SPARSE_TENSOR), value, path, attrs)
        elif kind in ("value_string", "value_strings"):
            self.skip(value, path, "string constant")
        else:
            self.add(self.scalars(a, kind, self.name(value, path), attrs))

    def scalars(self, a: Message, kind: str, name: str, attrs: dict[str, Any]) -> TensorRecord:
        if kind == "value_float":
            dt, shape, raw = DTYPES["float32"], (), struct.pack("<f", a.float32(A.FLOAT))
        elif kind == "value_floats":
            raw = a.fixed(A.FLOATS, 4)
            dt, shape = DTYPES["float32"], (len(raw) // 4,)
        elif kind == "value_int":
            dt, shape, raw = DTYPES["int64"], (), struct.pack("<q", a.sint(A.INT))
        else:
            ints = a.ints(A.INTS)
            dt, shape, raw = DTYPES["int64"], (len(ints),), struct.pack(f"<{len(ints)}q", *ints)
        return record_from_buffer(name, dt, shape, raw, self.p.path, **attrs)

    # -- external data --

    def external(self, t: Message, name: str, dt: DType, shape: tuple[int, ...],
                 attrs: dict[str, Any]) -> TensorRecord:
        what = f"onnx: tensor {name!r} external data"
        info = self.external_info(t, what)
        location = info.get("location", "")
        offset = self.decimal(info.get("offset", "0"), what, "offset")
        length = self.decimal(info["length"], what, "length") if "length" in info else None
        self.art.observe("external.data", location, self.p.path, tensor=name, location=location,
                         data_offset=offset, data_length=length)
        target = self.resolve(location, what)
        need = dt.nbytes(_numel(shape))
        if length is not None and length != need:
            raise FormatError(self.p.path, f"{what}: length {length} but {dt.name}{list(shape)} "
                              f"needs {need} bytes")
        size = os.path.getsize(target)
        if offset + need > size:
            raise FormatError(self.p.path, f"{what}: bytes {offset}..{offset + need} run past the "
                              f"end of {location!r} ({size} bytes)")
        if target not in self.art.files:
            self.art.files.append(target)
        return record_from_file(name, dt, shape, target, offset, location=location, **attrs)

    def external_info(self, t: Message, what: str) -> dict[str, str]:
        info: dict[str, str] = {}
        for entry in t.messages(T.EXTERNAL_DATA):
            try:
                key, value = entry.strict_text(KEY), entry.strict_text(VALUE)
            except UnicodeDecodeError:
                raise FormatError(self.p.path, f"{what}: key or value is not valid UTF-8") from None
            if key in info:
                raise FormatError(self.p.path, f"{what}: key {key!r} given twice")
            info[key] = value
        return info

    def decimal(self, text: str, what: str, key: str) -> int:
        if not re.fullmatch(r"[0-9]{1,20}", text):
            raise FormatError(self.p.path, f"{what}: {key} {text!r} is not a non-negative integer")
        return int(text)

    def resolve(self, location: str, what: str) -> str:
        """The real path of an external data file, which must lie in the model's own folder."""
        if not location or "\x00" in location:
            raise FormatError(self.p.path, f"{what}: location is empty or holds a NUL byte")
        if os.path.isabs(location) or location[0] in "/\\" or re.match(r"[A-Za-z]:", location):
            raise FormatError(self.p.path, f"{what}: location {location!r} is an absolute path "
                              "(must be relative to the model's folder)")
        if ".." in re.split(r"[/\\]", location):
            raise FormatError(self.p.path, f"{what}: location {location!r} escapes the model's "
                              "folder with '..'")
        real = os.path.realpath(os.path.join(self.folder, location))
        if os.path.commonpath([real, self.real_folder]) != self.real_folder:
            raise FormatError(self.p.path, f"{what}: location {location!r} is a symlink leaving "
                              "the model's folder")
        if not os.path.isfile(real):
            raise FormatError(self.p.path, f"{what}: file {location!r} does not exist next to "
                              "the model")
        return real


def _typed_values(t: Message, number: int, code: str) -> tuple[bytes, int]:
    """The little-endian bytes of a typed value field and how many values it holds, converted
    the way ONNX defines: int32_data carries every type narrower than 32 bits (float16,
    bfloat16 and float8 as their bit patterns, bool as 0 / non-zero), uint64_data carries uint32
    and uint64, complex values come as (real, imaginary) pairs."""
    if code in "fd":
        raw = t.fixed(number, 4 if code == "f" else 8)
        return raw, len(raw) // (4 if code == "f" else 8)
    ints = t.ints(number, signed=number != T.UINT64_DATA)
    n = len(ints)
    if code == "?":
        return bytes(1 if v else 0 for v in ints), n
    bits = struct.calcsize(code) * 8
    mask = (1 << bits) - 1
    if code in "bhiq":
        half = 1 << (bits - 1)
        wrapped = [((v + half) & mask) - half for v in ints]
    else:
        wrapped = [v & mask for v in ints]
    return struct.pack(f"<{n}{code}", *wrapped), n


def _numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def _dtype(path: str, code: int, what: str) -> DType:
    if code in SUB_BYTE:
        raise UnsupportedError(path, f"{what} uses the packed type {SUB_BYTE[code]}, which assay "
                               "does not read yet")
    if code == STRING:
        raise FormatError(path, f"{what} holds strings where numbers are needed")
    name = DATA_TYPES.get(code)
    if name is None:
        raise FormatError(path, f"{what} has unknown data_type {code}")
    return DTYPES[name]


def _check_sparse(path: str, what: str, dense: tuple[int, ...], values: TensorRecord,
                  indices: TensorRecord) -> None:
    if len(values.shape) != 1:
        raise FormatError(path, f"{what}: values must be 1-D, not {list(values.shape)}")
    nnz = values.shape[0]
    if indices.dtype.name != "int64":
        raise FormatError(path, f"{what}: indices must be int64, not {indices.dtype.name}")
    if indices.shape not in ((nnz,), (nnz, len(dense))):
        raise FormatError(path, f"{what}: indices shape {list(indices.shape)} fits neither "
                          f"[{nnz}] nor [{nnz}, {len(dense)}]")


# -- metadata ---------------------------------------------------------------------------------------

def _metadata(model: Message, walk: _Walk) -> dict[str, Any]:
    return {
        "ir_version": model.sint(M.IR_VERSION),
        "producer_name": model.text(M.PRODUCER_NAME),
        "producer_version": model.text(M.PRODUCER_VERSION),
        "domain": model.text(M.DOMAIN),
        "model_version": model.sint(M.MODEL_VERSION),
        "doc_string": _doc(model.text(M.DOC_STRING)),
        "opset_import": [{"domain": o.text(KEY), "version": o.sint(VALUE)}
                         for o in model.messages(M.OPSET_IMPORT)],
        "metadata_props": {e.text(KEY): e.text(VALUE) for e in model.messages(M.METADATA_PROPS)},
        "graph": _graph_summary(model.message(M.GRAPH), walk),
        "functions": [f"{f.text(F.DOMAIN)}:{f.text(F.NAME)}" for f in model.messages(M.FUNCTIONS)],
        "training_info": model.count(M.TRAINING_INFO),
        "skipped_tensors": walk.skipped,
    }


def _graph_summary(g: Message, walk: _Walk) -> dict[str, Any]:
    initializer_names = {t.text(T.NAME) for t in g.messages(G.INITIALIZER)}
    return {
        "name": g.text(G.NAME),
        "nodes": g.count(G.NODE),
        "nodes_total": walk.counts["nodes"],
        "op_types": dict(sorted(walk.ops.items())),
        "inputs": [_value_info(v) for v in g.messages(G.INPUT) if v.text(VI_NAME) not in initializer_names],
        "outputs": [_value_info(v) for v in g.messages(G.OUTPUT)],
        "initializers": g.count(G.INITIALIZER),
        "sparse_initializers": g.count(G.SPARSE_INITIALIZER),
        "initializers_total": walk.counts["initializers"],
        "constants": walk.counts["constants"],
        "subgraphs": walk.counts["subgraphs"],
    }


def _value_info(v: Message) -> dict[str, Any]:
    ty = v.message(VI_TYPE)
    number = ty.last_of(*TYPE_KINDS)
    kind = TYPE_KINDS.get(number) if number is not None else None
    out: dict[str, Any] = {"name": v.text(VI_NAME), "type": kind or "unknown"}
    if number is not None and kind in ("tensor_type", "sparse_tensor_type"):
        tt = ty.message(number)
        elem = _elem_name(tt.sint(ELEM_TYPE))
        out["type"] = elem if kind == "tensor_type" else f"sparse {elem}"
        out["shape"] = [_dim(d) for d in tt.message(SHAPE).messages(DIM)] if tt.has(SHAPE) else None
    return out


def _elem_name(code: int) -> str:
    name = DATA_TYPES.get(code)
    if name is not None:
        return name
    return "string" if code == STRING else SUB_BYTE.get(code, f"type{code}").lower()


def _dim(d: Message) -> int | str | None:
    kind = d.last_of(DIM_VALUE, DIM_PARAM)
    if kind == DIM_VALUE:
        return d.sint(DIM_VALUE)
    return d.text(DIM_PARAM) if kind == DIM_PARAM else None


def _doc(text: str) -> str | dict[str, Any]:
    if len(text) <= MAX_DOC_STRING:
        return text
    return {"type": "string", "length": len(text), "head": text[:1024]}


READERS = [Reader("onnx", sniff, read, "ONNX model (protobuf ModelProto, external data)")]
