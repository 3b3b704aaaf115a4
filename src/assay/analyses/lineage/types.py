"""Lineage values shared by fingerprints, relation tests, forests and the catalog.

Contract between `fingerprint.py` (sketches computed once per model), `relation.py` (judging two
fingerprints without rereading weights), `forest.py` (many models) and `assay.catalog` (storage
and candidate search). Pure values: no file I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FP_VERSION = "assay-fp-v1"

# DESIGN.md's relations, plus `partial` (some tensors reused).
RELATIONS = ("same", "converted", "cast", "quantized", "pruned", "finetuned", "adapter", "merged",
             "extended", "truncated", "partial", "unrelated")


@dataclass(frozen=True)
class TensorSketch:
    """What a fingerprint keeps of one tensor: enough to judge a relation without the weights."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    digest: str                           # assay-tensor-v1 hex digest (exact equality)
    stats: dict[str, float] = field(default_factory=dict)     # e.g. mean, std, absmax, zeros
    sketch: bytes = b""                   # value sketch (layout defined by fingerprint.py)


@dataclass(frozen=True)
class Fingerprint:
    version: str                          # FP_VERSION
    label: str                            # what the user named (path or catalog name)
    content_id: str                       # assay-model-v1 content identity
    named_id: str                         # assay-model-v1 named identity
    format: str
    parameters: int
    declared: dict[str, Any]              # base_model, base_model_relation, model_type, ... (not trusted)
    tensors: tuple[TensorSketch, ...]


@dataclass(frozen=True)
class Evidence:
    tensor: str | None                    # None: model-level evidence
    statistic: str                        # e.g. "digest-equal", "rel_l2", "update_rank", "zeros"
    value: float | str


@dataclass(frozen=True)
class Verdict:
    """The relation of `b` to `a` (or of a child to its parents for `merged`)."""

    relation: str                         # one of RELATIONS
    parent: str | None                    # label of the origin side, None when undirected/unrelated
    child: str | None                     # label of the derived side
    confidence: float                     # 0..1
    summary: str                          # one line for people
    evidence: tuple[Evidence, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)    # layers moved, rank, merge weights...
    declared: dict[str, Any] = field(default_factory=dict)   # declared metadata of both sides
    contradiction: str | None = None      # set when declared metadata contradicts the weights
