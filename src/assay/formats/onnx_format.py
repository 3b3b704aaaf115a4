"""ONNX models, parsed with the `onnx` package's protobuf classes (parsing executes nothing).

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
is still taken. Tensor bytes stored in the file (`raw_data`) are used as they are; typed value
fields are converted by `onnx.numpy_helper.to_array`; external data is memory-mapped from a file
in the model's own folder after its location, offset and length have been checked.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assay.errors import AssayError, FormatError, LimitError, MissingDependencyError, UnsupportedError
from assay.formats.base import (
    Probe,
    Reader,
    check_shape,
    record_from_buffer,
    record_from_file,
    trailing,
)
from assay.model.artifact import ModelArtifact
from assay.model.dtypes import DTYPES, DType, from_numpy
from assay.model.tensor import TensorRecord

if TYPE_CHECKING:
    import numpy as np

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


def _varint(buf: bytes, pos: int) -> tuple[int, int] | None:
    """(value, next position), or None when the varint runs past `buf` or is too long."""
    value = shift = 0
    for i in range(pos, min(len(buf), pos + MAX_VARINT_BYTES)):
        value |= (buf[i] & 0x7F) << shift
        if buf[i] < 0x80:
            return value, i + 1
        shift += 7
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
                body.decode("utf-8")
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


def _text(value: str | bytes) -> str:
    """A protobuf string field (upb hands back bytes when a proto2 string is not valid UTF-8)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _onnx() -> Any:
    try:
        import onnx
        import onnx.numpy_helper
    except ModuleNotFoundError:
        raise MissingDependencyError(None, "reading ONNX files needs the onnx package "
                                     "(pip install onnx)") from None
    return onnx


def _read_errors() -> tuple[type[BaseException], ...]:
    from google.protobuf.message import DecodeError

    return (DecodeError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            OverflowError, UnicodeError, OSError, RecursionError)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# -- reading ----------------------------------------------------------------------------------------

def read(p: Probe) -> ModelArtifact:
    onnx = _onnx()
    errors = _read_errors()
    try:
        model, data, end = _parse(p, onnx)
        art = ModelArtifact(path=p.path, format="onnx", files=[p.path])
        trailing(art, p.path, data, end, what="the ONNX model")
        walk = _Walk(p, art, onnx)
        walk.model(model)
        art.metadata["onnx"] = _metadata(model, walk)
    except AssayError:
        raise
    except errors as exc:
        raise FormatError(p.path, f"onnx: malformed model ({_one_line(exc)})") from None
    return art


def _parse(p: Probe, onnx: Any) -> tuple[Any, bytes, int]:
    from google.protobuf.message import DecodeError

    if p.size > MAX_PROTOBUF_BYTES:
        raise LimitError(p.path, f"onnx: {p.size}-byte file is larger than a protobuf message may be "
                         "(2 GiB); larger models keep their weights in external data files")
    with open(p.path, "rb") as fh:
        data = fh.read()
    end = model_end(data)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data[:end])
    except DecodeError:
        raise FormatError(p.path, "onnx: not a valid ModelProto protobuf message "
                          "(truncated or corrupt)") from None
    if model.ir_version < 1:
        raise FormatError(p.path, "onnx: ir_version is missing")
    if not model.HasField("graph"):
        raise FormatError(p.path, "onnx: model has no graph")
    return model, data, end


