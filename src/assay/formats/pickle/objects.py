"""Reading meaning out of a symbolic pickle graph without executing it.

`walk` flattens nested containers, OrderedDicts and object states to dotted names and asks a
resolver whether a node is a tensor. `numpy_array` recognises NumPy's array reconstruction
(`_reconstruct` + BUILD state), which PyTorch checkpoints, joblib files and plain pickles share.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from assay.formats.pickle.symbols import Call, Global, Raw
from assay.model.dtypes import ArrayType, array_type

NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")


@dataclass(frozen=True)
class ArrayRef:
    """A NumPy array found in a pickle: dtype, shape, order, and its raw bytes (or objects)."""

    dtype: ArrayType
    shape: tuple[int, ...]
    fortran: bool
    data: Raw | bytes | list | None


def is_global(v: Any, *qualnames: str) -> bool:
    return isinstance(v, Global) and v.qualname in qualnames


def calls(v: Any, *qualnames: str) -> bool:
    return isinstance(v, Call) and is_global(v.func, *qualnames)


def as_bytes(v: Any) -> bytes | Raw | None:
    """Bytes, or protocol 2's `_codecs.encode(text, 'latin1')` spelling of bytes, else None."""
    if isinstance(v, bytes | Raw):
        return v
    if calls(v, "_codecs.encode") and len(v.args) == 2 and isinstance(v.args[0], str) and \
            v.args[1] in ("latin1", "latin-1"):
        try:
            return v.args[0].encode("latin-1")
        except UnicodeEncodeError:
            return None
    return None


def numpy_dtype(v: Any) -> ArrayType | None:
    """`numpy.dtype('f4', False, True)` with BUILD state `(3, '<', ...)` -> ArrayType '<f4'.

    The code is read without NumPy; a code it does not know is given to NumPy (see `array_type`).
    A datetime unit in the state is not read (the type stays generic)."""
    if not calls(v, "numpy.dtype") or not v.args or not isinstance(v.args[0], str):
        return None
    code = v.args[0]
    if not code or len(code) > 8 or not code.isalnum():
        return None
    try:
        dt = array_type(code)
    except TypeError:
        return None
    st = v.state
    if isinstance(st, tuple) and len(st) > 1 and st[1] in ("<", ">") and dt.itemsize > 1:
        dt = dt.newbyteorder(st[1])
    return dt


def numpy_array(v: Any) -> ArrayRef | None:
    """Recognise `numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')` + BUILD state."""
    if not isinstance(v, Call) or not isinstance(v.func, Global):
        return None
    if v.func.module not in NUMPY_MODULES or v.func.name != "_reconstruct":
        return None
    st = v.state
    if not (isinstance(st, tuple) and len(st) == 5):
        return None
    _ver, shape, dt_call, fortran, raw = st
    dt = numpy_dtype(dt_call)
    if dt is None or not isinstance(shape, tuple) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        return None
    data = raw if isinstance(raw, list) else as_bytes(raw)
    return ArrayRef(dt, shape, bool(fortran), data)


_STRUCT = {"b1": "?", "i1": "b", "u1": "B", "i2": "h", "u2": "H", "i4": "i", "u4": "I",
           "i8": "q", "u8": "Q", "f2": "e", "f4": "f", "f8": "d", "c8": "2f", "c16": "2d"}


def numpy_scalar(v: Any) -> Any:
    """`numpy.core.multiarray.scalar(dtype, bytes)` -> a Python number, else None."""
    if not isinstance(v, Call) or not isinstance(v.func, Global):
        return None
    if v.func.module not in NUMPY_MODULES or v.func.name != "scalar" or len(v.args) < 2:
        return None
    dt = numpy_dtype(v.args[0])
    raw = as_bytes(v.args[1])
    if dt is None or dt.kind not in "biufc" or not isinstance(raw, bytes) or len(raw) != dt.itemsize:
        return None
    fmt = _STRUCT.get(f"{dt.kind}{dt.itemsize}")
    if fmt is None:                 # long double and kin: NumPy decodes them
        import numpy as np
        return np.frombuffer(raw, dtype=dt.numpy)[0].item()
    values = struct.unpack((">" if dt.byteorder == ">" else "<") + fmt, raw)
    return complex(*values) if dt.kind == "c" else values[0]


def object_state(v: Call) -> dict[str, Any]:
    """The attribute dict a BUILD would set (plain dict state or the (dict, slots) pair)."""
    st = v.state
    if isinstance(st, dict):
        return {str(k): val for k, val in st.items()}
    if isinstance(st, tuple) and len(st) == 2:
        out: dict[str, Any] = {}
        for part in st:
            if isinstance(part, dict):
                out.update({str(k): val for k, val in part.items()})
        return out
    return {}


Resolver = Callable[[Any], Any]   # node -> tensor-like leaf, or None


def walk(root: Any, resolve: Resolver, max_depth: int = 512) -> Iterator[tuple[str, Any]]:
    """Yield (dotted name, leaf) for every node `resolve` accepts, depth-first, cycle-safe."""
    seen: set[int] = set()
    stack: list[tuple[str, Any, int]] = [("", root, 0)]
    while stack:
        name, node, depth = stack.pop()
        leaf = resolve(node)
        if leaf is not None:
            yield name, leaf
            continue
        if depth >= max_depth or id(node) in seen:
            continue
        if isinstance(node, dict | list | tuple | Call):
            seen.add(id(node))
        children: list[tuple[str, Any]] = []
        if isinstance(node, dict):
            children = [(str(k), v) for k, v in node.items()]
        elif isinstance(node, list | tuple):
            children = [(str(i), v) for i, v in enumerate(node)]
        elif isinstance(node, Call):
            if calls(node, "torch._utils._rebuild_parameter",
                     "torch._utils._rebuild_parameter_with_state") and node.args:
                children = [("", node.args[0])]
            else:
                children = [(str(k), v) for k, v in node.items]
                children += [(str(i), v) for i, v in enumerate(node.appended)]
                children += list(object_state(node).items())
                if not children and len(node.args) == 1 and isinstance(node.args[0], dict | list):
                    children = [("", node.args[0])]   # OrderedDict([...]), dict(...) and kin
        for key, child in reversed(children):
            stack.append((f"{name}.{key}" if name and key else name or key, child, depth + 1))


def plain(v: Any, depth: int = 0) -> Any:
    """A JSON-friendly rendering of a small symbolic value (for metadata), never executing it."""
    if depth > 8:
        return "..."
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, bytes):
        return v.decode("latin-1") if len(v) <= 64 else f"<{len(v)} bytes>"
    if isinstance(v, Raw):
        return f"<{len(v)} bytes>"
    if isinstance(v, list | tuple):
        return [plain(x, depth + 1) for x in v[:64]]
    if isinstance(v, set | frozenset):
        return sorted((plain(x, depth + 1) for x in list(v)[:64]), key=repr)
    if isinstance(v, dict):
        return {str(k): plain(x, depth + 1) for k, x in list(v.items())[:256]}
    s = numpy_scalar(v)
    if s is not None:
        return s
    if isinstance(v, Global):
        return f"<global {v.qualname}>"
    if isinstance(v, Call):
        return f"<{v.target}>"
    return f"<{type(v).__name__}>"
