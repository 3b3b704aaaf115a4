"""Facts about what a pickle would do, read off the symbolic graph (never by running it).

- the effective target of each call, followed through `getattr`, `operator.attrgetter`,
  `operator.methodcaller`, `importlib.import_module` and `__import__` chains, so that
  `getattr(__import__('os'), 'system')(...)` is seen as a call of `os.system`;
- nested pickles: a call of a `loads`-style function on bytes the pickle itself carries (raw,
  base64, zlib/gzip/bz2/lzma-compressed, protocol-0 text) is run on the emulated machine too,
  and what it would import and call is recorded with its nesting depth.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import lzma
import zlib
from typing import Any

from assay.formats.pickle.symbols import Call, Global, Raw
from assay.model.artifact import Location, Observation

GETATTR = {"builtins.getattr", "__builtin__.getattr"}
ATTRGETTER = {"operator.attrgetter", "_operator.attrgetter"}
METHODCALLER = {"operator.methodcaller", "_operator.methodcaller"}
IMPORTERS = {"builtins.__import__", "__builtin__.__import__", "importlib.import_module",
             "importlib.__import__"}
LOADERS = {"pickle.loads", "_pickle.loads", "cPickle.loads", "pickle._loads", "dill.loads",
           "cloudpickle.loads", "dill._dill.loads", "joblib.numpy_pickle.loads"}
DECODERS = {"base64.b64decode", "base64.standard_b64decode", "base64.urlsafe_b64decode",
            "base64.decodebytes", "binascii.a2b_base64", "zlib.decompress", "bz2.decompress",
            "lzma.decompress", "gzip.decompress", "codecs.decode", "_codecs.encode", "codecs.encode",
            "bytes.fromhex", "builtins.bytes", "__builtin__.bytes", "builtins.bytearray"}
MAX_NESTED_BYTES = 64 << 20


def _qual(v: Any) -> str | None:
    return v.qualname if isinstance(v, Global) else None


def resolve_value(v: Any, depth: int = 0) -> str | None:
    """The dotted name a symbolic value stands for (a module, a class, a function), if known."""
    if depth > 16:
        return None
    if isinstance(v, Global):
        return v.qualname
    if isinstance(v, Call):
        f = resolve_value(v.func, depth + 1)
        if f in IMPORTERS and v.args and isinstance(v.args[0], str):
            return v.args[0]
        if f in GETATTR and len(v.args) >= 2 and isinstance(v.args[1], str):
            base = resolve_value(v.args[0], depth + 1)
            return f"{base}.{v.args[1]}" if base else None
        if isinstance(v.func, Call):
            inner = resolve_value(v.func.func, depth + 1)
            if inner in ATTRGETTER and v.func.args and isinstance(v.func.args[0], str) and v.args:
                base = resolve_value(v.args[0], depth + 1)
                return f"{base}.{v.func.args[0]}" if base else None
    return None


def call_target(c: Call) -> tuple[str | None, str]:
    """(effective dotted name of what `c` calls, how it was reached)."""
    f = c.func
    if isinstance(f, Global):
        return f.qualname, "global"
    if isinstance(f, Call):
        inner = resolve_value(f.func)
        if inner in METHODCALLER and f.args and isinstance(f.args[0], str) and c.args:
            base = resolve_value(c.args[0])
            return (f"{base}.{f.args[0]}" if base else f"?.{f.args[0]}"), "methodcaller"
        if inner in ATTRGETTER and f.args and isinstance(f.args[0], str) and c.args:
            base = resolve_value(c.args[0])
            return (f"{base}.{f.args[0]}" if base else None), "attrgetter"
        name = resolve_value(f)
        if name is not None:
            return name, "getattr" if resolve_value(f.func) in GETATTR else "import"
    return None, "unknown"


def decode_bytes(v: Any, depth: int = 0) -> bytes | None:
    """Bytes a pickle carries, following base64 / zlib / codecs spellings, bounded in size."""
    if depth > 8:
        return None
    if isinstance(v, bytes | bytearray):
        return bytes(v)
    if isinstance(v, Raw):
        return v.tobytes() if len(v) <= MAX_NESTED_BYTES else None
    if isinstance(v, str):
        try:
            return v.encode("latin-1")
        except UnicodeEncodeError:
            return v.encode("utf-8", "surrogatepass")
    if not isinstance(v, Call) or not v.args:
        return None
    name = resolve_value(v.func)
    if name not in DECODERS:
        return None
    inner = decode_bytes(v.args[0], depth + 1)
    if inner is None:
        return None
    try:
        if name.startswith(("base64.", "binascii.")):
            return base64.b64decode(inner, altchars=b"-_" if "urlsafe" in name else None)
        if name == "zlib.decompress":
            return _bounded(zlib.decompressobj(), inner)
        if name == "gzip.decompress":
            return _bounded(zlib.decompressobj(31), inner)
        if name == "bz2.decompress":
            return _bounded(bz2.BZ2Decompressor(), inner)
        if name == "lzma.decompress":
            return _bounded(lzma.LZMADecompressor(), inner)
        if name == "bytes.fromhex":
            return bytes.fromhex(inner.decode("ascii"))
        if name in ("codecs.decode", "codecs.encode", "_codecs.encode") and len(v.args) > 1 and \
                isinstance(v.args[1], str) and v.args[1].replace("_", "").lower() in ("base64", "hex"):
            return base64.b64decode(inner) if "base64" in v.args[1].lower() else bytes.fromhex(inner.decode())
        return inner
    except (ValueError, binascii.Error, zlib.error, OSError, lzma.LZMAError, EOFError):
        return None


def _bounded(d: Any, data: bytes) -> bytes | None:
    out = d.decompress(data, MAX_NESTED_BYTES + 1)
    return None if len(out) > MAX_NESTED_BYTES else out


def call_observation(c: Call, file: str, member: str | None, nested: int) -> Observation:
    target, via = call_target(c)
    return Observation("pickle.call", target or c.target, Location(file, member, c.offset),
                       {"kind": c.kind, "built": c.built, "via": via, "resolved": target is not None,
                        "nested": nested})


def nested_payloads(calls: list[Call]) -> list[tuple[Call, bytes]]:
    """Calls of a loads-style function whose argument bytes the pickle itself supplies."""
    out = []
    for c in calls:
        target, _ = call_target(c)
        if target in LOADERS and c.args:
            data = decode_bytes(c.args[0])
            if data:
                out.append((c, data))
    return out
