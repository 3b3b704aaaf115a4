"""Walk zip archives under limits and record what is odd about them.

The central directory is parsed by `zipfile`; every member's local header is then read back
from the mapped file so stored members can be memory-mapped in place and local/central
disagreements recorded. Compressed members are inflated in bounded chunks."""

from __future__ import annotations

import posixpath
import struct
import zlib
from dataclasses import dataclass, field

from assay.errors import FormatError, LimitError
from assay.limits import Limits
from assay.model.tensor import map_file

# zip compression methods (zipfile is imported only when an archive is opened)
ZIP_STORED, ZIP_DEFLATED, ZIP_BZIP2, ZIP_LZMA = 0, 8, 12, 14
_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class Oddity:
    """Something unusual about an archive: a fact for the scan rules, not a verdict.

    Codes: name-mismatch, method-mismatch, duplicate, traversal, encrypted, ratio, overlap,
    crc, prefix."""

    member: str
    code: str
    text: str


@dataclass(frozen=True)
class Member:
    """One zip member: its names (central and local header), method, sizes, CRC and offsets."""

    name: str
    local_name: str
    compress_type: int
    compressed_size: int
    size: int
    crc: int
    flags: int
    header_offset: int
    data_offset: int

    @property
    def stored(self) -> bool:
        return self.compress_type == ZIP_STORED and not self.flags & 0x1


@dataclass
class ZipArchive:
    """A zip read from its headers: members, oddities, the end record; member data on demand."""

    path: str
    members: list[Member]
    oddities: list[Oddity] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    prefix_bytes: int = 0
    end: int = 0                 # offset just past the end-of-central-directory record
    comment: bytes = b""         # the archive comment (EOCD)
    _heads: dict[tuple[int, int, int, int], bytes] = field(default_factory=dict, repr=False)
    _map: memoryview | None = field(default=None, repr=False)

    def names(self) -> list[str]:
        return [m.name for m in self.members]

    def get(self, name: str) -> Member | None:
        for m in self.members:
            if m.name == name:
                return m
        return None

    def data(self, m: Member, verify: bool = False) -> memoryview | bytes:
        """The member's bytes: a slice of the file map when stored, else inflated under limits.

        Inflated members are always checked against their CRC-32; stored ones when `verify`
        (readers verify what they parse, not gigabytes of tensor data). A mismatch is recorded
        as an oddity, as loaders that skip the check would still read the bytes."""
        mapped = map_file(self.path)
        if m.stored:
            out = memoryview(mapped)[m.data_offset:m.data_offset + m.size]
            if verify:
                self._check_crc(m, out)
            return out
        if m.flags & 0x1:
            raise FormatError(self.path, "member is encrypted", member=m.name)
        if m.size > self.limits.max_decompressed_bytes:
            raise LimitError(self.path, f"member inflates to {m.size} bytes, over the limit "
                             f"of {self.limits.max_decompressed_bytes}", member=m.name)
        raw = memoryview(mapped)[m.data_offset:m.data_offset + m.compressed_size]
        out = _inflate(self.path, m, raw, self.limits)
        self._check_crc(m, out)
        return out

    def _check_crc(self, m: Member, data: memoryview | bytes) -> None:
        if zlib.crc32(data) != m.crc and not any(o.member == m.name and o.code == "crc"
                                                 for o in self.oddities):
            self.oddities.append(Oddity(m.name, "crc", "CRC-32 does not match the header"))

    def head(self, m: Member, n: int = 16) -> bytes:
        """The first bytes of a member (inflating only a prefix), for recognising nested content.
        Remembered per member: readers and observations ask for the same heads."""
        if n > HEAD_BYTES:
            return self._head(m, n)
        # by where the data lies: members that share their data (a bomb of overlapping
        # entries) are inflated once, and the short and the long head of one member too
        key = (m.data_offset, m.compressed_size, m.compress_type, m.flags & 0x1)
        cached = self._heads.get(key)
        if cached is None:
            cached = self._heads[key] = self._head(m, HEAD_BYTES)
        return cached[:n]

    def _head(self, m: Member, n: int) -> bytes:
        if self._map is None:
            self._map = memoryview(map_file(self.path))
        raw = self._map[m.data_offset:m.data_offset + min(m.compressed_size, 1 << 16)]
        if m.stored:
            return bytes(raw[:n])
        if m.compress_type == ZIP_DEFLATED and not m.flags & 0x1:
            try:
                return zlib.decompressobj(-15).decompress(raw, n)
            except zlib.error:
                return b""
        return b""


