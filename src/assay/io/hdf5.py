"""HDF5 structure read in place from the published file format: groups, links, attributes and
where each dataset keeps its bytes. Data is never decoded here.

What is read (HDF5 File Format Specification, version 3): superblocks 0-3; object headers of
versions 1 and 2 with their continuation blocks; old-style groups (symbol-table message, version 1
B-tree of group nodes, symbol-table nodes and the local heap holding the names) and new-style
groups whose links are kept in the object header (link messages: hard, soft and external);
compact attributes (attribute messages 1-3); the dataspace, datatype, data layout (compact,
contiguous, chunked), filter pipeline and external-files messages; variable-length strings in
global heap collections.

Valid files using what this module does not read raise `NotRead`: dense link or attribute
storage (fractal heaps and version 2 B-trees, written once a group or object outgrows its
compact storage with `libver="latest"`), shared object-header messages, a superblock extension,
virtual datasets, VAX floats. The caller then reads the file with the HDF5 library instead.
Bytes that break the format (an address outside the buffer, a bad signature, a loop of
continuation blocks or B-tree nodes, a count that cannot fit) raise `Malformed` with the byte
offset. Every walk is bounded by the buffer: nothing is allocated from a count that the
remaining bytes could not hold, and each block is visited at most once per object.

Checksums of version 2 structures are not verified: a changed byte is read as written.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

MAGIC = b"\x89HDF\r\n\x1a\n"
SUPERBLOCK_AT = (0, 512, 1024, 2048)

# object header message types (spec section IV.A.2)
NIL, DATASPACE, LINK_INFO, DATATYPE, FILL_OLD, FILL, LINK, EXTERNAL, LAYOUT = 0, 1, 2, 3, 4, 5, 6, 7, 8
FILTERS, ATTRIBUTE, CONTINUATION, SYMBOL_TABLE, ATTRIBUTE_INFO = 0x0B, 0x0C, 0x10, 0x11, 0x15

# datatype classes
FIXED, FLOAT, TIME, STRING, BITFIELD, OPAQUE, COMPOUND, REFERENCE, ENUM, VLEN, ARRAY = range(11)

MAX_CHUNKS = 4096            # object-header continuation blocks per object
MAX_BTREE_DEPTH = 64
# IEEE layouts libhdf5 writes for half, single and double precision:
# size -> (precision, exponent location, exponent size, mantissa location, mantissa size, bias)
IEEE = {2: (16, 10, 5, 0, 10, 15), 4: (32, 23, 8, 0, 23, 127), 8: (64, 52, 11, 0, 52, 1023)}


Message = tuple[int, int, memoryview, int]     # type, flags, data, offset of the data


class Malformed(ValueError):
    """The bytes break the HDF5 format at `offset`."""

    def __init__(self, reason: str, offset: int | None = None) -> None:
        self.reason, self.offset = reason, offset
        super().__init__(reason if offset is None else f"{reason} (at byte {offset})")


class NotRead(ValueError):
    """A valid HDF5 feature this module does not read; the HDF5 library can."""


class Datatype(NamedTuple):
    """An HDF5 datatype, as far as the walk needs it."""

    cls: int
    size: int
    order: str = "<"                 # "<" or ">" ("|" for one-byte and non-numeric types)
    signed: bool = False
    standard: bool = True            # the plain IEEE / two's-complement layout of its size
    tag: str | None = None           # opaque types
    strpad: int = 0                  # strings: 0 null-terminated, 1 null-padded, 2 space-padded
    vlen_string: bool = False
    is_bool: bool = False            # h5py's bool: an int8 enum of FALSE = 0, TRUE = 1

    def numpy_name(self) -> str:
        """How NumPy (through h5py) names this type; used in messages only."""
        if self.vlen_string or self.cls == VLEN:
            return "object"
        if self.cls == STRING:
            return f"|S{self.size}"
        if self.cls == OPAQUE:
            return f"|V{self.size}"
        if self.is_bool:
            return "bool"
        kind = {FIXED: "i" if self.signed else "u", FLOAT: "f"}.get(self.cls)
        if kind is None:
            return f"HDF5 class {self.cls}"
        return f"{'|' if self.size == 1 else self.order}{kind}{self.size}"


class Layout(NamedTuple):
    """Where a dataset keeps its bytes."""

    kind: str                        # "compact" | "contiguous" | "chunked"
    address: int | None = None       # absolute offset in the buffer (None: not allocated)
    size: int = 0                    # stored bytes (contiguous, compact)
    data: memoryview | None = None   # compact data


class Link(NamedTuple):
    """One link of a group: hard (to an object header), soft or external."""

    name: str
    kind: str                        # "hard" | "soft" | "external"
    address: int | None = None       # hard links: the object header
    target_file: str | None = None   # external links
    target_path: str | None = None   # soft and external links


@dataclass
class Attribute:
    """One attribute: name, type, shape and the bytes of its value."""

    name: str
    dtype: Datatype
    shape: tuple[int, ...] | None    # None: a null dataspace (h5py.Empty)
    data: memoryview

    @property
    def count(self) -> int:
        n = 1
        for d in self.shape or ():
            n *= d
        return n


@dataclass
class Object:
    """One object header: a group, a dataset or something else (a committed datatype)."""

    file: Hdf5File
    address: int
    messages: list[Message] = field(default_factory=list)

    def of(self, mtype: int) -> list[tuple[memoryview, int]]:
        return [(d, off) for t, _f, d, off in self.messages if t == mtype]

    def first(self, mtype: int) -> tuple[memoryview, int] | None:
        found = self.of(mtype)
        return found[0] if found else None

    @property
    def kind(self) -> str:
        types = {t for t, *_ in self.messages}
        if LAYOUT in types:
            return "dataset"
        if types & {SYMBOL_TABLE, LINK, LINK_INFO}:
            return "group"
        return "other"

    # attributes

    @cached_property
    def attrs(self) -> dict[str, Attribute]:
        for data, off in self.of(ATTRIBUTE_INFO):
            _attribute_info(self.file, data, off)
        out: dict[str, Attribute] = {}
        for data, off in self.of(ATTRIBUTE):
            a = _attribute(self.file, data, off)
            out.setdefault(a.name, a)
        return out

    # groups

    def links(self) -> list[Link]:
        """The group's links in name order (as the HDF5 library lists them)."""
        f = self.file
        out: list[Link] = []
        st = self.first(SYMBOL_TABLE)
        if st is not None:
            data, off = st
            btree, heap = f.addr_at(data, 0, off), f.addr_at(data, f.osize, off)
            out.extend(f.symbol_table(btree, heap))
        for data, off in self.of(LINK_INFO):
            _link_info(f, data, off)
        for data, off in self.of(LINK):
            out.append(_link(f, data, off))
        return sorted(out, key=lambda lk: lk.name.encode("utf-8", "surrogateescape"))

    # datasets

    def required(self, mtype: int, what: str) -> tuple[memoryview, int]:
        m = self.first(mtype)
        if m is None:
            raise Malformed(f"dataset has no {what} message", self.address)
        return m

    @cached_property
    def shape(self) -> tuple[int, ...] | None:
        return _dataspace(self.file, *self.required(DATASPACE, "dataspace"))[0]

    @cached_property
    def dtype(self) -> Datatype:
        return _datatype(self.file, *self.required(DATATYPE, "datatype"))[0]

    @cached_property
    def layout(self) -> Layout:
        return _layout(self.file, *self.required(LAYOUT, "data layout"))

    @property
    def filters(self) -> int:
        m = self.first(FILTERS)
        if m is None:
            return 0
        data, off = m
        if len(data) < 2:
            raise Malformed("filter pipeline message too short", off)
        return data[1]

    def external_files(self) -> list[str]:
        m = self.first(EXTERNAL)
        return [] if m is None else _external(self.file, *m)


