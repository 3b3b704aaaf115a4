"""Keras: legacy HDF5 files (`.h5`, any HDF5 file) and Keras 3 `.keras` archives, via h5py.

HDF5 (reader "hdf5-keras"): the signature b"\\x89HDF\\r\\n\\x1a\\n" at offset 0, 512, 1024 or 2048
(after a user block). h5py opens the memory map read-only through a file object; nothing is
written and no external file is opened. Groups are walked depth-first (links in natural name
order) under `Limits.max_tensors` links and `Limits.max_json_depth` levels; soft links are
aliases and are skipped, external links and datasets with external or virtual storage are
recorded as `external.data` and never followed. Every numeric dataset becomes a tensor named
by its HDF5 path without the leading "/" (e.g. `model_weights/dense/dense/kernel:0`,
`layers/dense/vars/0`). A contiguous, unfiltered dataset whose on-disk type is exactly the
NumPy type is memory-mapped at `dataset.id.get_offset()`; any other dataset (chunked,
compressed, compact, converted types) is read by h5py into memory under
`Limits.max_decompressed_bytes`. Opaque datasets tagged `dtype="bfloat16"` (how Keras 3 writes
bfloat16) are bfloat16 tensors. Legacy Keras layouts: a full model keeps its weights under
`model_weights/<layer>/...` with `model_config`, `training_config`, `keras_version` and
`backend` attributes at the root; a `save_weights` file keeps `<layer>/...` groups at the root
with `layer_names` / `weight_names` attributes.

Keras 3 (reader "keras"): a zip with `config.json`, `metadata.json` and `model.weights.h5`
(weights under `layers/<layer>/vars/<i>`, nested models under `.../layers/...`). Stored inner
HDF5 files are memory-mapped in place; deflated ones are inflated under the archive limits.

Model configs are parsed as JSON (never evaluated) and walked: every layer is a `keras.layer`
observation, every `Lambda` layer (and every serialized `__lambda__` elsewhere) a
`keras.lambda` observation with its code or function name as written, never decoded or run;
other serialized objects whose `module` lies outside `keras` or whose `registered_name` names
a package (`Pkg>Name`) are `symbolic.object` observations.
"""

from __future__ import annotations

import functools
import io
import json
import math
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from assay.errors import AssayError, FormatError, LimitError, MissingDependencyError, UnsupportedError
from assay.formats.base import (
    Probe,
    Reader,
    archive_observations,
    check_shape,
    crash_guard,
    keeping,
    record_from_buffer,
    record_from_file,
    trailing,
)
from assay.io import hdf5
from assay.io.archive import Member, ZipArchive
from assay.limits import Limits
from assay.model.artifact import ModelArtifact
from assay.model.dtypes import DTYPES, DType, from_numpy
from assay.model.tensor import TensorRecord, map_file

ROOT_ATTRS = ("model_config", "training_config", "keras_version", "backend")
JSON_ATTRS = ("model_config", "training_config")
CONFIG, METADATA, WEIGHTS, NPZ_WEIGHTS = "config.json", "metadata.json", "model.weights.h5", \
    "model.weights.npz"
EXPECTED_MEMBERS = (CONFIG, METADATA, WEIGHTS)
LAYER_KEYS = ("layers", "layer", "forward_layer", "backward_layer", "cell", "cells")
LAMBDA_KEYS = ("function_type", "module", "output_shape", "output_shape_type",
               "output_shape_module", "arguments")
MAX_LISTED = 1000          # external file names kept per dataset
READ_ERRORS = (OSError, ValueError, LookupError, TypeError, RuntimeError, AttributeError,
               ArithmeticError)
T = TypeVar("T")


# -- sniffing --------------------------------------------------------------------------------

def sniff_hdf5(p: Probe) -> bool:
    return any(p.head[at:at + 8] == hdf5.MAGIC for at in hdf5.SUPERBLOCK_AT)


