"""Walk zip archives under limits and record what is odd about them.

The central directory is read from the mapped file as the zip format (PKWARE's APPNOTE) lays
it out, and as Python's `zipfile` reads it: the end record found from the end of the file,
ZIP64 records, data prepended to the archive, names cut at a NUL. Every member's local header
is then read back so stored members can be memory-mapped in place and local/central
disagreements recorded. Compressed members are inflated in bounded chunks (LZMA through
`zipfile`, the one case it is imported for)."""

from __future__ import annotations

import posixpath
import struct
import zlib
from dataclasses import dataclass, field
from typing import NamedTuple

from assay.errors import FormatError, LimitError
from assay.limits import Limits
from assay.model.tensor import map_file

# zip compression methods
ZIP_STORED, ZIP_DEFLATED, ZIP_BZIP2, ZIP_LZMA = 0, 8, 12, 14
_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_MAGIC = b"PK\x03\x04"
# central directory entry: magic, made-by, needed, flags, method, time, date, crc, compressed
# size, size, name/extra/comment lengths, disk, internal and external attributes, offset
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_CENTRAL_MAGIC = b"PK\x01\x02"
_EOCD = struct.Struct("<4sHHHHIIH")      # magic, disks, entries, directory size and offset, comment
_EOCD_MAGIC = b"PK\x05\x06"
_LOCATOR = struct.Struct("<4sIQI")       # ZIP64 locator: magic, disk, record offset, disks
_EOCD64 = struct.Struct("<4sQHHIIQQQQ")   # ZIP64 end record
_U16, _U64 = struct.Struct("<HH"), struct.Struct("<Q")
MAX_VERSION_NEEDED = 63                  # 6.3, the newest APPNOTE a reader is expected to know


class Oddity(NamedTuple):
    """Something unusual about an archive: a fact for the scan rules, not a verdict.

    Codes: name-mismatch, method-mismatch, duplicate, traversal, encrypted, ratio, overlap,
    crc, prefix."""

    member: str
    code: str
    text: str


class Member(NamedTuple):
    """One zip member: its names (central and local header), method, sizes, CRC and offsets.
    (A named tuple: an archive of many thousand members builds one per member.)"""

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
    return head[:4] in (_LOCAL_MAGIC, _EOCD_MAGIC)


class _Unreadable(Exception):
    """The directory cannot be read: why, for `not a readable zip archive: ...`."""


# a central directory entry as read: name, flags, method, CRC, compressed size, size, and the
# local header's offset (sizes and offset after ZIP64 extra fields, offset after prepended data)
_Entry = tuple[str, int, int, int, int, int, int]


def _directory(mapped: memoryview | bytes) -> list[_Entry]:
    """The central directory's entries, offsets corrected for data prepended to the archive."""
    total = len(mapped)
    if total < _EOCD.size:
        raise _Unreadable("File is not a zip file")
    end = total - _EOCD.size
    if bytes(mapped[end:end + 4]) != _EOCD_MAGIC or bytes(mapped[total - 2:]) != b"\0\0":
        lo = max(total - (1 << 16) - _EOCD.size, 0)    # a comment of up to 64 KiB follows it
        end = bytes(mapped[lo:]).rfind(_EOCD_MAGIC)
        if end < 0 or lo + end + _EOCD.size > total:
            raise _Unreadable("File is not a zip file")
        end += lo
    _m, _disk, _disk_cd, _n_disk, _n, cd_size, cd_offset, _clen = _EOCD.unpack_from(mapped, end)
    concat = end - cd_size - cd_offset
    loc = end - _LOCATOR.size
    if loc >= 0 and bytes(mapped[loc:loc + 4]) == b"PK\x06\x07":
        _m, disk, _off, disks = _LOCATOR.unpack_from(mapped, loc)
        if disk != 0 or disks > 1:
            raise _Unreadable("zipfiles that span multiple disks are not supported")
        rec = loc - _EOCD64.size
        if rec >= 0 and bytes(mapped[rec:rec + 4]) == b"PK\x06\x06":
            *_, cd_size, cd_offset = _EOCD64.unpack_from(mapped, rec)
            concat = end - cd_size - cd_offset - _EOCD64.size - _LOCATOR.size
    start = cd_offset + concat
    if start < 0:
        raise _Unreadable("Bad offset for central directory")
    stop = min(start + cd_size, total)
    out: list[_Entry] = []
    pos = start
    unpack = _CENTRAL.unpack_from
    while pos - start < cd_size:
        if pos + _CENTRAL.size > stop:
            raise _Unreadable("Truncated central directory")
        (magic, _made, needed, flags, method, _t, _d, crc, csize, usize, nlen, xlen, clen,
         _disk, _iattr, _eattr, offset) = unpack(mapped, pos)
        if magic != _CENTRAL_MAGIC:
            raise _Unreadable("Bad magic number for central directory")
        if needed & 0xFF > MAX_VERSION_NEEDED:     # low byte: the version; high byte: the system
            raise _Unreadable(f"zip file version {(needed & 0xFF) / 10:.1f}")
        at = pos + _CENTRAL.size                 # names and extras end where the directory does
        name_end, extra_end = min(at + nlen, stop), min(at + nlen + xlen, stop)
        raw = bytes(mapped[at:name_end])
        try:
            name = raw.decode("utf-8" if flags & 0x800 else "cp437")
        except UnicodeDecodeError as exc:
            raise _Unreadable(f"member name at offset {pos}: {exc}") from None
        cut = name.find("\0")      # a NUL ends the name (a trick to show one name, store another)
        if cut >= 0:
            name = name[:cut]
        if xlen:
            usize, csize, offset = _extra(bytes(mapped[name_end:extra_end]), usize, csize, offset)
        out.append((name, flags, method, crc, csize, usize, offset + concat))
        pos = at + nlen + xlen + clen
    return out


