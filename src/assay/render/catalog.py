"""`assay catalog` output: text for people, `assay.catalog/1` JSON for programs.

Pure functions. Times of addition appear only when asked for (`times=True`), so the default
output of the same catalog is the same from run to run. The graph is drawn by
`render.lineage` (a `Forest`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from assay.catalog import Added, Entry, FindResult, Link, Match, Removed
from assay.render.lineage import human, verdict_json

SCHEMA = "assay.catalog/1"


def entry_json(e: Entry, times: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"id": e.id, "label": e.label, "content_id": e.content_id,
                           "named_id": e.named_id, "format": e.format, "parameters": e.parameters,
                           "declared": e.declared, "fingerprint": e.fp_version}
    if times:
        out["added_at"] = e.added_at.isoformat()
    return out


def _link_json(link: Link) -> dict[str, Any]:
    return {"parent": link.parent.label, "child": link.child.label, "parent_id": link.parent.id,
            "child_id": link.child.id, "relation": link.relation, "directed": link.directed,
            "confidence": round(link.confidence, 6), "summary": link.summary}


def add_to_json(catalog: str, added: Sequence[Added], times: bool = False) -> dict[str, Any]:
    return {"schema": SCHEMA, "kind": "add", "catalog": catalog,
            "models": [{**entry_json(a.entry, times), "created": a.created,
                        "relations": [_link_json(x) for x in a.links]} for a in added]}


def _other(link: Link, e: Entry) -> tuple[str, str]:
    """(how `e` stands to the other side, the other side's label)."""
    if not link.directed:
        other = link.child if link.parent.id == e.id else link.parent
        return f"{link.relation} (undirected) with", other.label
    if link.child.id == e.id:
        return f"{link.relation} from", link.parent.label
    return f"origin ({link.relation}) of", link.child.label


def add_to_text(catalog: str, added: Sequence[Added]) -> Group:
    lines: list[Any] = []
    for a in added:
        e = a.entry
        if not a.created:
            lines.append(Text(f"already catalogued: {e.label} ({e.content_id})"))
            continue
        lines.append(Text.from_markup(f"[bold]added[/] {escape(e.label)} [dim]({e.content_id}, "
                                      f"{e.format}, {human(e.parameters)} parameters)[/]"))
        for link in a.links:
            how, other = _other(link, e)
            lines.append(Text(f"  {how} {other}  {link.confidence:.2f}  {link.summary}"))
    new = sum(a.created for a in added)
    lines.append(Text(f"{new} added, {len(added) - new} already present; catalog {catalog}", style="dim"))
    return Group(*lines)


_ROLE = {"parent": "query derives from it", "child": "derives from the query", "peer": "undirected"}


def _match_json(m: Match) -> dict[str, Any]:
    return {"entry": entry_json(m.entry), "relation": m.verdict.relation, "role": m.role,
            "confidence": round(float(m.verdict.confidence), 6), "shared_keys": m.shared_keys,
            "verdict": verdict_json(m.verdict)}


def find_to_json(catalog: str, r: FindResult) -> dict[str, Any]:
    return {"schema": SCHEMA, "kind": "find", "catalog": catalog, "query": r.query,
            "content_id": r.content_id, "catalogued": r.catalogued, "candidates": r.candidates,
            "matches": [_match_json(m) for m in r.matches]}


def find_to_text(catalog: str, r: FindResult) -> Group:
    head = Text(f"{r.query}: {len(r.matches)} relatives among {r.catalogued} catalogued models "
                f"({r.candidates} candidates from the index judged); catalog {catalog}")
    if not r.matches:
        return Group(head, Text("no related model in the catalog", style="dim"))
    t = Table(show_edge=False, pad_edge=False)
    for col in ("relation", "confidence", "direction", "label", "content id", "summary"):
        t.add_column(col, no_wrap=col != "summary")
    for m in r.matches:
        v = m.verdict
        t.add_row(v.relation, f"{v.confidence:.2f}", _ROLE[m.role], escape(m.entry.label),
                  m.entry.content_id.split(":")[-1][:16], escape(v.summary))
    return Group(head, t)


def remove_to_json(catalog: str, removed: Sequence[Removed], missing: Sequence[str]) -> dict[str, Any]:
    return {"schema": SCHEMA, "kind": "remove", "catalog": catalog,
            "removed": [{**entry_json(r.entry), "relations": r.relations} for r in removed],
            "not_catalogued": list(missing)}


def remove_to_text(catalog: str, removed: Sequence[Removed], missing: Sequence[str]) -> Group:
    lines: list[Any] = [Text(f"removed from {catalog}: {r.entry.label} ({r.entry.content_id}), "
                             f"{r.relations} relation{'s' if r.relations != 1 else ''}")
                        for r in removed]
    lines += [Text(f"not in {catalog}: {t}") for t in missing]
    return Group(*lines)


def list_to_json(catalog: str, entries: Sequence[Entry], times: bool = False) -> dict[str, Any]:
    return {"schema": SCHEMA, "kind": "list", "catalog": catalog,
            "models": [entry_json(e, times) for e in entries]}


def list_to_text(catalog: str, entries: Sequence[Entry], times: bool = False) -> Group:
    head = Text(f"{len(entries)} models in catalog {catalog}")
    if not entries:
        return Group(head)
    t = Table(show_edge=False, pad_edge=False)
    cols = ["id", "label", "format", "parameters", "content id"] + (["added"] if times else [])
    for col in cols:
        t.add_column(col, no_wrap=True)
    for e in entries:
        row = [str(e.id), escape(e.label), e.format, human(e.parameters), e.content_id.split(":")[-1][:16]]
        t.add_row(*row, *([e.added_at.isoformat(timespec="seconds")] if times else []))
    return Group(head, t)
