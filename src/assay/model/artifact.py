"""The one in-memory model every analysis works on."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assay.model.tensor import TensorRecord


@dataclass(frozen=True)
class Location:
    """Where in a model something is: a file, an archive member, a byte offset."""
    file: str
    member: str | None = None
    offset: int | None = None

    def __str__(self) -> str:
        s = self.file
        if self.member:
            s += f"!{self.member}"
        if self.offset is not None:
            s += f"@{self.offset}"
        return s


@dataclass(frozen=True)
class Observation:
    """A neutral fact a reader saw. Readers record; analyses judge.

    Kinds in use: pickle.import, pickle.call, archive.member, archive.oddity, code.file,
    external.data, template, trailing.bytes, keras.lambda, keras.layer, symbolic.object."""

    kind: str
    detail: str
    location: Location
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelArtifact:
    """A model as assay read it: source files, format, metadata, tensors, observations."""
    path: str                                  # what the user named (file or folder)
    format: str                                # reader name, e.g. "safetensors", "pytorch-zip"
    files: list[str] = field(default_factory=list)
    tensors: list[TensorRecord] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    observations: list[Observation] = field(default_factory=list)
    parts: list[ModelArtifact] = field(default_factory=list)   # per-file artifacts of a folder

    def observe(self, kind: str, detail: str, file: str, member: str | None = None,
                offset: int | None = None, **data: Any) -> None:
        self.observations.append(Observation(kind, detail, Location(file, member, offset), data))

    @property
    def parameter_count(self) -> int:
        return sum(t.numel for t in self.tensors)

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def bytes_by_dtype(self) -> dict[str, int]:
        c: Counter[str] = Counter()
        for t in self.tensors:
            c[t.dtype.name] += t.nbytes
        return dict(sorted(c.items()))

    def params_by_dtype(self) -> dict[str, int]:
        c: Counter[str] = Counter()
        for t in self.tensors:
            c[t.dtype.name] += t.numel
        return dict(sorted(c.items()))

    def tensor(self, name: str) -> TensorRecord:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)