class Superblock(NamedTuple):
    """Where the superblock is, its version, its sizes of offsets and lengths, and where its
    address fields start (base address, then free-space or extension, end of file, ...)."""

    at: int
    version: int
    osize: int
    lsize: int
    fields: int


def superblock(buf: memoryview | bytes) -> Superblock:
    """The superblock at 0, 512, 1024 or 2048: versions 0 and 1 keep their address fields after
    24 or 28 bytes of fixed fields, versions 2 and 3 after 12."""
    for at in SUPERBLOCK_AT:
        if bytes(buf[at:at + 8]) == MAGIC and len(buf) >= at + 16:
            break
    else:
        raise Malformed("no HDF5 signature at 0, 512, 1024 or 2048")
    version = buf[at + 8]
    if version in (0, 1):
        osize, lsize, fields = buf[at + 13], buf[at + 14], at + (24 if version == 0 else 28)
    elif version in (2, 3):
        osize, lsize, fields = buf[at + 9], buf[at + 10], at + 12
    else:
        raise NotRead(f"superblock version {version}")
    if osize not in (2, 4, 8):
        raise Malformed(f"superblock size of offsets {osize}", at)
    return Superblock(at, version, osize, lsize, fields)


def end_address(buf: memoryview | bytes) -> int | None:
    """The superblock's end-of-file address as written (libhdf5 counts a user block in it,
    checked with h5py), or None when the superblock cannot be read."""
    try:
        sb = superblock(buf)
    except (Malformed, NotRead):
        return None
    at = sb.fields + 2 * sb.osize
    if len(buf) < at + sb.osize:
        return None
    return int.from_bytes(buf[at:at + sb.osize], "little")


