"""`assay diff` output: a rich tree for people, `assay.diff/1` JSON for programs."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.tree import Tree

from assay.analyses.diff import DiffResult, TensorChange

SCHEMA = "assay.diff/1"


def _visible(changes: tuple[TensorChange, ...], only_changed: bool) -> list[TensorChange]:
    return [c for c in changes if not only_changed or c.kind != "same" or c.status != "identical"]


def to_json(r: DiffResult, only_changed: bool = False) -> dict[str, Any]:
    def one(c: TensorChange) -> dict[str, Any]:
        d = asdict(c)
        d["shape_a"] = list(c.shape_a) if c.shape_a is not None else None
        d["shape_b"] = list(c.shape_b) if c.shape_b is not None else None
        return d
    return {"schema": SCHEMA, "a": r.a, "b": r.b, "relation": r.relation, "summary": r.summary,
            "details": r.details, "changes": [one(c) for c in _visible(r.changes, only_changed)]}


def _esc(text: str | None) -> str:
    """Names come from files: never let them be read as rich markup."""
    from rich.markup import escape
    return escape(text or "")


def describe(c: TensorChange) -> str:
    if c.status == "added":
        return f"[green]+ {_esc(c.b)}[/] {c.dtype_b} {_shape(c.shape_b)}"
    if c.status == "removed":
        return f"[red]- {_esc(c.a)}[/] {c.dtype_a} {_shape(c.shape_a)}"
    name = _esc(c.b) if c.a == c.b else f"{_esc(c.a)} -> {_esc(c.b)}"
    parts = [c.kind]
    if c.dtype_a != c.dtype_b:
        parts.append(f"{c.dtype_a} -> {c.dtype_b}")
    if c.shape_a != c.shape_b:
        parts.append(f"{_shape(c.shape_a)} -> {_shape(c.shape_b)}")
    s = c.stats
    if s is not None and c.kind != "same":
        parts.append(f"cos {s.cosine:.6f}, rel L2 {s.rel_l2:.2e}, max |d| {s.max_abs:.3g}, "
                     f"{s.changed:.1%} changed")
        if s.new_zeros:
            parts.append(f"{s.new_zeros:.1%} newly zero")
        if s.rank is not None:
            parts.append(f"rank-{s.rank} update")
    style = "dim" if c.kind == "same" else "yellow"
    return f"[{style}]{name}[/]: " + "; ".join(parts)


def _shape(shape: tuple[int, ...] | None) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


def to_tree(r: DiffResult, max_depth: int = 1, only_changed: bool = False) -> Tree:
    root = Tree(f"[bold]{_esc(r.a)}[/] -> [bold]{_esc(r.b)}[/]: [bold]{r.relation}[/] ({_esc(r.summary)})")
    nodes: dict[tuple[str, ...], Tree] = {(): root}
    counts: dict[tuple[str, ...], list[int]] = {}
    items = _visible(r.changes, only_changed)
    for c in items:
        segs = tuple(c.name.split("."))[:max(0, max_depth)]
        segs = segs if len(segs) < len(c.name.split(".")) else segs[:-1]
        for i in range(1, len(segs) + 1):
            key = segs[:i]
            counts.setdefault(key, [0, 0])
            counts[key][0] += 1
            counts[key][1] += c.kind != "same" or c.status != "identical"
    for c in items:
        segs = tuple(c.name.split("."))[:max(0, max_depth)]
        segs = segs if len(segs) < len(c.name.split(".")) else segs[:-1]
        parent = root
        for i in range(1, len(segs) + 1):
            key = segs[:i]
            if key not in nodes:
                total, changed = counts[key]
                label = f"{_esc('.'.join(key))} [dim]({changed} of {total} renamed or changed)[/]"
                nodes[key] = nodes[key[:-1]].add(label)
            parent = nodes[key]
        parent.add(describe(c))
    return root