def _inflate(path: str, m: Member, raw: memoryview, limits: Limits) -> bytes:
    cap = min(limits.max_decompressed_bytes,
              max(m.size, 0) + 1, max(len(raw), 1) * limits.max_compression_ratio + 1024)
    if m.compress_type == ZIP_DEFLATED:
        d = zlib.decompressobj(-15)
    elif m.compress_type == ZIP_BZIP2:
        import bz2
        d = bz2.BZ2Decompressor()  # type: ignore[assignment]
    elif m.compress_type == ZIP_LZMA:
        # zip's LZMA wraps a properties header; let zipfile do it on a bounded budget
        return _zipfile_read(path, m, cap, limits)
    else:
        raise FormatError(path, f"unsupported compression method {m.compress_type}", member=m.name)
    out = bytearray()
    step = 1 << 20
    pos = 0
    while pos < len(raw) and len(out) < cap:
        chunk = raw[pos:pos + step]
        pos += len(chunk)
        out += d.decompress(chunk, cap - len(out)) if m.compress_type == ZIP_DEFLATED \
            else d.decompress(bytes(chunk), cap - len(out))
    if len(out) >= cap and len(out) > m.size:
        raise LimitError(path, f"member inflates past its declared size of {m.size} bytes "
                         f"(ratio or size limit)", member=m.name)
    if len(out) != m.size:
        raise FormatError(path, f"member inflates to {len(out)} bytes, header says {m.size}",
                          member=m.name)
    return bytes(out)


def _zipfile_read(path: str, m: Member, cap: int, limits: Limits) -> bytes:
    import zipfile
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(m.name)
        with zf.open(info) as fh:
            out = fh.read(cap)
    if len(out) >= cap and len(out) > m.size:
        raise LimitError(path, "member inflates past its declared size", member=m.name)
    return out