class Hdf5File:
    """The structure of one HDF5 file held in `buf` (a memory map or bytes)."""

    def __init__(self, buf: memoryview | bytes) -> None:
        self.buf = memoryview(buf)
        self.size = len(self.buf)
        self._objects: dict[int, Object] = {}
        self._heaps: dict[int, tuple[int, int]] = {}
        self._collections: dict[int, dict[int, memoryview]] = {}
        self.root_address = self._superblock()

    # raw reads

    def take(self, at: int, n: int, what: str) -> memoryview:
        if at < 0 or n < 0 or at + n > self.size:
            raise Malformed(f"{what} ({n} bytes at {at}) runs past the end of the "
                            f"{self.size}-byte file", at)
        return self.buf[at:at + n]

    def uint(self, at: int, n: int, what: str) -> int:
        return int.from_bytes(self.take(at, n, what), "little")

    def undefined(self, raw: int, width: int) -> bool:
        return raw == (1 << (8 * width)) - 1

    def addr_at(self, data: memoryview, at: int, off: int) -> int | None:
        """An address field of `data` (at `at`) as an offset in the buffer; None if undefined."""
        if at + self.osize > len(data):
            raise Malformed("address field runs past its message", off + at)
        raw = int.from_bytes(data[at:at + self.osize], "little")
        return None if self.undefined(raw, self.osize) else raw + self.base

    def length_at(self, data: memoryview, at: int, off: int) -> int:
        if at + self.lsize > len(data):
            raise Malformed("length field runs past its message", off + at)
        return int.from_bytes(data[at:at + self.lsize], "little")

    # superblock

    def _superblock(self) -> int:
        sb = superblock(self.buf)
        self.osize, self.lsize = sb.osize, sb.lsize
        if self.lsize not in (2, 4, 8):
            raise Malformed(f"superblock size of lengths {self.lsize}", sb.at)
        o = self.osize
        base = self.uint(sb.fields, o, "base address")
        self.base = 0 if self.undefined(base, o) else base
        if sb.version >= 2:
            ext = self.uint(sb.fields + o, o, "superblock extension address")
            if not self.undefined(ext, o):
                raise NotRead("a superblock extension")
            root = self.uint(sb.fields + 3 * o, o, "root group address")
            return root + self.base
        entry = sb.fields + 4 * o           # base, free space, end of file, driver info
        return self.uint(entry + o, o, "root group symbol table entry") + self.base

    # object headers

    def object(self, address: int) -> Object:
        obj = self._objects.get(address)
        if obj is None:
            obj = Object(self, address)
            for item in self._messages(address):
                obj.messages.append(item)
            self._objects[address] = obj
        return obj

    def root(self) -> Object:
        return self.object(self.root_address)

    def _messages(self, address: int) -> Iterator[Message]:
        head = self.take(address, 4, "object header")
        if bytes(head) == b"OHDR":
            yield from self._messages_v2(address)
            return
        if head[0] != 1:
            raise Malformed(f"object header version {head[0]}", address)
        size = self.uint(address + 8, 4, "object header size")
        chunks: list[tuple[int, int]] = [(address + 16, size)]
        seen: set[int] = set()
        while chunks:
            start, length = chunks.pop(0)
            if start in seen or len(seen) >= MAX_CHUNKS:
                raise Malformed("object header continuation blocks loop", start)
            seen.add(start)
            self.take(start, length, "object header block")
            at, end = start, start + length
            while at + 8 <= end:
                mtype = self.uint(at, 2, "message type")
                msize = self.uint(at + 2, 2, "message size")
                flags = self.buf[at + 4]
                data = self.take(at + 8, msize, "header message")
                if at + 8 + msize > end:
                    raise Malformed("header message runs past its block", at)
                if mtype == CONTINUATION:
                    chunks.append(self._continuation(data, at + 8))
                elif mtype != NIL:
                    yield self._checked(mtype, flags, data, at + 8)
                at += 8 + msize

    def _messages_v2(self, address: int) -> Iterator[Message]:
        version = self.uint(address + 4, 1, "object header")
        flags = self.uint(address + 5, 1, "object header")
        if version != 2:
            raise Malformed(f"object header version {version}", address)
        at = address + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        width = 1 << (flags & 3)
        size = self.uint(at, width, "object header size")
        order = 2 if flags & 0x04 else 0
        chunks: list[tuple[int, int]] = [(at + width, size)]
        seen: set[int] = set()
        first = True
        while chunks:
            start, length = chunks.pop(0)
            if start in seen or len(seen) >= MAX_CHUNKS:
                raise Malformed("object header continuation blocks loop", start)
            seen.add(start)
            if not first:
                if bytes(self.take(start, 4, "continuation block")) != b"OCHK":
                    raise Malformed("continuation block without OCHK signature", start)
                start, length = start + 4, length - 8
            first = False
            self.take(start, max(length, 0), "object header block")
            at, end = start, start + length
            while at + 4 + order <= end:
                mtype = self.buf[at]
                msize = self.uint(at + 1, 2, "message size")
                mflags = self.buf[at + 3]
                body = at + 4 + order
                if body + msize > end:
                    raise Malformed("header message runs past its block", at)
                data = self.buf[body:body + msize]
                if mtype == CONTINUATION:
                    chunks.append(self._continuation(data, body))
                elif mtype != NIL:
                    yield self._checked(mtype, mflags, data, body)
                at = body + msize

    def _continuation(self, data: memoryview, off: int) -> tuple[int, int]:
        address = self.addr_at(data, 0, off)
        length = self.length_at(data, self.osize, off)
        if address is None:
            raise Malformed("continuation message without an address", off)
        return address, length

    def _checked(self, mtype: int, flags: int, data: memoryview, off: int) -> Message:
        if flags & 0x02 and mtype in (DATASPACE, DATATYPE, FILL, LAYOUT, FILTERS, ATTRIBUTE, EXTERNAL):
            raise NotRead("shared object header messages")
        return mtype, flags, data, off

    # old-style groups

    def symbol_table(self, btree: int | None, heap: int | None) -> list[Link]:
        if btree is None or heap is None:
            raise Malformed("symbol table message without B-tree or heap address")
        seg, seg_size = self._local_heap(heap)
        out: list[Link] = []
        seen: set[int] = set()
        self._btree(btree, seg, seg_size, out, seen, 0)
        return out

    def _local_heap(self, address: int) -> tuple[int, int]:
        got = self._heaps.get(address)
        if got is None:
            if bytes(self.take(address, 4, "local heap")) != b"HEAP":
                raise Malformed("local heap without HEAP signature", address)
            at = address + 8
            seg_size = self.uint(at, self.lsize, "local heap size")
            seg = self.uint(at + 2 * self.lsize, self.osize, "local heap data address") + self.base
            self.take(seg, seg_size, "local heap data")
            got = self._heaps[address] = (seg, seg_size)
        return got

    def heap_string(self, seg: int, seg_size: int, offset: int) -> str:
        if offset >= seg_size:
            raise Malformed(f"name offset {offset} outside its local heap", seg)
        data = self.buf[seg + offset:seg + seg_size]
        end = bytes(data).find(b"\0")
        if end < 0:
            raise Malformed("name in local heap is not NUL-terminated", seg + offset)
        return bytes(data[:end]).decode("utf-8", "surrogateescape")

    def _btree(self, address: int, seg: int, seg_size: int, out: list[Link], seen: set[int],
               depth: int) -> None:
        if address in seen or depth > MAX_BTREE_DEPTH:
            raise Malformed("group B-tree loops or is too deep", address)
        seen.add(address)
        if bytes(self.take(address, 4, "B-tree node")) != b"TREE":
            raise Malformed("B-tree node without TREE signature", address)
        node_type, level = self.uint(address + 4, 1, "B-tree"), self.uint(address + 5, 1, "B-tree")
        used = self.uint(address + 6, 2, "B-tree entries")
        if node_type != 0:
            raise Malformed(f"group B-tree node of type {node_type}", address)
        o, ln = self.osize, self.lsize
        at = address + 8 + 2 * o + ln          # siblings, then key 0
        self.take(at, used * (o + ln), "B-tree entries")
        for _ in range(used):
            child = self.uint(at, o, "B-tree child") + self.base
            at += o + ln
            if level > 0:
                self._btree(child, seg, seg_size, out, seen, depth + 1)
            else:
                self._symbol_node(child, seg, seg_size, out, seen)

    def _symbol_node(self, address: int, seg: int, seg_size: int, out: list[Link], seen: set[int]) -> None:
        if address in seen:
            raise Malformed("symbol table node listed twice", address)
        seen.add(address)
        if bytes(self.take(address, 4, "symbol table node")) != b"SNOD":
            raise Malformed("symbol table node without SNOD signature", address)
        count = self.uint(address + 6, 2, "symbol count")
        o = self.osize
        esize = 2 * o + 24
        at = address + 8
        self.take(at, count * esize, "symbol table entries")
        for _ in range(count):
            name = self.heap_string(seg, seg_size, self.uint(at, o, "link name offset"))
            header = self.uint(at + o, o, "object header address")
            cache = self.uint(at + 2 * o, 4, "cache type")
            if cache == 2:
                value = self.heap_string(seg, seg_size, self.uint(at + 2 * o + 8, 4, "soft link value"))
                out.append(Link(name, "soft", target_path=value))
            else:
                if self.undefined(header, o):
                    raise Malformed(f"link {name!r} has no object header", at)
                out.append(Link(name, "hard", header + self.base))
            at += esize

    # global heap (variable-length data)

    def global_object(self, collection: int, index: int) -> memoryview:
        objs = self._collections.get(collection)
        if objs is None:
            objs = self._collections[collection] = self._collection(collection)
        got = objs.get(index)
        if got is None:
            raise Malformed(f"global heap object {index} not in its collection", collection)
        return got

    def _collection(self, address: int) -> dict[int, memoryview]:
        if bytes(self.take(address, 4, "global heap")) != b"GCOL":
            raise Malformed("global heap collection without GCOL signature", address)
        size = self.uint(address + 8, self.lsize, "global heap size")
        self.take(address, size, "global heap collection")
        end = address + size
        at = address + 8 + self.lsize
        out: dict[int, memoryview] = {}
        head = 8 + self.lsize
        while at + head <= end:
            index = self.uint(at, 2, "global heap object index")
            osize = self.uint(at + 8, self.lsize, "global heap object size")
            if index == 0:
                break                      # free space to the end of the collection
            if at + head + osize > end:
                raise Malformed("global heap object runs past its collection", at)
            out[index] = self.buf[at + head:at + head + osize]
            at += head + ((osize + 7) & ~7)
        return out