def sniff_keras(p: Probe) -> bool:
    names = set(p.zip_names())
    return CONFIG in names and bool(names & {METADATA, WEIGHTS, NPZ_WEIGHTS})


# -- small helpers ---------------------------------------------------------------------------

def _h5py() -> Any:
    try:
        import h5py
    except ModuleNotFoundError:
        raise MissingDependencyError(None, "reading HDF5 / Keras files needs h5py "
                                     "(pip install h5py)") from None
    return h5py


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _guarded(path: str, member: str | None, what: Callable[[], str], fn: Callable[[], T]) -> T:
    """Run `fn`; an exception h5py or a malformed value raises becomes a one-line FormatError."""
    try:
        return fn()
    except AssayError:
        raise
    except READ_ERRORS as exc:
        raise FormatError(path, f"{what()} ({_one_line(exc)})", member=member) from None


def _natural(name: str) -> list[Any]:
    return [(0, int(s), "") if s.isdigit() else (1, 0, s) for s in re.split(r"(\d+)", name)]


def _plain(value: Any) -> Any:
    """An attribute value as JSON-friendly Python (bytes decoded as UTF-8)."""
    import numpy as np

    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _parse_json(path: str, raw: str | bytes, what: str, member: str | None = None) -> Any:
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text)
    except UnicodeDecodeError:
        raise FormatError(path, f"keras: {what} is not valid UTF-8", member=member) from None
    except RecursionError:
        raise FormatError(path, f"keras: {what} JSON is nested too deeply", member=member) from None
    except ValueError as exc:
        raise FormatError(path, f"keras: {what} is not valid JSON ({_one_line(exc)})",
                          member=member) from None


class _ViewFile(io.RawIOBase):
    """A read-only, seekable file over a buffer (the memory map, or an inflated member)."""

    def __init__(self, buf: memoryview | bytes) -> None:
        super().__init__()
        self._buf = memoryview(buf)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._buf)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, b: Any) -> int:
        chunk = self._buf[self._pos:self._pos + len(b)]
        n = len(chunk)
        memoryview(b).cast("B")[:n] = chunk
        self._pos += n
        return n


# -- model configs ---------------------------------------------------------------------------

def _function_parts(fn: Any, function_type: Any) -> tuple[Any, Any, Any]:
    """(code, function name, module) of a serialized Lambda function, as written."""
    if isinstance(fn, list | tuple):               # Keras 2: [base64 marshal, defaults, closure]
        return (fn[0] if fn else None), None, None
    if isinstance(fn, str):
        return (fn, None, None) if function_type == "lambda" else (None, fn, None)
    if isinstance(fn, dict):
        inner = fn.get("config")
        if fn.get("class_name") == "__lambda__":
            return (inner.get("code") if isinstance(inner, dict) else None), None, fn.get("module")
        name = inner if isinstance(inner, str) else fn.get("class_name")
        return None, name, fn.get("module")
    return None, None, None


