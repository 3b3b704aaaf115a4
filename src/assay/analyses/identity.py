"""Content identity of weights, independent of container format, names, order and sharding.

Tensor digest (`assay-tensor-v1`): BLAKE3 over a header and the canonical bytes:

    b"assay-tensor-v1\\0" + dtype name + b"\\0" + u64le(ndim) + u64le(dim) for each dim
    + the values as little-endian, C-order bytes (quantized block types: the raw blocks)

Model identities (`assay-model-v1`):
- content: BLAKE3 over b"assay-model-v1\\0content\\0" + u64le(count) + the tensor digests sorted
  bytewise (a multiset: names, order, container and sharding do not matter);
- named: BLAKE3 over b"assay-model-v1\\0named\\0" + u64le(count) + for each tensor sorted by
  name: u64le(len(name)) + UTF-8 name + digest.
See docs/identity.md for worked examples. Changing any of this needs a new version tag.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import blake3

from assay.model.artifact import ModelArtifact
from assay.model.tensor import TensorRecord

TENSOR_V = "assay-tensor-v1"
MODEL_V = "assay-model-v1"
CHUNK = 64 << 20     # bytes hashed at a time

Progress = Callable[[int], None]


@dataclass(frozen=True)
class TensorDigest:
    name: str
    dtype: str
    shape: tuple[int, ...]
    digest: bytes

    @property
    def text(self) -> str:
        return f"{TENSOR_V}:{self.digest.hex()}"


@dataclass(frozen=True)
class Identity:
    content: str
    named: str
    tensors: tuple[TensorDigest, ...]
    parameters: int
    bytes: int


def _header(t: TensorRecord) -> bytes:
    parts = [TENSOR_V.encode(), b"\0", t.dtype.name.encode(), b"\0", struct.pack("<Q", len(t.shape))]
    parts += [struct.pack("<Q", d) for d in t.shape]
    return b"".join(parts)


def _hasher() -> blake3.blake3:
    return blake3.blake3(max_threads=blake3.blake3.AUTO)


def tensor_digest(t: TensorRecord, progress: Progress | None = None,
                  threads: int | None = None) -> TensorDigest:
    h = blake3.blake3(max_threads=threads) if threads else _hasher()
    h.update(_header(t))
    for chunk in t.canonical_chunks(CHUNK):
        h.update(chunk)
        if progress:
            progress(len(chunk))
    return TensorDigest(t.name, t.dtype.name, t.shape, h.digest())


def model_identity(digests: Iterable[TensorDigest]) -> tuple[str, str]:
    ds = list(digests)
    c = blake3.blake3(f"{MODEL_V}\0content\0".encode() + struct.pack("<Q", len(ds)))
    for d in sorted(x.digest for x in ds):
        c.update(d)
    n = blake3.blake3(f"{MODEL_V}\0named\0".encode() + struct.pack("<Q", len(ds)))
    for d in sorted(ds, key=lambda x: (x.name.encode(), x.digest)):
        name = d.name.encode()
        n.update(struct.pack("<Q", len(name)) + name + d.digest)
    return f"{MODEL_V}:{c.hexdigest()}", f"{MODEL_V}:{n.hexdigest()}"


SMALL = 32 << 20    # tensors up to this size are hashed whole, several at once on a thread pool


def identify(art: ModelArtifact, progress: Progress | None = None) -> Identity:
    """Digest every tensor. Small tensors are hashed concurrently, one thread each (BLAKE3
    releases the GIL); large ones use BLAKE3's own multi-threading. Order is kept."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    workers = os.cpu_count() or 1
    results: list[TensorDigest | None] = [None] * len(art.tensors)
    small = [i for i, t in enumerate(art.tensors) if t.nbytes <= SMALL]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {i: pool.submit(tensor_digest, art.tensors[i], progress, 1) for i in small}
        for i, t in enumerate(art.tensors):
            if i not in futures:
                results[i] = tensor_digest(t, progress)
        for i, f in futures.items():
            results[i] = f.result()
    digests = tuple(d for d in results if d is not None)
    content, named = model_identity(digests)
    return Identity(content, named, digests, art.parameter_count, art.total_bytes)


@dataclass(frozen=True)
class Manifest:
    """Per-tensor digests a packager pins; `documents`/`render` turn it to and from JSON."""

    content: str
    named: str
    tensors: tuple[TensorDigest, ...]


@dataclass(frozen=True)
class Verification:
    status: str                   # "identical" | "same-content" | "different"
    expected: str
    actual: str
    missing: tuple[str, ...] = ()     # in the manifest, not in the file
    extra: tuple[str, ...] = ()       # in the file, not in the manifest
    changed: tuple[str, ...] = ()     # same name, other digest

    @property
    def matches(self) -> bool:
        return self.status != "different"


def manifest_of(ident: Identity) -> Manifest:
    return Manifest(ident.content, ident.named, ident.tensors)


def verify(ident: Identity, manifest: Manifest) -> Verification:
    if ident.named == manifest.named:
        return Verification("identical", manifest.content, ident.content)
    if ident.content == manifest.content:
        return Verification("same-content", manifest.content, ident.content)
    want = {t.name: t.digest for t in manifest.tensors}
    have = {t.name: t.digest for t in ident.tensors}
    return Verification(
        "different", manifest.content, ident.content,
        missing=tuple(sorted(set(want) - set(have))),
        extra=tuple(sorted(set(have) - set(want))),
        changed=tuple(sorted(k for k in set(want) & set(have) if want[k] != have[k])),
    )