# -- messages --------------------------------------------------------------------------------

def _need(data: memoryview, n: int, what: str, off: int) -> None:
    if n > len(data):
        raise Malformed(f"{what} message too short", off)


def _dataspace(f: Hdf5File, data: memoryview, off: int) -> tuple[tuple[int, ...] | None, int]:
    """(shape or None for a null dataspace, encoded length)."""
    _need(data, 4, "dataspace", off)
    version, rank, flags = data[0], data[1], data[2]
    if version == 1:
        at, kind = 8, (1 if rank else 0)
    elif version == 2:
        at, kind = 4, data[3]
    else:
        raise Malformed(f"dataspace version {version}", off)
    if kind == 2:
        return None, at
    n = rank * f.lsize
    _need(data, at + n * (2 if flags & 1 else 1), "dataspace", off)
    dims = tuple(int.from_bytes(data[at + i * f.lsize:at + (i + 1) * f.lsize], "little") for i in range(rank))
    at += n * (2 if flags & 1 else 1)
    return (dims if kind == 1 else ()), at


def _datatype(f: Hdf5File, data: memoryview, off: int) -> tuple[Datatype, int]:
    """(datatype, encoded length)."""
    _need(data, 8, "datatype", off)
    cls, version = data[0] & 0x0F, data[0] >> 4
    b1, b2 = data[1], data[2]
    size = int.from_bytes(data[4:8], "little")
    props = data[8:]
    order = ">" if b1 & 1 else "<"
    if cls == FIXED:
        _need(data, 12, "datatype", off)
        offset, precision = int.from_bytes(props[0:2], "little"), int.from_bytes(props[2:4], "little")
        std = offset == 0 and precision == 8 * size and not b1 & 0x06 and size in (1, 2, 4, 8)
        return Datatype(FIXED, size, "|" if size == 1 else order, bool(b1 & 0x08), std), 12
    if cls == FLOAT:
        _need(data, 20, "datatype", off)
        if b1 & 0x40:
            raise NotRead("VAX-order floating point")
        layout = (int.from_bytes(props[2:4], "little"), props[4], props[5], props[6], props[7],
                  int.from_bytes(props[8:12], "little"))
        offset = int.from_bytes(props[0:2], "little")
        std = IEEE.get(size) == layout and offset == 0 and b2 == 8 * size - 1 and \
            (b1 >> 4) & 3 == 2 and not b1 & 0x0E
        return Datatype(FLOAT, size, order, True, std), 20
    if cls == STRING:
        return Datatype(STRING, size, "|", strpad=b1 & 0x0F), 8
    if cls == OPAQUE:
        taglen = b1
        _need(data, 8 + taglen, "datatype", off)
        tag = bytes(props[:taglen]).split(b"\0", 1)[0].decode("ascii", "replace")
        return Datatype(OPAQUE, size, "|", tag=tag), 8 + taglen
    if cls == ENUM:
        members = b1 | (b2 << 8)
        base, blen = _datatype(f, props, off + 8)
        at = 8 + blen
        names = []
        for _ in range(members):
            end = bytes(data[at:]).find(b"\0")
            if end < 0:
                raise Malformed("enum member name not NUL-terminated", off + at)
            names.append(bytes(data[at:at + end]).decode("utf-8", "replace"))
            at += (end + 8) & ~7 if version < 3 else end + 1     # padded to 8 before version 3
        _need(data, at + members * base.size, "datatype", off)
        values = [int.from_bytes(data[at + i * base.size:at + (i + 1) * base.size], "little",
                                 signed=base.signed) for i in range(members)]
        at += members * base.size
        is_bool = base.cls == FIXED and base.size == 1 and base.standard and \
            dict(zip(names, values, strict=True)) == {"FALSE": 0, "TRUE": 1}
        return Datatype(ENUM, size, "|", standard=is_bool, is_bool=is_bool), at
    if cls == VLEN:
        base, blen = _datatype(f, props, off + 8)
        return Datatype(VLEN, size, "|", vlen_string=(b1 & 0x0F) == 1), 8 + blen
    # time, bitfield, compound, reference, array: their encoded length is not needed here
    return Datatype(cls, size, "|", standard=False), len(data)