@dataclass
class _Walk:
    """Collects the tensors of a model: initializers, sparse initializers, Constant values."""

    p: Probe
    art: ModelArtifact
    onnx: Any
    taken: set[str] = field(default_factory=set)
    skipped: list[dict[str, str]] = field(default_factory=list)
    ops: Counter[str] = field(default_factory=Counter)
    domains: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    counting: bool = True

    def __post_init__(self) -> None:
        self.folder = os.path.dirname(os.path.abspath(self.p.path))
        self.real_folder = os.path.realpath(self.folder)

    def model(self, model: Any) -> None:
        self.graph(model.graph, "", 0)
        self.counting = False
        for f in model.functions:
            seg = f"function:{_text(f.domain)}:{_text(f.name)}"
            if _text(f.overload):
                seg += f":{_text(f.overload)}"
            self.nodes(f.node, seg, 1)
        for i, info in enumerate(model.training_info):
            for part in ("initialization", "algorithm"):
                if info.HasField(part):
                    self.graph(getattr(info, part), f"training_info[{i}].{part}", 1)

    def graph(self, g: Any, path: str, depth: int) -> None:
        if depth > self.p.limits.max_json_depth:
            raise LimitError(self.p.path, f"onnx: subgraphs nested deeper than "
                             f"{self.p.limits.max_json_depth} levels")
        if self.counting:
            self.counts["initializers"] += len(g.initializer)
        for i, t in enumerate(g.initializer):
            attrs = {"onnx_name": _text(t.name), "graph": path, "source": "initializer"}
            self.dense(t, _text(t.name) or f"initializer[{i}]", path, attrs)
        for i, s in enumerate(g.sparse_initializer):
            value = _text(s.values.name)
            attrs = {"onnx_name": value, "graph": path, "source": "sparse_initializer"}
            self.sparse(s, value or f"sparse_initializer[{i}]", path, attrs)
        self.nodes(g.node, path, depth)

    def nodes(self, nodes: Any, path: str, depth: int) -> None:
        subgraphs: list[tuple[Any, str]] = []
        for i, n in enumerate(nodes):
            op, domain = _text(n.op_type), _text(n.domain)
            label = _text(n.name) or f"{op}#{i}"
            if self.counting:
                self.counts["nodes"] += 1
                self.ops[op if domain in DEFAULT_DOMAINS else f"{domain}:{op}"] += 1
                if domain not in DEFAULT_DOMAINS and domain not in self.domains:
                    self.domains.add(domain)
                    self.art.observe("onnx.domain", domain, self.p.path, op=op, graph=path)
            if op == "Constant" and domain in DEFAULT_DOMAINS:
                self.constant(n, label, path)
            for a in n.attribute:
                if a.type == ATTR_GRAPH:
                    subgraphs.append((a.g, f"{label}.{_text(a.name)}"))
                elif a.type == ATTR_GRAPHS:
                    subgraphs.extend((g, f"{label}.{_text(a.name)}[{j}]") for j, g in enumerate(a.graphs))
        for g, seg in subgraphs:
            if self.counting:
                self.counts["subgraphs"] += 1
            self.graph(g, f"{path}::{seg}" if path else seg, depth + 1)

    # -- names and records --

    def name(self, value: str, path: str, suffixes: tuple[str, ...] = ("",)) -> str:
        """The value name if free, else prefixed with the subgraph path, else numbered."""
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

    def dense(self, t: Any, value: str, path: str, attrs: dict[str, Any]) -> None:
        if t.data_type == STRING:
            self.skip(value, path, "string tensor")
            return
        self.add(self.tensor(t, self.name(value, path), attrs))

    def skip(self, value: str, path: str, reason: str) -> None:
        self.skipped.append({"name": value, "graph": path, "reason": reason})

    def sparse(self, s: Any, value: str, path: str, attrs: dict[str, Any]) -> None:
        what = f"onnx: sparse tensor {value!r}"
        dense = check_shape(self.p.path, list(s.dims), self.p.limits, what)
        if s.values.data_type == STRING:
            self.skip(value, path, "string tensor")
            return
        base = self.name(value, path, (".values", ".indices"))
        attrs = {**attrs, "dense_shape": list(dense)}
        values = self.tensor(s.values, base + ".values", {**attrs, "sparse": "values"})
        indices = self.tensor(s.indices, base + ".indices", {**attrs, "sparse": "indices"})
        _check_sparse(self.p.path, what, dense, values, indices)
        self.add(values)
        self.add(indices)

    def tensor(self, t: Any, name: str, attrs: dict[str, Any]) -> TensorRecord:
        """The record of one TensorProto: external file range, raw bytes or typed values."""
        what = f"onnx: tensor {name!r}"
        dt = _dtype(self.p.path, t.data_type, what)
        shape = check_shape(self.p.path, list(t.dims), self.p.limits, what)
        if t.HasField("segment"):
            raise UnsupportedError(self.p.path, f"{what} is stored in segments, which assay does "
                                   "not read")
        numel = _numel(shape)
        if t.data_location == EXTERNAL:
            return self.external(t, name, dt, shape, attrs)
        if t.HasField("raw_data"):
            raw = t.raw_data
            if len(raw) != dt.nbytes(numel):
                raise FormatError(self.p.path, f"{what}: raw_data holds {len(raw)} bytes but "
                                  f"{dt.name}{list(shape)} needs {dt.nbytes(numel)}")
            return record_from_buffer(name, dt, shape, raw, self.p.path, **attrs)
        fname = self.onnx.helper.tensor_dtype_to_field(t.data_type)
        count, need = len(getattr(t, fname)), numel * (2 if t.data_type in COMPLEX else 1)
        if count != need:
            raise FormatError(self.p.path, f"{what}: {fname} holds {count} values but "
                              f"{dt.name}{list(shape)} needs {need}")
        return self.array(name, self.onnx.numpy_helper.to_array(t), dt, attrs)

    def array(self, name: str, arr: np.ndarray, dt: DType, attrs: dict[str, Any]) -> TensorRecord:
        """A record from a converted array, reinterpreted bit for bit if NumPy's dtype differs."""
        if from_numpy(arr.dtype) != dt:
            if dt.numpy is None or arr.dtype.itemsize != dt.itemsize:
                raise FormatError(self.p.path, f"onnx: tensor {name!r}: values convert to "
                                  f"{arr.dtype}, not {dt.name}")
            arr = arr.view(dt.numpy)
        return _array_record(name, arr, dt, self.p.path, attrs)

    # -- Constant nodes --

    def constant(self, n: Any, label: str, path: str) -> None:
        where = f"onnx: Constant node {label!r}"
        values = [a for a in n.attribute if _text(a.name) in ATTR_TYPES]
        if len(values) != 1:
            raise FormatError(self.p.path, f"{where} must have exactly one value attribute "
                              f"(has {len(values)})")
        a = values[0]
        kind = _text(a.name)
        value = _text(n.output[0]) if len(n.output) and n.output[0] else label
        if _text(a.ref_attr_name):
            self.skip(value, path, f"{kind} refers to function attribute {_text(a.ref_attr_name)!r}")
            return
        if a.type != ATTR_TYPES[kind]:
            raise FormatError(self.p.path, f"{where}: attribute {kind!r} has type {a.type}, "
                              f"not {ATTR_TYPES[kind]}")
        if self.counting:
            self.counts["constants"] += 1
        attrs = {"onnx_name": value, "graph": path, "source": "constant"}
        if kind == "value":
            self.dense(a.t, value, path, attrs)
        elif kind == "sparse_value":
            self.sparse(a.sparse_tensor, value, path, attrs)
        elif kind in ("value_string", "value_strings"):
            self.skip(value, path, "string constant")
        else:
            self.add(self.scalars(a, kind, self.name(value, path), attrs))

    def scalars(self, a: Any, kind: str, name: str, attrs: dict[str, Any]) -> TensorRecord:
        import numpy as np

        data = {"value_float": a.f, "value_floats": list(a.floats), "value_int": a.i,
                "value_ints": list(a.ints)}[kind]
        dt = DTYPES["float32" if "float" in kind else "int64"]
        return _array_record(name, np.array(data, dtype=dt.numpy), dt, self.p.path, attrs)

    # -- external data --

    def external(self, t: Any, name: str, dt: DType, shape: tuple[int, ...],
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

    def external_info(self, t: Any, what: str) -> dict[str, str]:
        info: dict[str, str] = {}
        for entry in t.external_data:
            key, value = entry.key, entry.value
            if isinstance(key, bytes) or isinstance(value, bytes):
                raise FormatError(self.p.path, f"{what}: key or value is not valid UTF-8")
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


def _numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def _array_record(name: str, arr: np.ndarray, dt: DType, path: str, attrs: dict[str, Any]) -> TensorRecord:
    """An in-memory record of an array, as little-endian bytes. (`record_from_array` is not used:
    it turns 0-d arrays into shape (1,) and cannot take ml_dtypes arrays such as bfloat16.)"""
    big = arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and sys.byteorder == "big")
    raw = (arr.byteswap() if big and arr.dtype.itemsize > 1 else arr).tobytes()
    return record_from_buffer(name, dt, tuple(arr.shape), raw, path, **attrs)


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