@dataclass
class _ConfigWalk:
    """Record layers, Lambda layers and custom objects of a parsed Keras model config."""

    art: ModelArtifact
    file: str
    member: str | None
    source: str
    limits: Limits

    def run(self, config: Any, root: str) -> None:
        self.visit(config, "$", 0, root, False)

    def visit(self, node: Any, loc: str, depth: int, role: str, in_lambda: bool) -> None:
        if depth > self.limits.max_json_depth:
            raise LimitError(self.file, f"keras: {self.source} is nested deeper than "
                             f"{self.limits.max_json_depth} levels", member=self.member)
        if isinstance(node, list):
            for i, item in enumerate(node):
                self.visit(item, f"{loc}[{i}]", depth + 1, role, in_lambda)
            return
        if not isinstance(node, dict):
            return
        if isinstance(node.get("class_name"), str):
            in_lambda = self.record(node, loc, role, in_lambda)
        for key, value in node.items():
            child = "layer" if key in LAYER_KEYS else "value"
            self.visit(value, f"{loc}.{key}", depth + 1, child, in_lambda)

    def record(self, node: dict[str, Any], loc: str, role: str, in_lambda: bool) -> bool:
        cls = node["class_name"]
        raw_cfg = node.get("config")
        cfg = raw_cfg if isinstance(raw_cfg, dict) else {}
        name = raw_cfg if isinstance(raw_cfg, str) else cfg.get("name", node.get("name"))
        ids = {"class_name": cls, "name": name, "module": node.get("module"),
               "registered_name": node.get("registered_name")}
        if role == "layer":
            self.art.observe("keras.layer", f"{cls} {name!r}", self.file, self.member,
                             location=loc, source=self.source, **ids)
            if cls == "Lambda":
                self.lambda_layer(cfg, loc, ids)
                return True
        elif cls == "__lambda__":
            if not in_lambda:       # a lambda serialized outside a Lambda layer (activation=...)
                self.lambda_layer({"function": node, "function_type": "lambda"}, loc, ids)
        elif _custom(node):
            self.art.observe("symbolic.object", f"keras object {ids['module']}.{cls}", self.file,
                             self.member, location=loc, source=self.source, **ids)
        return in_lambda

    def lambda_layer(self, cfg: dict[str, Any], loc: str, ids: dict[str, Any]) -> None:
        code, fname, fmodule = _function_parts(cfg.get("function"), cfg.get("function_type"))
        facts = {k: cfg.get(k) for k in LAMBDA_KEYS if k in cfg}
        what = "marshalled code" if code is not None else f"function {fname!r}"
        self.art.observe("keras.lambda", f"Lambda {ids['name']!r}: {what}", self.file, self.member,
                         location=loc, source=self.source, layer=ids["name"], code=code,
                         function_name=fname, function_module=fmodule, **facts)


def _custom(node: dict[str, Any]) -> bool:
    module, registered = node.get("module"), node.get("registered_name")
    outside = isinstance(module, str) and module != "keras" and not module.startswith("keras.")
    return outside or (isinstance(registered, str) and ">" in registered)


def _record_config(art: ModelArtifact, config: Any, file: str, member: str | None, source: str,
                   limits: Limits) -> None:
    """Walk a model config (its root is a layer) or a training config (its root is not)."""
    root = "value" if source == "training_config" else "layer"
    try:
        _ConfigWalk(art, file, member, source, limits).run(config, root)
    except RecursionError:
        raise FormatError(file, f"keras: {source} is nested too deeply", member=member) from None


# -- HDF5 ------------------------------------------------------------------------------------
#
# One walk over two ways of reading the structure: assay's own reading of the file format
# (`assay.io.hdf5`, pure Python, no library import, nothing native to crash) and h5py. The own
# reading is tried first; a file using a feature it does not read (dense storage, shared
# messages, virtual datasets, unusual types), a dataset whose bytes are not one contiguous,
# unfiltered range (chunked, compressed, compact, unallocated), or bytes it finds malformed are
# read again from the start with h5py, whose errors are the ones reported.


class _UseLibrary(Exception):
    """The own reading cannot give what the walk needs: read the file with h5py."""


@dataclass(frozen=True)
class _Opaque:
    """An opaque dataset type of `size` bytes: what it holds is in a "dtype" attribute."""

    size: int


_Element = _Opaque | tuple[DType, str, bool] | str   # or why the dataset is not numeric


class _Storage(NamedTuple):
    """How a dataset is stored: layout, filters, data offset, allocated bytes."""

    layout: str                  # "contiguous" | "compact" | "chunked" | "virtual"
    filters: int
    offset: int | None           # contiguous: where the data starts (None: not allocated)
    stored: int                  # contiguous: bytes allocated