def _layout(f: Hdf5File, data: memoryview, off: int) -> Layout:
    _need(data, 2, "data layout", off)
    version = data[0]
    if version in (1, 2):
        _need(data, 8, "data layout", off)
        rank, cls = data[1], data[2]
        at = 8
        address = None
        if cls != 0:
            address = f.addr_at(data, at, off)
            at += f.osize
        _need(data, at + 4 * rank, "data layout", off)
        dims = [int.from_bytes(data[at + 4 * i:at + 4 * i + 4], "little") for i in range(rank)]
        at += 4 * rank
        if cls == 0:
            _need(data, at + 4, "data layout", off)
            n = int.from_bytes(data[at:at + 4], "little")
            _need(data, at + 4 + n, "data layout", off)
            return Layout("compact", None, n, data[at + 4:at + 4 + n])
        if cls == 1:
            total = 1
            for d in dims:
                total *= d
            return Layout("contiguous", address, total)
        return Layout("chunked", address)
    if version not in (3, 4, 5):      # 4 and 5 differ from 3 in chunk indexes only
        raise Malformed(f"data layout version {version}", off)
    cls = data[1]
    if cls == 0:
        _need(data, 4, "data layout", off)
        n = int.from_bytes(data[2:4], "little")
        _need(data, 4 + n, "data layout", off)
        return Layout("compact", None, n, data[4:4 + n])
    if cls == 1:
        address = f.addr_at(data, 2, off)
        return Layout("contiguous", address, f.length_at(data, 2 + f.osize, off))
    if cls == 2:
        return Layout("chunked")
    if cls == 3:
        raise NotRead("virtual datasets")
    raise Malformed(f"data layout class {cls}", off)


