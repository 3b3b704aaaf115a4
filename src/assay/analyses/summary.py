"""What `assay inspect` reports: totals, dtype breakdown, largest tensors. Pure functions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from assay.model.artifact import ModelArtifact, Observation
from assay.model.tensor import TensorRecord


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    parameters: int
    bytes: int
    file: str | None
    member: str | None
    offset: int | None

    @classmethod
    def of(cls, t: TensorRecord) -> TensorInfo:
        s = t.span
        return cls(t.name, t.dtype.name, t.shape, t.numel, t.nbytes,
                   s.file if s else None, s.member if s else None,
                   None if s is None or s.in_memory else s.offset + _elem_bytes(t))


def _elem_bytes(t: TensorRecord) -> int:
    return t.element_offset * (t.dtype.bits // 8) if not t.dtype.is_block else t.element_offset


@dataclass(frozen=True)
class DTypeTotals:
    tensors: int
    parameters: int
    bytes: int


@dataclass(frozen=True)
class Summary:
    path: str
    format: str
    files: tuple[str, ...]
    tensor_count: int
    parameters: int
    bytes: int
    dtypes: dict[str, DTypeTotals]
    largest: tuple[TensorInfo, ...]
    metadata: dict[str, Any]
    observation_counts: dict[str, int]
    observations: tuple[Observation, ...]
    tensors: tuple[TensorInfo, ...] = field(default=())


def summarize(art: ModelArtifact, *, largest: int = 10, with_tensors: bool = False) -> Summary:
    per: dict[str, list[int]] = {}
    for t in art.tensors:
        acc = per.setdefault(t.dtype.name, [0, 0, 0])
        acc[0] += 1
        acc[1] += t.numel
        acc[2] += t.nbytes
    dtypes = {k: DTypeTotals(*v) for k, v in sorted(per.items())}
    top = sorted(art.tensors, key=lambda t: (-t.numel, t.name))[:largest]
    counts = Counter(o.kind for o in art.observations)
    return Summary(
        path=art.path, format=art.format, files=tuple(art.files), tensor_count=len(art.tensors),
        parameters=art.parameter_count, bytes=art.total_bytes, dtypes=dtypes,
        largest=tuple(TensorInfo.of(t) for t in top), metadata=art.metadata,
        observation_counts=dict(sorted(counts.items())), observations=tuple(art.observations),
        tensors=tuple(TensorInfo.of(t) for t in art.tensors) if with_tensors else (),
    )
