"""What every reader shares: the probe it sniffs, the reader entry, tensor-record helpers."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple

from assay.errors import AssayError, FormatError, LimitError
from assay.io.archive import ZipArchive, is_zip, open_zip
from assay.limits import Limits
from assay.model.artifact import ModelArtifact
from assay.model.dtypes import DType, from_numpy
from assay.model.tensor import ByteSpan, TensorRecord, map_file

if TYPE_CHECKING:
    import numpy as np


@dataclass
class Probe:
    """What a reader may look at to decide whether a file is its format. Cheap, no side effects."""

    path: str
    head: bytes
    size: int
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def of(cls, path: str, limits: Limits) -> Probe:
        with open(path, "rb") as fh:
            head = fh.read(4096)
        return cls(path, head, os.path.getsize(path), limits)

    zip_error: FormatError | None = None

    @cached_property
    def zip(self) -> ZipArchive | None:
        """The parsed zip directory, or None (a damaged zip keeps its error in `zip_error`)."""
        if not is_zip(self.head):
            return None
        try:
            return open_zip(self.path, self.limits)
        except FormatError as exc:
            self.zip_error = exc
            return None

    def zip_names(self) -> list[str]:
        return self.zip.names() if self.zip else []


class Reader(NamedTuple):
    """A format: its name, how it recognises a file, how it reads one."""

    name: str
    sniff: Callable[[Probe], bool]
    read: Callable[[Probe], ModelArtifact]
    description: str = ""


def file_loader(path: str) -> Callable[[], memoryview | bytes]:
    return lambda: map_file(path)


def const_loader(buf: memoryview | bytes) -> Callable[[], memoryview | bytes]:
    return lambda: buf


def check_shape(path: str, shape: object, limits: Limits, what: str) -> tuple[int, ...]:
    if not isinstance(shape, list | tuple) or len(shape) > limits.max_dims:
        raise FormatError(path, f"{what}: shape must be a list of at most {limits.max_dims} sizes")
    out = []
    for d in shape:
        if not isinstance(d, int) or isinstance(d, bool) or d < 0:
            raise FormatError(path, f"{what}: shape entry {d!r} is not a non-negative integer")
        out.append(d)
    if math.prod(out) > 1 << 48:
        raise LimitError(path, f"{what}: shape {out} has too many elements")
    return tuple(out)


def record_from_file(name: str, dtype: DType, shape: tuple[int, ...], path: str, offset: int,
                     *, member: str | None = None, strides: tuple[int, ...] | None = None,
                     element_offset: int = 0, byteorder: str = "<", length: int | None = None,
                     **attrs: object) -> TensorRecord:
    """A tensor whose storage is a byte range of a file on disk (memory-mapped on read)."""
    nbytes = dtype.nbytes(math.prod(shape)) if length is None else length

    def load() -> memoryview:
        m = memoryview(map_file(path))
        return m[offset:offset + nbytes]
    return TensorRecord(name, dtype, shape, ByteSpan(path, offset, nbytes, member), load,
                        strides, element_offset, byteorder, dict(attrs))


def record_from_buffer(name: str, dtype: DType, shape: tuple[int, ...], buf: memoryview | bytes,
                       path: str, *, member: str | None = None, offset: int = 0,
                       strides: tuple[int, ...] | None = None, element_offset: int = 0,
                       byteorder: str = "<", in_memory: bool = True,
                       **attrs: object) -> TensorRecord:
    """A tensor whose storage is already in memory (decompressed member, protobuf field)."""
    return TensorRecord(name, dtype, shape, ByteSpan(path, offset, len(buf), member, in_memory),
                        const_loader(buf), strides, element_offset, byteorder, dict(attrs))


def record_from_array(name: str, arr: np.ndarray, path: str, *, member: str | None = None,
                      **attrs: object) -> TensorRecord:
    """A tensor from a NumPy array a format library produced (h5py, onnx, protobuf)."""
    import numpy as np

    dt = from_numpy(arr.dtype)
    if dt is None:
        raise FormatError(path, f"tensor {name!r}: unsupported dtype {arr.dtype}", member=member)
    order = ">" if arr.dtype.byteorder == ">" else "<"
    arr = np.ascontiguousarray(arr).reshape(arr.shape)   # keeps 0-d arrays 0-d
    raw = arr.reshape(-1).view(np.uint8).data if arr.size else b""   # works for bfloat16 / float8
    return record_from_buffer(name, dt, tuple(arr.shape), raw, path, member=member, byteorder=order, **attrs)


def crash_guard(path: str, library: str, fn: Callable[[], object]) -> None:
    """Run `fn` once in a forked child first: a native library that crashes on a crafted file
    (libhdf5 segfaults on some corrupt attributes) kills the child, not assay, and becomes a
    one-line FormatError. The child's results are discarded; the caller then runs `fn` itself."""
    import os
    import signal

    if not hasattr(os, "fork") or os.environ.get("ASSAY_ISOLATED") == "1":
        return      # no fork, or already in a disposable worker whose crash the parent reports
    pid = os.fork()
    if pid == 0:  # child: never returns into the caller's stack
        code = 0
        try:
            fn()
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        raise FormatError(path, f"{library} crashed ({name}) while parsing this file; refusing it")


MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "zip"), (b"PK\x05\x06", "zip"), (b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"), (b"7z\xbc\xaf\x27\x1c", "7z"), (b"Rar!", "rar"), (b"GGUF", "gguf"),
    (b"\x93NUMPY", "npy"), (b"\x89HDF\r\n\x1a\n", "hdf5"), (b"\x7fELF", "elf"), (b"MZ", "pe"),
    (b"#!", "script"),
)


_BY_FIRST_BYTE: dict[int, tuple[tuple[bytes, str], ...]] = {
    b: tuple(m for m in MAGICS if m[0][0] == b) for b in {m[0][0] for m in MAGICS}}


def looks_like(head: bytes) -> str | None:
    """What a run of bytes appears to be, by its magic (a fact for rules, never a verdict)."""
    for magic, kind in _BY_FIRST_BYTE.get(head[0], ()) if head else ():
        if head.startswith(magic):
            return kind
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    if len(head) >= 263 and head[257:262] == b"ustar":
        return "tar"
    return None


def trailing(art: ModelArtifact, path: str, data: memoryview | bytes, offset: int, *,
             member: str | None = None, base: int = 0, what: str = "the end of the data") -> None:
    """Record bytes after the end of a format's content, with what they look like."""
    extra = len(data) - offset
    if extra <= 0:
        return
    kind = looks_like(bytes(data[offset:offset + 512]))
    art.observe("trailing.bytes", f"{extra} bytes after {what}" + (f" (look like {kind})" if kind else ""),
                path, member, offset=base + offset, length=extra, looks_like=kind)
    if kind == "pickle":
        hidden_pickle(art, data[offset:], path, member, base + offset)


def hidden_pickle(art: ModelArtifact, data: memoryview | bytes, path: str, member: str | None,
                  base: int) -> None:
    """Run a pickle found where none belongs through the emulated machine, so the scan can say
    what it would import and call. Its failure is a fact too, not an error of the host file."""
    from assay.formats.pickle.machine import run_pickle
    try:
        result = run_pickle(data, path, member=member, base=base)
    except AssayError as exc:
        art.observations.extend(exc.observations)
        return
    art.observations.extend(result.observations(path, member))


def archive_observations(art: ModelArtifact, z: ZipArchive, *, members: bool = True) -> None:
    """Record the archive's members (with what each starts with) and its oddities. Call after
    the reader has read what it parses, so CRC checks made on the way are included."""
    if members:
        for m in z.members:     # (members sharing their data, as in a bomb, are inflated once)
            art.observe("archive.member", m.name, z.path, member=m.name, offset=m.header_offset,
                        size=m.size, compressed_size=m.compressed_size, method=m.compress_type,
                        looks_like=looks_like(z.head(m, 512)))
    for o in z.oddities:
        art.observe("archive.oddity", o.text, z.path, member=o.member or None, code=o.code)
    if z.comment:
        kind = looks_like(z.comment[:512])
        art.observe("archive.comment", f"{len(z.comment)}-byte archive comment"
                    + (f" (looks like {kind})" if kind else ""), z.path, offset=z.end - len(z.comment),
                    length=len(z.comment), looks_like=kind)
        if kind == "pickle":
            hidden_pickle(art, z.comment, z.path, None, z.end - len(z.comment))
    if z.end:
        trailing(art, z.path, map_file(z.path), z.end, what="the zip's end record")


@contextmanager
def keeping(art: ModelArtifact) -> Iterator[None]:
    """If reading fails, the error carries the observations recorded so far (for scan)."""
    try:
        yield
    except AssayError as exc:
        seen = {id(o) for o in exc.observations}
        exc.observations[:0] = [o for o in art.observations if id(o) not in seen]
        raise