def _external(f: Hdf5File, data: memoryview, off: int) -> list[str]:
    _need(data, 8 + f.osize, "external files", off)
    used = int.from_bytes(data[6:8], "little")
    heap = f.addr_at(data, 8, off)
    if heap is None:
        raise Malformed("external files message without a heap", off)
    seg, seg_size = f._local_heap(heap)
    at = 8 + f.osize
    slot = 3 * f.lsize
    _need(data, at + used * slot, "external files", off)
    return [f.heap_string(seg, seg_size, f.length_at(data, at + i * slot, off)) for i in range(used)]


def _attribute(f: Hdf5File, data: memoryview, off: int) -> Attribute:
    _need(data, 8, "attribute", off)
    version, flags = data[0], data[1]
    name_size = int.from_bytes(data[2:4], "little")
    type_size = int.from_bytes(data[4:6], "little")
    space_size = int.from_bytes(data[6:8], "little")
    if version == 1:
        def pad(n: int) -> int:
            return (n + 7) & ~7
        at = 8
    elif version in (2, 3):
        if flags & 0x03:
            raise NotRead("shared attribute datatypes or dataspaces")

        def pad(n: int) -> int:
            return n
        at = 8 if version == 2 else 9
    else:
        raise Malformed(f"attribute message version {version}", off)
    _need(data, at + pad(name_size) + pad(type_size) + pad(space_size), "attribute", off)
    raw_name = bytes(data[at:at + name_size]).split(b"\0", 1)[0]
    at += pad(name_size)
    dtype, _ = _datatype(f, data[at:at + type_size], off + at)
    at += pad(type_size)
    shape, _ = _dataspace(f, data[at:at + space_size], off + at)
    at += pad(space_size)
    a = Attribute(raw_name.decode("utf-8", "surrogateescape"), dtype, shape, data[at:])
    if shape is not None:
        need = a.count * dtype.size
        if need > len(a.data):
            raise Malformed(f"attribute {a.name!r} needs {need} bytes, has {len(a.data)}", off + at)
        a.data = a.data[:need]
    return a