class _H5Node:
    """An h5py group or dataset."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    @property
    def ident(self) -> Any:
        return self.obj.id

    @property
    def name(self) -> str:
        return str(self.obj.name)

    @property
    def kind(self) -> str:
        h5py = _h5py()
        return "group" if isinstance(self.obj, h5py.Group) else \
            "dataset" if isinstance(self.obj, h5py.Dataset) else "other"

    def has_attr(self, key: str) -> bool:
        return key in self.obj.attrs

    def attr_size(self, key: str) -> tuple[int, int]:
        aid = self.obj.attrs.get_id(key)
        return aid.get_storage_size(), (math.prod(aid.shape) if aid.shape else 1)

    def attr_value(self, key: str) -> Any:
        return _plain(self.obj.attrs[key])

    def link_names(self) -> Iterator[str]:
        yield from self.obj

    def link(self, key: str) -> tuple[str, Any]:
        h5py = _h5py()
        link = self.obj.get(key, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            return "external", (link.filename, link.path)
        if not isinstance(link, h5py.HardLink):
            return "other", None
        return "hard", _H5Node(self.obj[key])

    # datasets

    @property
    def shape(self) -> tuple[int, ...] | None:
        return None if self.obj.shape is None else tuple(self.obj.shape)

    def element(self) -> _Element:
        """An opaque type, or (dtype, byte order, whether stored exactly as that type), or
        why the dataset is not numeric."""
        h5py = _h5py()
        ds = self.obj
        tid = ds.id.get_type()
        if tid.get_class() == h5py.h5t.OPAQUE:
            return _Opaque(tid.get_size())
        npdt = ds.dtype
        dt = from_numpy(npdt)
        if dt is None:
            return f"non-numeric type {npdt}"
        order = ">" if npdt.byteorder == ">" else "<"
        return dt, order, bool(tid.equal(h5py.h5t.py_create(npdt)))

    def external(self) -> tuple[list[str], int] | None:
        h5py = _h5py()
        dcpl = self.obj.id.get_create_plist()
        if dcpl.get_layout() == h5py.h5d.VIRTUAL:
            n = dcpl.get_virtual_count()
            return sorted({dcpl.get_virtual_filename(i) for i in range(min(n, MAX_LISTED))}), n
        if dcpl.get_external_count():
            n = dcpl.get_external_count()
            return [_plain(dcpl.get_external(i)[0]) for i in range(min(n, MAX_LISTED))], n
        return None

    def storage(self) -> _Storage:
        h5py = _h5py()
        dcpl = self.obj.id.get_create_plist()
        layout = {h5py.h5d.CONTIGUOUS: "contiguous", h5py.h5d.COMPACT: "compact",
                  h5py.h5d.CHUNKED: "chunked"}.get(dcpl.get_layout(), "virtual")
        off = self.obj.id.get_offset() if layout == "contiguous" else None
        return _Storage(layout, dcpl.get_nfilters(), off, self.obj.id.get_storage_size())

    def load(self) -> Any:
        return self.obj[()]


_OWN_TYPES = {(hdf5.FLOAT, 2): "float16", (hdf5.FLOAT, 4): "float32", (hdf5.FLOAT, 8): "float64",
              **{(hdf5.FIXED, n, True): f"int{8 * n}" for n in (1, 2, 4, 8)},
              **{(hdf5.FIXED, n, False): f"uint{8 * n}" for n in (1, 2, 4, 8)}}


class _OwnNode:
    """A group or dataset as `assay.io.hdf5` reads it."""

    def __init__(self, f: hdf5.Hdf5File, obj: hdf5.Object, name: str) -> None:
        self.f, self.obj, self.name = f, obj, name

    @property
    def ident(self) -> int:
        return self.obj.address

    @property
    def kind(self) -> str:
        return self.obj.kind

    def has_attr(self, key: str) -> bool:
        return key in self.obj.attrs

    def attr_size(self, key: str) -> tuple[int, int]:
        a = self.obj.attrs[key]
        return len(a.data), a.count

    def attr_value(self, key: str) -> Any:
        try:
            return hdf5.value(self.f, self.obj.attrs[key])
        except hdf5.NotRead as exc:
            raise _UseLibrary(str(exc)) from None

    @functools.cached_property
    def _links(self) -> dict[str, hdf5.Link]:
        return {lk.name: lk for lk in self.obj.links()}

    def link_names(self) -> Iterator[str]:
        yield from self._links

    def link(self, key: str) -> tuple[str, Any]:
        lk = self._links[key]
        if lk.kind == "external":
            return "external", (lk.target_file, lk.target_path)
        if lk.kind != "hard" or lk.address is None:
            return "other", None
        child = f"{self.name.rstrip('/')}/{key}"
        return "hard", _OwnNode(self.f, self.f.object(lk.address), child)

    @property
    def shape(self) -> tuple[int, ...] | None:
        return self.obj.shape

    def element(self) -> _Element:
        t = self.obj.dtype
        if t.cls == hdf5.OPAQUE:
            return _Opaque(t.size)
        if t.cls == hdf5.STRING or t.vlen_string:
            return f"non-numeric type {t.numpy_name()}"
        if t.is_bool:
            return DTYPES["bool"], "<", True
        key = (t.cls, t.size) if t.cls == hdf5.FLOAT else (t.cls, t.size, t.signed)
        name = _OWN_TYPES.get(key)
        if name is None or not t.standard:
            raise _UseLibrary(f"HDF5 type {t.numpy_name()}")
        return DTYPES[name], (">" if t.order == ">" else "<"), True

    def external(self) -> tuple[list[str], int] | None:
        files = self.obj.external_files()
        return (files[:MAX_LISTED], len(files)) if files else None

    def storage(self) -> _Storage:
        lay = self.obj.layout
        return _Storage(lay.kind, self.obj.filters, lay.address, lay.size)

    def load(self) -> Any:
        raise _UseLibrary("dataset bytes are not one contiguous range")


_Node = _H5Node | _OwnNode


@dataclass
class _Hdf5Walk:
    """Turn the numeric datasets of one HDF5 file (on disk or inside an archive) into tensors.

    `base` is the absolute file offset of `buf` when it is a slice of the memory map of `path`
    (then contiguous datasets become file-backed records), None when `buf` was inflated."""

    art: ModelArtifact
    path: str
    member: str | None
    buf: memoryview | bytes
    base: int | None
    limits: Limits
    prefix: str = "hdf5"
    links: int = 0
    in_memory: int = 0
    where: str = "the file"
    seen: set[Any] = field(default_factory=set)
    skipped: dict[str, str] = field(default_factory=dict)

    def fail(self, rule: str) -> FormatError:
        return FormatError(self.path, f"{self.prefix}: {rule}", member=self.member)

    def attr(self, obj: _Node, key: str) -> Any:
        """An attribute as plain Python, after checking its size against the limits."""
        if not obj.has_attr(key):
            return None
        stored, count = obj.attr_size(key)
        if stored > self.limits.max_header_bytes or count > self.limits.max_metadata_entries:
            raise LimitError(self.path, f"{self.prefix}: attribute {key!r} of {obj.name!r} is "
                             "over the size limit", member=self.member)
        try:
            return obj.attr_value(key)
        except UnicodeDecodeError:
            raise self.fail(f"attribute {key!r} of {obj.name!r} is not UTF-8") from None

    def listed(self, obj: _Node, key: str) -> list[str]:
        """A Keras name-list attribute, also when split into `key0`, `key1`, ... chunks."""
        first = self.attr(obj, key)
        chunks = [first] if first is not None else []
        while first is None and obj.has_attr(f"{key}{len(chunks)}"):
            chunks.append(self.attr(obj, f"{key}{len(chunks)}"))
            if len(chunks) > self.limits.max_metadata_entries:
                raise LimitError(self.path, f"{self.prefix}: too many {key} chunks",
                                 member=self.member)
        out = [str(v) for c in chunks for v in (c if isinstance(c, list) else [c]) if v is not None]
        if len(out) > self.limits.max_metadata_entries:
            raise LimitError(self.path, f"{self.prefix}: too many {key}", member=self.member)
        return out

    def walk(self, group: _Node, prefix: str, depth: int, layer: str | None) -> None:
        if depth > self.limits.max_json_depth:
            raise LimitError(self.path, f"{self.prefix}: groups nested deeper than "
                             f"{self.limits.max_json_depth} levels at {prefix!r}", member=self.member)
        if group.ident in self.seen:
            return                                  # a hard link back to a visited group
        self.seen.add(group.ident)
        layers = set(self.listed(group, "layer_names"))
        for key in self.children(group):
            self.where = f"object {prefix + key!r}"
            self.visit(group, key, prefix, depth, key if key in layers else layer)

    def children(self, group: _Node) -> list[str]:
        names = []
        for key in group.link_names():
            self.links += 1
            if self.links > self.limits.max_tensors:
                raise LimitError(self.path, f"{self.prefix}: more than {self.limits.max_tensors} "
                                 "HDF5 links", member=self.member)
            names.append(key)
        return sorted(names, key=_natural)

    def visit(self, group: _Node, key: str, prefix: str, depth: int, layer: str | None) -> None:
        full = prefix + key
        kind, target = group.link(key)
        if kind == "external":
            file, path = target
            self.art.observe("external.data", f"HDF5 external link {full!r} -> {file}",
                             self.path, self.member, name=full, target_file=file, target_path=path)
            return
        if kind != "hard":
            return                                  # soft links alias objects visited anyway
        if target.kind == "group":
            named = self.attr(target, "name") if key == "vars" else None
            self.walk(target, full + "/", depth + 1, named if isinstance(named, str) else layer)
        elif target.kind == "dataset":
            self.dataset(target, full, layer)

    # datasets

    def dataset(self, ds: _Node, name: str, layer: str | None) -> None:
        self.where = f"dataset {name!r}"
        if ds.shape is None:
            self.skipped[name] = "empty dataspace"
            return
        typed = self.element_type(ds)
        if isinstance(typed, str):
            self.skipped[name] = typed
            return
        dt, order, raw = typed
        shape = check_shape(self.path, list(ds.shape), self.limits, f"{self.prefix}: dataset {name!r}")
        attrs = {"layer": layer} if layer else {}
        if self.external(ds, name):
            return
        off = self.mapped_offset(ds, dt.nbytes(math.prod(shape)), name) if raw else None
        if off is not None:
            self.art.tensors.append(self.place(name, dt, shape, off, order, attrs))
        else:
            self.art.tensors.append(self.load(ds, name, dt, shape, attrs))

    def element_type(self, ds: _Node) -> tuple[DType, str, bool] | str:
        """(canonical dtype, byte order, whether the stored bytes are exactly that type), or
        why the dataset is skipped."""
        got = ds.element()
        if isinstance(got, _Opaque):               # the type is in a "dtype" attribute
            tag = self.attr(ds, "dtype")
            dt = DTYPES.get(tag) if isinstance(tag, str) else None
            if dt is None or dt.is_block or dt.itemsize != got.size:
                return "opaque type without a known 'dtype' attribute"
            return dt, "<", True
        return got

    def external(self, ds: _Node, name: str) -> bool:
        got = ds.external()
        if got is None:
            return False
        files, n = got
        self.art.observe("external.data", f"HDF5 dataset {name!r} keeps its data in other files",
                         self.path, self.member, name=name, files=files, count=n)
        return True

    def mapped_offset(self, ds: _Node, nbytes: int, name: str) -> int | None:
        """The dataset's offset in `buf` when it is contiguous, unfiltered and allocated."""
        st = ds.storage()
        if st.layout != "contiguous" or st.filters:
            return None
        off = st.offset
        if off is None or nbytes == 0:
            return None
        if st.stored != nbytes:
            raise self.fail(f"dataset {name!r} stores {st.stored} bytes but its type and shape "
                            f"need {nbytes}")
        if off < 0 or off + nbytes > len(self.buf):
            raise self.fail(f"dataset {name!r} data ({nbytes} bytes at {off}) runs past the "
                            f"end of the {len(self.buf)}-byte file (truncated?)")
        return int(off)

    def place(self, name: str, dt: DType, shape: tuple[int, ...], off: int, order: str,
              attrs: dict[str, Any]) -> TensorRecord:
        if self.base is not None:
            return record_from_file(name, dt, shape, self.path, self.base + off,
                                    member=self.member, byteorder=order, **attrs)
        data = memoryview(self.buf)[off:off + dt.nbytes(math.prod(shape))]
        return record_from_buffer(name, dt, shape, data, self.path, member=self.member,
                                  offset=off, byteorder=order, **attrs)

    def load(self, ds: _Node, name: str, dt: DType, shape: tuple[int, ...],
             attrs: dict[str, Any]) -> TensorRecord:
        """Read a chunked, compressed, compact or converted dataset through h5py."""
        nbytes = dt.nbytes(math.prod(shape))
        if self.in_memory + nbytes > self.limits.max_decompressed_bytes:
            raise LimitError(self.path, f"{self.prefix}: datasets read into memory exceed "
                             f"{self.limits.max_decompressed_bytes} bytes at {name!r}",
                             member=self.member)
        value = ds.load()
        self.in_memory += nbytes

        import numpy as np

        arr = np.asarray(value)
        if arr.dtype.kind != "V" and arr.dtype.itemsize > 1:
            arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        raw = np.array(arr, order="C").reshape(-1).view(np.uint8)
        return record_from_buffer(name, dt, shape, raw.data.cast("B") if raw.size else b"",
                                  self.path, member=self.member, **attrs)