def is_zip(head: bytes) -> bool:
    return head[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def open_zip(path: str, limits: Limits) -> ZipArchive:
    """Parse a zip's directory and local headers; raise FormatError for what cannot be read."""
    import zipfile
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as exc:
        raise FormatError(path, f"not a readable zip archive: {exc}") from None
    with zf:
        infos = zf.infolist()
    if len(infos) > limits.max_archive_members:
        raise LimitError(path, f"archive has {len(infos)} members, over the limit of "
                         f"{limits.max_archive_members}")
    mapped = map_file(path)
    total = len(mapped)
    members: list[Member] = []
    odd = _Tally()
    seen: set[str] = set()
    spans: list[tuple[int, int, str]] = []
    ratio = limits.max_compression_ratio
    for info in infos:
        name = info.filename
        off = info.header_offset
        if off < 0 or off + _LOCAL.size > total:
            raise FormatError(path, f"local header at {off} lies outside the file", member=name)
        (magic, _ver, flags, method, _t, _d, crc, csize, usize, nlen, xlen) = _LOCAL.unpack_from(
            mapped, off)
        if magic != _LOCAL_MAGIC:
            raise FormatError(path, f"no local header signature at offset {off}", member=name)
        local_name = bytes(mapped[off + 30:off + 30 + nlen]).decode("utf-8", "replace")
        data_off = off + 30 + nlen + xlen
        if data_off + info.compress_size > total:
            raise FormatError(path, f"member data ({info.compress_size} bytes at {data_off}) "
                              "runs past the end of the file", member=name)
        if info.file_size > limits.max_member_bytes:
            raise LimitError(path, f"member declares {info.file_size} bytes", member=name)
        if local_name != name and odd.wanted("name-mismatch"):
            odd.add(name, "name-mismatch", f"local header names it {local_name!r}")
        if method != info.compress_type and odd.wanted("method-mismatch"):
            odd.add(name, "method-mismatch", "local and central headers disagree on compression")
        if name in seen and odd.wanted("duplicate"):
            odd.add(name, "duplicate", "duplicate member name")
        seen.add(name)
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in name:
            norm = posixpath.normpath(name.replace("\\", "/"))
            if (name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":")
                    or norm.startswith("../") or norm == "..") and odd.wanted("traversal"):
                odd.add(name, "traversal", "path leaves the extraction folder")
        if info.flag_bits & 0x1 and odd.wanted("encrypted"):
            odd.add(name, "encrypted", "member is encrypted")
        if info.compress_type != ZIP_STORED and info.compress_size and \
                info.file_size / info.compress_size > ratio and odd.wanted("ratio"):
            odd.add(name, "ratio", f"compression ratio {info.file_size // info.compress_size}:1")
        spans.append((data_off, data_off + info.compress_size, name))
        members.append(Member(name, local_name, info.compress_type, info.compress_size,
                              info.file_size, info.CRC, info.flag_bits, off, data_off))
    spans.sort()
    for (s1, e1, n1), (s2, _e2, n2) in zip(spans, spans[1:]):
        if (s2 < e1 or s2 == s1) and odd.wanted("overlap"):
            odd.add(n2, "overlap", f"data overlaps member {n1!r}")
    declared = sum(m.size for m in members)
    if (declared > limits.max_decompressed_bytes or declared > max(total, 1) * ratio) and \
            odd.wanted("ratio"):
        odd.add("", "ratio", f"members declare {declared} bytes in a {total}-byte archive")
    first = min((m.header_offset for m in members), default=0)
    if first and odd.wanted("prefix"):
        odd.add("", "prefix", f"{first} bytes precede the first member")
    z = ZipArchive(path, members, odd.listed(), limits, prefix_bytes=first)
    z.end, z.comment = _end_record(mapped)
    for m in members:      # small stored members are cheap to check whatever reads them later
        if m.stored and m.size <= SMALL_MEMBER:
            z._check_crc(m, memoryview(mapped)[m.data_offset:m.data_offset + m.size])
    return z


SMALL_MEMBER = 1 << 20
HEAD_BYTES = 512             # the head of a member that is inflated and kept
ODDITIES_PER_CODE = 100      # a crafted archive of thousands of members is one problem per code


class _Tally:
    """Oddities as they are found, keeping the first ODDITIES_PER_CODE of each code and
    counting the rest (a crafted archive of thousands of members is one problem per code);
    callers ask `wanted(code)` before building a message."""

    def __init__(self) -> None:
        self.kept: list[Oddity] = []
        self.counts: dict[str, int] = {}
        self.extra: dict[str, int] = {}      # codes over the bound, in the order they went over

    def wanted(self, code: str) -> bool:
        n = self.counts[code] = self.counts.get(code, 0) + 1
        if n <= ODDITIES_PER_CODE:
            return True
        self.extra[code] = n - ODDITIES_PER_CODE
        return False

    def add(self, member: str, code: str, text: str) -> None:
        self.kept.append(Oddity(member, code, text))

    def listed(self) -> list[Oddity]:
        return self.kept + [Oddity("", code, f"{n} more members with the same problem ({code}), "
                                   "not listed") for code, n in self.extra.items()]


_EOCD = struct.Struct("<4sHHHHIIH")


def _end_record(mapped: memoryview | bytes) -> tuple[int, bytes]:
    """Where the end-of-central-directory record ends, and the archive comment. zipfile finds
    the record by searching backwards; bytes after it (beyond the declared comment) are data
    the loader never looks at: a place to hide a second file."""
    total = len(mapped)
    lo = max(0, total - (1 << 16) - _EOCD.size - (1 << 20))
    tail = bytes(mapped[lo:])
    pos = tail.rfind(b"PK\x05\x06")
    while pos >= 0:
        if pos + _EOCD.size <= len(tail):
            *_, clen = _EOCD.unpack_from(tail, pos)
            end = pos + _EOCD.size + clen
            if end <= len(tail):
                return lo + end, tail[pos + _EOCD.size:end]
        pos = tail.rfind(b"PK\x05\x06", 0, pos)
    return total, b""