def _attribute_info(f: Hdf5File, data: memoryview, off: int) -> None:
    _need(data, 2, "attribute info", off)
    at = 2 + (2 if data[1] & 1 else 0)
    if f.addr_at(data, at, off) is not None:
        raise NotRead("dense attribute storage")


def _link_info(f: Hdf5File, data: memoryview, off: int) -> None:
    _need(data, 2, "link info", off)
    at = 2 + (8 if data[1] & 1 else 0)
    if f.addr_at(data, at, off) is not None:
        raise NotRead("dense link storage")


def _link(f: Hdf5File, data: memoryview, off: int) -> Link:
    _need(data, 2, "link", off)
    version, flags = data[0], data[1]
    if version != 1:
        raise Malformed(f"link message version {version}", off)
    at = 2
    kind = 0
    if flags & 0x08:
        _need(data, at + 1, "link", off)
        kind = data[at]
        at += 1
    if flags & 0x04:
        at += 8
    if flags & 0x10:
        at += 1
    width = 1 << (flags & 3)
    _need(data, at + width, "link", off)
    n = int.from_bytes(data[at:at + width], "little")
    at += width
    _need(data, at + n, "link", off)
    name = bytes(data[at:at + n]).decode("utf-8", "surrogateescape")
    at += n
    if kind == 0:
        address = f.addr_at(data, at, off)
        if address is None:
            raise Malformed(f"hard link {name!r} without an address", off)
        return Link(name, "hard", address)
    _need(data, at + 2, "link", off)
    vlen = int.from_bytes(data[at:at + 2], "little")
    _need(data, at + 2 + vlen, "link", off)
    value = bytes(data[at + 2:at + 2 + vlen])
    if kind == 1:
        return Link(name, "soft", target_path=value.decode("utf-8", "surrogateescape"))
    if kind == 64:
        parts = value[1:].split(b"\0")
        file_name = parts[0].decode("utf-8", "surrogateescape")
        path = parts[1].decode("utf-8", "surrogateescape") if len(parts) > 1 else ""
        return Link(name, "external", target_file=file_name, target_path=path)
    return Link(name, "other")


