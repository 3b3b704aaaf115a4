"""`assay id` output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assay.analyses.identity import Identity, Verification

SCHEMA = "assay.id/1"
VERIFY_SCHEMA = "assay.verify/1"

if TYPE_CHECKING:      # rich is imported only for text output: JSON output starts faster
    from rich.console import Group
    from rich.text import Text


def to_json(path: str, ident: Identity, tensors: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {"schema": SCHEMA, "path": path, "content_identity": ident.content,
                           "named_identity": ident.named, "tensor_count": len(ident.tensors),
                           "parameters": ident.parameters, "bytes": ident.bytes}
    if tensors:
        doc["tensors"] = [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape), "digest": t.text}
                          for t in ident.tensors]
    return doc


def to_text(path: str, ident: Identity, tensors: bool) -> Group:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    head = Text()
    head.append(f"{path}\n", style="bold")
    head.append(f"content  {ident.content}\n")
    head.append(f"named    {ident.named}\n")
    head.append(f"tensors  {len(ident.tensors)}, parameters {ident.parameters:,}")
    parts: list[Any] = [head]
    if tensors:
        t = Table(show_edge=False, pad_edge=False)
        for col in ("name", "dtype", "shape", "digest"):
            t.add_column(col)
        for d in ident.tensors:
            t.add_row(Text(d.name), d.dtype, "x".join(map(str, d.shape)) or "scalar", d.text)
        parts.append(t)
    return Group(*parts)


def verification_json(path: str, manifest: str, v: Verification) -> dict[str, Any]:
    return {"schema": VERIFY_SCHEMA, "path": path, "manifest": manifest, "status": v.status,
            "expected": v.expected, "actual": v.actual, "missing": list(v.missing),
            "extra": list(v.extra), "changed": list(v.changed)}


def verification_text(path: str, v: Verification) -> Text:
    from rich.text import Text

    words = {"identical": "verified: identical tensors and names",
             "same-content": "verified: same tensor contents (names or layout differ)",
             "different": "MISMATCH: the weights differ from the manifest"}
    out = Text(f"{path}: {words[v.status]}\n")
    if v.status == "different":
        out.append(f"  expected {v.expected}\n  actual   {v.actual}\n")
        for label, names in (("changed", v.changed), ("missing", v.missing), ("extra", v.extra)):
            for n in names[:50]:
                out.append(f"  {label}: {n}\n")
            if len(names) > 50:
                out.append(f"  ... and {len(names) - 50} more {label}\n")
    return out