def _read_hdf5(walk: _Hdf5Walk, on_root: Callable[[_Node], None]) -> None:
    """Walk `walk.buf`: with assay's own HDF5 reading when it can give everything, else (from
    the start) with h5py, after a forked trial run in case libhdf5 crashes on the file."""
    art = walk.art
    kept = (len(art.tensors), len(art.observations), dict(art.metadata))
    try:
        f = hdf5.Hdf5File(walk.buf)
        root = _OwnNode(f, f.root(), "/")
        walk.where = "the root attributes"
        on_root(root)
        walk.walk(root, "", 0, None)
    except AssayError:
        raise
    except (_UseLibrary, RecursionError, struct.error, *READ_ERRORS):
        del art.tensors[kept[0]:], art.observations[kept[1]:]
        art.metadata.clear()
        art.metadata.update(kept[2])
        walk.links, walk.in_memory, walk.seen, walk.skipped = 0, 0, set(), {}
        crash_guard(walk.path, "the HDF5 library", lambda: _read_with_h5py(walk, on_root))
        _read_with_h5py(walk, on_root)
    if walk.skipped:
        art.metadata.setdefault("keras", {})["skipped_datasets"] = dict(walk.skipped)


def _read_with_h5py(walk: _Hdf5Walk, on_root: Callable[[_Node], None]) -> None:
    h5py = _h5py()

    def run() -> None:
        with h5py.File(_ViewFile(walk.buf), "r") as f:
            walk.where = "the root attributes"
            root = _H5Node(f["/"])
            on_root(root)
            walk.walk(root, "", 0, None)
    walk.where = "the file"
    _guarded(walk.path, walk.member, lambda: f"{walk.prefix}: cannot read {walk.where}", run)


