"""The catalog's lineage graph: a `Forest` built from the relations stored when models were added.

No weights and no fingerprints are reread: each stored edge becomes the verdict the forest's
greedy selection (`analyses.lineage.forest.infer_forest`) judges, so the catalog draws the same
kind of forest as `assay lineage` does for files, with the other related pairs kept as
`considered`; a model stored as a merge gets all its merge parents. Labels are made unique
(`label#id`) where two entries share one.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

from assay.analyses.lineage.forest import Forest, infer_forest
from assay.analyses.lineage.types import Evidence, Fingerprint, Verdict
from assay.catalog.store import Entry, Link


def display_labels(entries: Sequence[Entry]) -> dict[int, str]:
    seen = Counter(e.label for e in entries)
    return {e.id: e.label if seen[e.label] == 1 else f"{e.label}#{e.id}" for e in entries}


def link_verdict(link: Link, parent: str, child: str) -> Verdict:
    ev = link.evidence
    evidence = tuple(Evidence(x.get("tensor"), str(x.get("statistic")), x.get("value"))
                     for x in ev.get("evidence", ()) if isinstance(x, dict))
    return Verdict(link.relation, parent if link.directed else None, child if link.directed else None,
                   link.confidence, link.summary, evidence, dict(ev.get("details") or {}),
                   dict(ev.get("declared") or {}), ev.get("contradiction"))


def forest(entries: Sequence[Entry], links: Sequence[Link]) -> Forest:
    """The lineage forest of the catalog (entries in the order they were added)."""
    labels = display_labels(entries)
    fps = [Fingerprint(e.fp_version, labels[e.id], e.content_id, e.named_id, e.format, e.parameters,
                       e.declared, ()) for e in sorted(entries, key=lambda e: e.id)]
    stored: dict[frozenset[str], Verdict] = {}
    incident: dict[str, list[int]] = {}
    for n, link in enumerate(links):
        p, c = labels[link.parent.id], labels[link.child.id]
        stored[frozenset((p, c))] = link_verdict(link, p, c)
        incident.setdefault(p, []).append(n)
        incident.setdefault(c, []).append(n)

    merged: dict[str, list[str]] = {}          # child -> parents of the merge found when adding it
    for link in links:
        if link.relation == "merged" and link.directed:
            merged.setdefault(labels[link.child.id], []).append(labels[link.parent.id])

    def relate(a: Fingerprint, b: Fingerprint) -> Verdict:
        v = stored.get(frozenset((a.label, b.label)))
        return v if v is not None else Verdict("unrelated", None, None, 1.0, "no stored relation")

    def merge(child: Fingerprint, parents: Sequence[Fingerprint]) -> Verdict | None:
        chosen = [p.label for p in parents if p.label in merged.get(child.label, ())]
        if len(chosen) < 2:
            return None
        v = stored[frozenset((chosen[0], child.label))]
        return dataclasses.replace(v, details={**v.details, "parents": chosen})

    return infer_forest(fps, relate, relate_merge=merge, keys=lambda fp: incident.get(fp.label, ()))
