"""Fingerprints and verdicts built by hand, for forest and renderer tests (no weights needed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from assay.analyses.lineage.types import FP_VERSION, Evidence, Fingerprint, Verdict


def fp(label: str, parameters: int = 1000, fmt: str = "safetensors", **declared: object) -> Fingerprint:
    return Fingerprint(FP_VERSION, label, f"assay-model-v1:{label}", f"assay-model-v1:n-{label}", fmt,
                       parameters, dict(declared), ())


def verdict(relation: str, parent: str | None, child: str | None, confidence: float,
            contradiction: str | None = None) -> Verdict:
    ev = (Evidence(None, "tensors_compared", 4.0), Evidence("layer.0.weight", "rel_l2", 0.0123))
    return Verdict(relation, parent, child, confidence, f"{child} is {relation} from {parent}", ev,
                   {"rank": 8} if relation == "adapter" else {},
                   {"a": {"base_model": parent or ""}, "b": {"model_type": "bert"}}, contradiction)


SYMMETRIC = ("same", "converted", "finetuned", "adapter", "partial")


class Table:
    """A relate function from a table of (parent, child) -> (relation, confidence[, distance]);
    missing pairs are unrelated. As `relation.relate` does, it leaves same, converted, finetuned,
    adapter and partial undirected (parent None), unless the relation is written with a `>`
    (e.g. "finetuned>": the weights tell the direction). The distance becomes `median_rel_l2`.
    Counts its calls."""

    def __init__(self, table: dict[tuple[str, str], tuple]) -> None:
        self.table = table
        self.calls: list[tuple[str, str]] = []

    def __call__(self, a: Fingerprint, b: Fingerprint) -> Verdict:
        self.calls.append((a.label, b.label))
        for (p, c), (rel, conf, *dist) in self.table.items():
            if {p, c} == {a.label, b.label}:
                directed = rel.endswith(">") or rel not in SYMMETRIC
                rel = rel.rstrip(">")
                v = verdict(rel, p if directed else None, c if directed else None, conf)
                if dist:
                    v = replace(v, details={**v.details, "median_rel_l2": dist[0]})
                return v
        return verdict("unrelated", None, None, 0.99)


def no_merge(child: Fingerprint, parents: Sequence[Fingerprint]) -> Verdict | None:
    return None