# -- attribute values ------------------------------------------------------------------------

_FORMATS = {(FLOAT, 2): "e", (FLOAT, 4): "f", (FLOAT, 8): "d"}


def value(f: Hdf5File, a: Attribute) -> Any:
    """An attribute's value as plain Python, as h5py gives it and `list()` of NumPy arrays
    makes it: strings (variable-length or fixed, UTF-8 decoded; fixed ones end at their first
    NUL when null-terminated, without their trailing NULs when null-padded) as str, numbers as
    int/float/bool, arrays as nested lists. Raises `NotRead` for values h5py would give as
    something else (compound, references, null dataspaces...)."""
    if a.shape is None:
        raise NotRead("an attribute with a null dataspace")
    dt = a.dtype
    n = a.count
    items: list[Any]
    if dt.vlen_string:
        items = [_vlen_string(f, a.data[i * dt.size:(i + 1) * dt.size]) for i in range(n)]
    elif dt.cls == STRING:
        if dt.strpad == 2:
            raise NotRead("space-padded strings")
        raw = [bytes(a.data[i * dt.size:(i + 1) * dt.size]) for i in range(n)]
        # null-terminated: up to the first NUL; null-padded: without the trailing NULs
        items = [(r.split(b"\0", 1)[0] if dt.strpad == 0 else r.rstrip(b"\0")).decode("utf-8")
                 for r in raw]
    elif dt.cls == FIXED and dt.standard:
        order = "big" if dt.order == ">" else "little"
        items = [int.from_bytes(a.data[i * dt.size:(i + 1) * dt.size], order, signed=dt.signed)
                 for i in range(n)]
    elif dt.cls == FLOAT and dt.standard:
        fmt = ("<" if dt.order == "<" else ">") + _FORMATS[(FLOAT, dt.size)] * n
        items = [float(x) for x in struct.unpack(fmt, a.data)]
    elif dt.is_bool:
        items = [bool(b) for b in bytes(a.data)]
    else:
        raise NotRead(f"attribute of type {dt.numpy_name()}")
    if not a.shape:
        return items[0]
    return _nest(items, a.shape)


def _nest(items: list[Any], shape: tuple[int, ...]) -> list[Any]:
    if len(shape) == 1:
        return items
    step = len(items) // shape[0] if shape[0] else 0
    return [_nest(items[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def _vlen_string(f: Hdf5File, raw: memoryview) -> str:
    if len(raw) < 8 + f.osize:
        raise Malformed("variable-length string reference too short")
    length = int.from_bytes(raw[0:4], "little")
    collection = int.from_bytes(raw[4:4 + f.osize], "little")
    index = int.from_bytes(raw[4 + f.osize:8 + f.osize], "little")
    if length == 0 and collection == 0:
        return ""
    data = f.global_object(collection + f.base, index)
    if length > len(data):
        raise Malformed(f"variable-length string of {length} bytes in a {len(data)}-byte object")
    return bytes(data[:length]).decode("utf-8")
