"""The lineage forest of many models: for each model its most likely parent(s), from the weights.

1. Every pair of candidate models is judged once by a relation function (`relation.relate`
   unless another is given); pairs judged unrelated, or less certain than asked, are dropped.
2. Merges: a model that is no copy of another and has two or more changed relatives is tested
   as a combination of them (`relation.relate_merge`); if the test explains it, those with a
   material coefficient are its parents.
3. Skeleton: a maximum spanning forest over the related pairs (Kruskal), closest pairs first:
   same values, then copies (cast, quantized, pruned, extended, truncated), then changed values
   by their median relative change, then partial reuse. A copy (the derived side of such a
   pair) hangs only from what it copies, so a quantized fine-tune is not taken for the fine-tune's
   sibling; a merge child is linked only to its own copies.
4. Direction: each tree is rooted where the fewest pair directions are contradicted (cast down,
   quantized, pruned, extended, truncated, or a side with an extra head are derived sides), then
   at its most central model counting only changes (a base fine-tuned several ways is the centre
   of its fine-tunes), then at the model named first. Fine-tuning and adapters leave no direction
   in the weights: such an edge is drawn in the direction the tree gives it, with
   `directed=False`.

Pure: fingerprints in, a frozen `Forest` out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from assay.analyses.lineage.types import Fingerprint, Verdict

RelateFn = Callable[[Fingerprint, Fingerprint], Verdict]
MergeFn = Callable[[Fingerprint, Sequence[Fingerprint]], "Verdict | None"]
ProgressFn = Callable[[int, int], None]

# Relations that say nothing about which side came first.
UNDIRECTED = frozenset({"same", "converted"})
# How close a relation keeps two models: 0 same values, 1 the same values transformed (copies),
# 2 changed values, 3 partly replaced. Closer pairs are linked first.
TIER = {"same": 0, "converted": 0, "cast": 1, "quantized": 1, "pruned": 1, "extended": 1, "truncated": 1,
        "adapter": 2, "finetuned": 2, "merged": 2, "partial": 3}
# Relations under which a model may be a merge of its relatives.
MERGEABLE = frozenset({"finetuned", "adapter", "merged", "partial"})
MERGE_MIN_COEFFICIENT = 0.02
# Above this many models, only pairs that share a locality-sensitive key are compared.
ALL_PAIRS_UP_TO = 64


@dataclass(frozen=True)
class Node:
    label: str
    format: str
    parameters: int
    content_id: str
    declared: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Edge:
    parent: str
    child: str
    relation: str
    confidence: float
    directed: bool                        # the pair's weights (or a merge test) say which side
                                          # is derived; False: the forest's choice, or none
    verdict: Verdict


@dataclass(frozen=True)
class Forest:
    nodes: tuple[Node, ...]               # in input order
    edges: tuple[Edge, ...]               # kept edges, sorted by (child, parent)
    roots: tuple[str, ...]                # models with no parent, in input order
    compared: int                         # pairs judged
    related: int                          # pairs judged related (candidate edges)
    considered: tuple[Edge, ...] = ()     # related pairs not kept (alternatives), closest first
    contradictions: dict[str, str] = field(default_factory=dict)   # label -> declared vs weights

    def parents(self, label: str) -> tuple[str, ...]:
        return tuple(e.parent for e in self.edges if e.child == label)

    def children(self, label: str) -> tuple[str, ...]:
        return tuple(e.child for e in self.edges if e.parent == label)

    def edge(self, parent: str, child: str) -> Edge | None:
        return next((e for e in self.edges if e.parent == parent and e.child == child), None)


def _default_relate() -> RelateFn:
    from assay.analyses.lineage.relation import relate
    return relate


def _default_merge() -> MergeFn:
    from assay.analyses.lineage.relation import relate_merge
    return relate_merge


def candidate_pairs(fps: Sequence[Fingerprint],
                    keys: Callable[[Fingerprint], Any] | None = None) -> list[tuple[int, int]]:
    """Index pairs (i < j) to judge: all of them for small sets, else those sharing a key."""
    n = len(fps)
    if n <= ALL_PAIRS_UP_TO or keys is None:
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    buckets: dict[Any, list[int]] = {}
    for i, fp in enumerate(fps):
        for k in keys(fp):
            buckets.setdefault(k, []).append(i)
    pairs = {(a, b) for members in buckets.values() for x, a in enumerate(members) for b in members[x + 1:]}
    return sorted(pairs)


def _tier(relation: str) -> int:
    return TIER.get(relation, 3)


def _length(v: Verdict) -> float:
    x = v.details.get("median_rel_l2") if isinstance(v.details, dict) else None
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else 0.0


@dataclass(frozen=True)
class _Cand:
    """One related pair: `a` named before `b`; `fixed` is (parent, child) when the pair says."""

    a: str
    b: str
    verdict: Verdict
    fixed: tuple[str, str] | None

    @property
    def tier(self) -> int:
        return _tier(self.verdict.relation)

    def other(self, x: str) -> str:
        return self.b if x == self.a else self.a

    def edge(self, parent: str, child: str, directed: bool | None = None) -> Edge:
        v = self.verdict
        return Edge(parent, child, v.relation, v.confidence,
                    self.fixed is not None if directed is None else directed, v)


def _candidate(v: Verdict, a: Fingerprint, b: Fingerprint) -> _Cand | None:
    if v.relation == "unrelated":
        return None
    fixed = None
    if v.parent is not None and v.child is not None and {v.parent, v.child} == {a.label, b.label} \
            and v.relation not in UNDIRECTED:
        fixed = (v.parent, v.child)
    return _Cand(a.label, b.label, v, fixed)


class _Sets:
    def __init__(self, items: Iterable[str]) -> None:
        self.up = {x: x for x in items}

    def find(self, x: str) -> str:
        while self.up[x] != x:
            self.up[x] = self.up[self.up[x]]
            x = self.up[x]
        return x

    def join(self, x: str, y: str) -> bool:
        rx, ry = self.find(x), self.find(y)
        if rx == ry:
            return False
        self.up[ry] = rx
        return True


def infer_forest(fps: Sequence[Fingerprint], relate: RelateFn | None = None, *,
                 relate_merge: MergeFn | bool | None = True,
                 keys: Callable[[Fingerprint], Any] | None = None,
                 min_confidence: float = 0.0,
                 progress: ProgressFn | None = None) -> Forest:
    """Infer which model derives from which.

    `relate(a, b)` gives the relation of `b` to `a`; `relate_merge(child, parents)` tests a merge
    (`True`: the default test, `None`/`False`: no merge detection). `keys(fp)` gives candidate
    keys (e.g. `fingerprint.lsh_keys`) used to prune pairs in large sets. Related verdicts below
    `min_confidence` are ignored.
    """
    labels = [fp.label for fp in fps]
    if len(set(labels)) != len(labels):
        dup = sorted({x for x in labels if labels.count(x) > 1})
        raise ValueError(f"labels must be unique; repeated: {', '.join(dup)}")
    rel = relate or _default_relate()
    merge: MergeFn | None = (_default_merge() if relate_merge is True
                             else relate_merge if callable(relate_merge) else None)
    order = {lab: i for i, lab in enumerate(labels)}

    pairs = candidate_pairs(fps, keys)
    cands: list[_Cand] = []
    for done, (i, j) in enumerate(pairs, 1):
        v = rel(fps[i], fps[j])
        c = _candidate(v, fps[i], fps[j]) if v.confidence >= min_confidence else None
        if c is not None:
            cands.append(c)
        if progress:
            progress(done, len(pairs))
    by_node: dict[str, list[_Cand]] = {lab: [] for lab in labels}
    for c in cands:
        by_node[c.a].append(c)
        by_node[c.b].append(c)

    copies = {c.fixed[1] if c.fixed else c.b for c in cands if c.tier <= 1}
    merged = _merges(fps, by_node, copies, merge, order) if merge is not None else {}

    tree = _skeleton(cands, labels, copies, merged, order)
    edges = _orient(tree, labels, merged, order)
    for child, (parents, v) in merged.items():
        down = _descendants(child, edges)
        if any(p in down for p in parents):      # the merge would close a cycle: drop it
            continue
        edges.extend(Edge(p, child, "merged", v.confidence, True, v) for p in parents)

    edges.sort(key=lambda e: (order[e.child], order[e.parent]))
    kept = {frozenset((e.parent, e.child)) for e in edges}
    considered = tuple(c.edge(*(c.fixed or (c.a, c.b))) for c in sorted(cands, key=lambda c: _key(c, order))
                       if frozenset((c.a, c.b)) not in kept)
    nodes = tuple(Node(fp.label, fp.format, fp.parameters, fp.content_id, dict(fp.declared)) for fp in fps)
    has_parent = {e.child for e in edges}
    roots = tuple(lab for lab in labels if lab not in has_parent)
    return Forest(nodes, tuple(edges), roots, len(pairs), len(cands), considered,
                  _contradictions(fps, edges))


def _names(fp: Fingerprint) -> set[str]:
    out = {fp.label, fp.label.rstrip("/").rsplit("/", 1)[-1]}
    for k in ("name_or_path", "general.name"):
        v = fp.declared.get(k)
        if isinstance(v, str) and v:
            out.update((v, v.rsplit("/", 1)[-1]))
    return {x.lower() for x in out if x}


def _contradictions(fps: Sequence[Fingerprint], edges: list[Edge]) -> dict[str, str]:
    """Models whose declared `base_model` names another model of the set that the weights do
    not place above it (declared metadata is shown beside the weights, never in their place)."""
    names = {fp.label: _names(fp) for fp in fps}
    ups: dict[str, list[str]] = {}
    for e in edges:
        ups.setdefault(e.child, []).append(e.parent)
    out: dict[str, str] = {}
    for fp in fps:
        v = fp.declared.get("base_model")
        for base in (v if isinstance(v, list) else [v]):
            if not isinstance(base, str) or not base:
                continue
            want = {base.lower(), base.rsplit("/", 1)[-1].lower()}
            named = [x for x in names if x != fp.label and names[x] & want]
            if not named:
                continue
            above = _reach(fp.label, ups)
            if not any(x in above for x in named):
                out[fp.label] = (f"declares base_model {base!r} ({named[0]}), but the weights do not "
                                 f"place {named[0]} above it")
    return out


def _reach(label: str, links: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(links.get(label, ()))
    while todo:
        x = todo.pop()
        if x not in seen:
            seen.add(x)
            todo.extend(links.get(x, ()))
    return seen


def _key(c: _Cand, order: dict[str, int]) -> tuple[int, float, float, int, int]:
    return (c.tier, _length(c.verdict), -c.verdict.confidence, order[c.a], order[c.b])


def _merges(fps: Sequence[Fingerprint], by_node: dict[str, list[_Cand]], copies: set[str],
            merge: MergeFn, order: dict[str, int]) -> dict[str, tuple[list[str], Verdict]]:
    """Children explained as a combination of two or more of their (non-copy) relatives.

    If `m` is an affine combination of `a` and `b`, each of them is one of the others, so the
    test alone cannot tell the child. The child is taken as the model explained with the
    smallest coefficients (sum of absolute values: 1 for a weight average, a little more for task
    arithmetic, much more for a parent written in terms of its merge), one at a time: an
    accepted merge child is no candidate parent of later tests, and its parents are no children."""
    by_label = {fp.label: fp for fp in fps}

    def fit(fp: Fingerprint, pool: list[str]) -> tuple[float, list[str], Verdict, dict[str, float]] | None:
        v = merge(fp, [by_label[x] for x in pool])
        if v is None or v.relation != "merged":
            return None
        coef = v.details.get("coefficients")
        if isinstance(coef, dict):
            weights = {x: abs(float(coef.get(x, 0.0))) for x in pool}
        else:
            listed = v.details.get("parents")
            weights = {x: 1.0 / len(pool) for x in pool
                       if not isinstance(listed, list | tuple) or x in listed}
        names = [x for x in pool if weights.get(x, 0.0) > MERGE_MIN_COEFFICIENT]
        return (sum(weights[x] for x in names), names, v, weights) if len(names) >= 2 else None

    def test(fp: Fingerprint, exclude: set[str]) -> tuple[float, list[str], Verdict] | None:
        pool = sorted({c.other(fp.label) for c in by_node[fp.label]
                       if c.verdict.relation in MERGEABLE and c.other(fp.label) not in exclude
                       and (c.fixed is None or c.fixed[1] == fp.label)}, key=order.__getitem__)
        r = fit(fp, pool) if len(pool) >= 2 else None
        # Backward elimination: relatives that are themselves combinations of the others share
        # the coefficients; drop the weakest while the rest still explain the model.
        while r is not None and len(r[1]) > 2:
            weights = r[3]
            weakest = min(r[1], key=lambda x: (weights[x], -order[x]))
            smaller = fit(fp, [x for x in r[1] if x != weakest])
            if smaller is None:
                break
            r = smaller
        if r is not None and len(r[1]) < len(pool):
            r = fit(fp, r[1]) or r                  # coefficients of the parents alone
        return None if r is None else r[:3]

    out: dict[str, tuple[list[str], Verdict]] = {}
    used: set[str] = set()             # parents of accepted merges
    while True:
        exclude = copies | set(out)
        found = [(r, fp.label) for fp in fps if fp.label not in exclude | used
                 and (r := test(fp, exclude)) is not None]
        if not found:
            return out
        (_, names, v), child = min(found, key=lambda x: (round(x[0][0], 6), order[x[1]]))
        out[child] = (names, v)
        used.update(names)


def _skeleton(cands: list[_Cand], labels: list[str], copies: set[str],
              merged: dict[str, tuple[list[str], Verdict]], order: dict[str, int]) -> list[_Cand]:
    """A maximum spanning forest over related pairs, closest first (Kruskal). Copies (the derived
    side of a same, converted, cast, quantized, pruned, extended or truncated pair) hang only
    from what they copy; a merge child is linked only to its own copies (its parents come from
    the merge test). A model has one origin: a pair that makes an already derived model derived
    again (e.g. a fine-tune within the error of a coarse quantization of the base, judged
    `quantized` from it) is left out."""
    sets = _Sets(labels)
    tree = []
    derived: set[str] = set()
    for c in sorted(cands, key=lambda c: _key(c, order)):
        if c.tier >= 2 and (c.a in copies or c.b in copies):
            continue
        if any(m in merged and not _copy_link(c, m) for m in (c.a, c.b)):
            continue
        if c.fixed is not None and c.fixed[1] in derived:
            continue
        if sets.join(c.a, c.b):
            tree.append(c)
            if c.fixed is not None:
                derived.add(c.fixed[1])
    return tree


def _copy_link(c: _Cand, m: str) -> bool:
    """A pair linking `m` to a copy of it: same values, or `m` fixed as the origin of a copy."""
    return (c.tier == 0 and c.fixed is None) or (c.tier <= 1 and c.fixed is not None and c.fixed[0] == m)


def _orient(tree: list[_Cand], labels: list[str], merged: dict[str, Any],
            order: dict[str, int]) -> list[Edge]:
    """Root each tree where the fewest pair directions are contradicted; then at its most
    central model, counting only changes (copies cost nothing); then the first named."""
    adj: dict[str, list[_Cand]] = {lab: [] for lab in labels}
    for c in tree:
        adj[c.a].append(c)
        adj[c.b].append(c)
    seen: set[str] = set()
    out: list[Edge] = []
    for start in labels:
        if start in seen:
            continue
        comp = _component(start, adj)
        seen.update(comp)
        if len(comp) == 1:
            continue
        best = min(comp, key=lambda r: _root_cost(r, comp, adj, merged, order))
        out.extend(_edges_from(best, adj))
    return out


def _component(start: str, adj: dict[str, list[_Cand]]) -> list[str]:
    comp, todo = [start], [start]
    found = {start}
    while todo:
        x = todo.pop()
        for c in adj[x]:
            y = c.other(x)
            if y not in found:
                found.add(y)
                comp.append(y)
                todo.append(y)
    return comp


def _walk(root: str, adj: dict[str, list[_Cand]]) -> list[tuple[str, str, _Cand, int]]:
    """(parent, child, pair, changes from the root) for every tree edge, from `root` down."""
    out: list[tuple[str, str, _Cand, int]] = []
    hops = {root: 0}
    todo = [root]
    while todo:
        x = todo.pop(0)
        for c in adj[x]:
            y = c.other(x)
            if y not in hops:
                hops[y] = hops[x] + (c.tier >= 2)
                out.append((x, y, c, hops[y]))
                todo.append(y)
    return out


def _root_cost(r: str, comp: list[str], adj: dict[str, list[_Cand]], merged: dict[str, Any],
               order: dict[str, int]) -> tuple[int, float, int, int, int]:
    against = 0.0
    soft = 0
    central = 0
    for parent, child, c, hops in _walk(r, adj):
        if c.tier >= 2:                    # count each family of copies once, at its head
            central += hops
        if c.fixed is not None and c.fixed != (parent, child):
            against += c.verdict.confidence
        elif c.fixed is None and c.tier == 0 and parent != c.a:
            soft += 1                      # same values: the first named is drawn as the origin
    # a merge child takes its parents from the merge test: it must head its own tree
    merge_below = int(r not in merged and any(x in merged for x in comp))
    return (merge_below, round(against, 6), central, soft, order[r])


def _edges_from(root: str, adj: dict[str, list[_Cand]]) -> list[Edge]:
    return [c.edge(parent, child) for parent, child, c, _ in _walk(root, adj)]


def _descendants(label: str, edges: list[Edge]) -> set[str]:
    kids: dict[str, list[str]] = {}
    for e in edges:
        kids.setdefault(e.parent, []).append(e.child)
    seen: set[str] = set()
    todo = list(kids.get(label, ()))
    while todo:
        x = todo.pop()
        if x not in seen:
            seen.add(x)
            todo.extend(kids.get(x, ()))
    return seen


__all__ = ["Edge", "Forest", "Node", "candidate_pairs", "infer_forest"]