def _extra(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    """Check an entry's extra fields and read the ZIP64 one (id 1): sizes and offset that do
    not fit in 32 bits, each that reads 0xFFFFFFFF in the entry, in this order, as 8 bytes."""
    while len(extra) >= 4:
        kind, n = _U16.unpack_from(extra)
        if n + 4 > len(extra):
            raise _Unreadable(f"Corrupt extra field {kind:04x} (size={n})")
        if kind == 1:
            values, i = [usize, csize, offset], 4
            for k, what in enumerate(("File size", "Compress size", "Header offset")):
                if values[k] == 0xFFFFFFFF:
                    if i + 8 > n + 4:
                        raise _Unreadable(f"Corrupt zip64 extra field. {what} not found.")
                    (values[k],) = _U64.unpack_from(extra, i)
                    i += 8
            usize, csize, offset = values
        extra = extra[n + 4:]
    return usize, csize, offset


def open_zip(path: str, limits: Limits) -> ZipArchive:
    """Parse a zip's directory and local headers; raise FormatError for what cannot be read."""
    try:
        mapped = map_file(path)
        infos = _directory(mapped)
    except _Unreadable as exc:
        raise FormatError(path, f"not a readable zip archive: {exc}") from None
    except (OSError, ValueError) as exc:
        raise FormatError(path, f"not a readable zip archive: {exc}") from None
    if len(infos) > limits.max_archive_members:
        raise LimitError(path, f"archive has {len(infos)} members, over the limit of "
                         f"{limits.max_archive_members}")
    total = len(mapped)
    members: list[Member] = []
    odd = _Tally()
    seen: set[str] = set()
    spans: list[tuple[int, int, str]] = []
    ratio = limits.max_compression_ratio
    for name, cflags, cmethod, ccrc, csize, usize, off in infos:
        if off < 0 or off + _LOCAL.size > total:
            raise FormatError(path, f"local header at {off} lies outside the file", member=name)
        (magic, _ver, _flags, method, _t, _d, _crc, _csize, _size, nlen, xlen) = _LOCAL.unpack_from(
            mapped, off)
        if magic != _LOCAL_MAGIC:
            raise FormatError(path, f"no local header signature at offset {off}", member=name)
        local_name = bytes(mapped[off + 30:off + 30 + nlen]).decode("utf-8", "replace")
        data_off = off + 30 + nlen + xlen
        if data_off + csize > total:
            raise FormatError(path, f"member data ({csize} bytes at {data_off}) "
                              "runs past the end of the file", member=name)
        if usize > limits.max_member_bytes:
            raise LimitError(path, f"member declares {usize} bytes", member=name)
        if local_name != name and odd.wanted("name-mismatch"):
            odd.add(name, "name-mismatch", f"local header names it {local_name!r}")
        if method != cmethod and odd.wanted("method-mismatch"):
            odd.add(name, "method-mismatch", "local and central headers disagree on compression")
        if name in seen and odd.wanted("duplicate"):
            odd.add(name, "duplicate", "duplicate member name")
        seen.add(name)
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in name:
            norm = posixpath.normpath(name.replace("\\", "/"))
            if (name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":")
                    or norm.startswith("../") or norm == "..") and odd.wanted("traversal"):
                odd.add(name, "traversal", "path leaves the extraction folder")
        if cflags & 0x1 and odd.wanted("encrypted"):
            odd.add(name, "encrypted", "member is encrypted")
        if cmethod != ZIP_STORED and csize and usize / csize > ratio and odd.wanted("ratio"):
            odd.add(name, "ratio", f"compression ratio {usize // csize}:1")
        spans.append((data_off, data_off + csize, name))
        members.append(Member(name, local_name, cmethod, csize, usize, ccrc, cflags, off, data_off))
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




def _end_record(mapped: memoryview | bytes) -> tuple[int, bytes]:
    """Where the end-of-central-directory record ends, and the archive comment. zipfile finds
    the record by searching backwards; bytes after it (beyond the declared comment) are data
    the loader never looks at: a place to hide a second file."""
    total = len(mapped)
    lo = max(0, total - (1 << 16) - _EOCD.size - (1 << 20))
    tail = bytes(mapped[lo:])
    pos = tail.rfind(_EOCD_MAGIC)
    while pos >= 0:
        if pos + _EOCD.size <= len(tail):
            *_, clen = _EOCD.unpack_from(tail, pos)
            end = pos + _EOCD.size + clen
            if end <= len(tail):
                return lo + end, tail[pos + _EOCD.size:end]
        pos = tail.rfind(_EOCD_MAGIC, 0, pos)
    return total, b""