# -- reader: HDF5 ----------------------------------------------------------------------------

def _root_metadata(walk: _Hdf5Walk, f: _Node) -> None:
    meta: dict[str, Any] = {}
    for key in ROOT_ATTRS:
        value = walk.attr(f, key)
        if value is None:
            continue
        if key in JSON_ATTRS:
            if not isinstance(value, str):
                raise walk.fail(f"attribute {key!r} is not a string")
            value = _parse_json(walk.path, value, f"attribute {key!r}", walk.member)
            _record_config(walk.art, value, walk.path, walk.member, key, walk.limits)
        meta[key] = value
    holder = f
    for key in f.link_names():
        if key == "model_weights":
            kind, target = f.link(key)
            if kind == "hard" and target.kind == "group":
                holder = target
    names = walk.listed(holder, "layer_names")
    if names:
        meta["layer_names"] = names
    if meta:
        walk.art.metadata["keras"] = meta


def read_hdf5(p: Probe) -> ModelArtifact:
    art = ModelArtifact(path=p.path, format="hdf5-keras", files=[p.path])
    mapped = map_file(p.path)
    walk = _Hdf5Walk(art, p.path, None, mapped, 0, p.limits)
    _read_hdf5(walk, lambda f: _root_metadata(walk, f))
    end = hdf5.end_address(mapped)
    if end is not None and end < len(mapped):
        trailing(art, p.path, mapped, end, what="the HDF5 end-of-file address")
    return art