def _metadata(model: Any, walk: _Walk) -> dict[str, Any]:
    return {
        "ir_version": model.ir_version,
        "producer_name": _text(model.producer_name),
        "producer_version": _text(model.producer_version),
        "domain": _text(model.domain),
        "model_version": model.model_version,
        "doc_string": _doc(_text(model.doc_string)),
        "opset_import": [{"domain": _text(o.domain), "version": o.version} for o in model.opset_import],
        "metadata_props": {_text(e.key): _text(e.value) for e in model.metadata_props},
        "graph": _graph_summary(model.graph, walk),
        "functions": [f"{_text(f.domain)}:{_text(f.name)}" for f in model.functions],
        "training_info": len(model.training_info),
        "skipped_tensors": walk.skipped,
    }


def _graph_summary(g: Any, walk: _Walk) -> dict[str, Any]:
    initializer_names = {_text(t.name) for t in g.initializer}
    return {
        "name": _text(g.name),
        "nodes": len(g.node),
        "nodes_total": walk.counts["nodes"],
        "op_types": dict(sorted(walk.ops.items())),
        "inputs": [_value_info(v) for v in g.input if _text(v.name) not in initializer_names],
        "outputs": [_value_info(v) for v in g.output],
        "initializers": len(g.initializer),
        "sparse_initializers": len(g.sparse_initializer),
        "initializers_total": walk.counts["initializers"],
        "constants": walk.counts["constants"],
        "subgraphs": walk.counts["subgraphs"],
    }


def _value_info(v: Any) -> dict[str, Any]:
    kind = v.type.WhichOneof("value")
    out: dict[str, Any] = {"name": _text(v.name), "type": kind or "unknown"}
    if kind in ("tensor_type", "sparse_tensor_type"):
        tt = getattr(v.type, kind)
        out["type"] = _elem_name(tt.elem_type) if kind == "tensor_type" else \
            f"sparse {_elem_name(tt.elem_type)}"
        out["shape"] = [_dim(d) for d in tt.shape.dim] if tt.HasField("shape") else None
    return out


def _elem_name(code: int) -> str:
    name = DATA_TYPES.get(code)
    if name is not None:
        return name
    return "string" if code == STRING else SUB_BYTE.get(code, f"type{code}").lower()


def _dim(d: Any) -> int | str | None:
    kind = d.WhichOneof("value")
    if kind == "dim_value":
        return d.dim_value
    return _text(d.dim_param) if kind == "dim_param" else None


def _doc(text: str) -> str | dict[str, Any]:
    if len(text) <= MAX_DOC_STRING:
        return text
    return {"type": "string", "length": len(text), "head": text[:1024]}


READERS = [Reader("onnx", sniff, read, "ONNX model (protobuf ModelProto, external data)")]