# -- reader: Keras 3 archive -----------------------------------------------------------------

def _member_json(z: ZipArchive, name: str, limits: Limits) -> Any:
    m = z.get(name)
    if m is None:
        return None
    if m.size > limits.max_header_bytes:
        raise LimitError(z.path, f"keras: {name} is {m.size} bytes, over the limit of "
                         f"{limits.max_header_bytes}", member=name)
    return _parse_json(z.path, bytes(z.data(m)), name, name)


def _weights_member(z: ZipArchive) -> Member:
    m = z.get(WEIGHTS)
    if m is not None:
        return m
    if z.get(NPZ_WEIGHTS) is not None:
        raise UnsupportedError(z.path, f"keras: weights stored as {NPZ_WEIGHTS} are not read yet")
    raise FormatError(z.path, f"keras: archive has no {WEIGHTS}")


def read_keras(p: Probe) -> ModelArtifact:
    z = p.zip
    if z is None:
        raise p.zip_error or FormatError(p.path, "keras: not a readable zip archive")
    art = ModelArtifact(path=p.path, format="keras", files=[p.path])
    with keeping(art):
        try:
            _read_keras_members(p, z, art)
        finally:
            archive_observations(art, z)
    return art


def _read_keras_members(p: Probe, z: ZipArchive, art: ModelArtifact) -> None:
    config = _member_json(z, CONFIG, p.limits)
    meta = _member_json(z, METADATA, p.limits)
    weights = _weights_member(z)
    if not isinstance(config, dict):
        raise FormatError(p.path, f"keras: {CONFIG} is not a JSON object", member=CONFIG)
    if meta is not None and not isinstance(meta, dict):
        raise FormatError(p.path, f"keras: {METADATA} is not a JSON object", member=METADATA)
    _record_config(art, config, p.path, CONFIG, CONFIG, p.limits)
    keras_meta: dict[str, Any] = {"model_config": config}
    if meta is not None:
        keras_meta["metadata"] = meta
        if "keras_version" in meta:
            keras_meta["keras_version"] = meta["keras_version"]
    art.metadata["keras"] = keras_meta
    data = z.data(weights)
    walk = _Hdf5Walk(art, p.path, weights.name, data, weights.data_offset if weights.stored else None,
                     p.limits, prefix="keras")
    _read_hdf5(walk, lambda f: None)


READERS = [
    Reader("hdf5-keras", sniff_hdf5, read_hdf5, "HDF5 (legacy Keras .h5 and other HDF5 weights)"),
    Reader("keras", sniff_keras, read_keras, "Keras 3 .keras archive"),
]
