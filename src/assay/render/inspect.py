"""`assay inspect` output: a versioned JSON document and a text view for people."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assay.analyses.summary import Summary, TensorInfo

if TYPE_CHECKING:
    from rich.console import Group
    from rich.table import Table

MAX_OBSERVATIONS = 1000   # listed in the JSON document; `observation_counts` has them all

SCHEMA = "assay.inspect/1"


def _tensor(t: TensorInfo) -> dict[str, Any]:
    return {"name": t.name, "dtype": t.dtype, "shape": list(t.shape), "parameters": t.parameters,
            "bytes": t.bytes, "file": t.file, "member": t.member, "offset": t.offset}


def to_json(s: Summary) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "path": s.path,
        "format": s.format,
        "files": list(s.files),
        "tensor_count": s.tensor_count,
        "parameters": s.parameters,
        "bytes": s.bytes,
        "dtypes": {k: {"tensors": v.tensors, "parameters": v.parameters, "bytes": v.bytes}
                   for k, v in s.dtypes.items()},
        "largest": [_tensor(t) for t in s.largest],
        "metadata": s.metadata,
        "observation_counts": s.observation_counts,
        "observations": [
            {"kind": o.kind, "detail": o.detail, "file": o.location.file,
             "member": o.location.member, "offset": o.location.offset}
            for o in s.observations[:MAX_OBSERVATIONS]],
    }
    if len(s.observations) > MAX_OBSERVATIONS:
        doc["observations_omitted"] = len(s.observations) - MAX_OBSERVATIONS
    if s.tensors:
        doc["tensors"] = [_tensor(t) for t in s.tensors]
    return doc


def human(n: int) -> str:
    for unit, size in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def _tensor_table(title: str, rows: tuple[TensorInfo, ...]) -> Table:
    from rich.table import Table
    t = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for col, just in (("name", "left"), ("dtype", "left"), ("shape", "left"),
                      ("parameters", "right"), ("bytes", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    from rich.text import Text
    for r in rows:
        t.add_row(Text(r.name), r.dtype, "x".join(map(str, r.shape)) or "scalar", human(r.parameters),
                  human_bytes(r.bytes))
    return t


def to_text(s: Summary) -> Group:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    head = Text()
    head.append(f"{s.path}\n", style="bold")
    head.append(f"format      {s.format}\n")
    head.append(f"files       {len(s.files)}\n")
    head.append(f"tensors     {s.tensor_count}\n")
    head.append(f"parameters  {s.parameters:,} ({human(s.parameters)})\n")
    head.append(f"bytes       {s.bytes:,} ({human_bytes(s.bytes)})")
    parts: list[Any] = [head]
    if s.dtypes:
        dt = Table(title="dtypes", title_justify="left", show_edge=False, pad_edge=False)
        for col in ("dtype", "tensors", "parameters", "bytes"):
            dt.add_column(col, justify="left" if col == "dtype" else "right")
        for k, v in s.dtypes.items():
            dt.add_row(Text(k), str(v.tensors), human(v.parameters), human_bytes(v.bytes))
        parts.append(dt)
    if s.largest:
        parts.append(_tensor_table("largest tensors", s.largest))
    if s.metadata:
        meta = Text("metadata\n", style="bold")
        for section, value in s.metadata.items():
            meta.append(f"  {section}: {_short(value)}\n")
        parts.append(meta)
    if s.observation_counts:
        obs = Text("observations\n", style="bold")
        for k, v in s.observation_counts.items():
            obs.append(f"  {k}: {v}\n")
        imports = sorted({o.detail for o in s.observations if o.kind == "pickle.import"})
        if imports:
            shown = ", ".join(imports[:12]) + (f", ... ({len(imports)} in all)" if len(imports) > 12 else "")
            obs.append(f"  pickle imports: {shown}\n")
        parts.append(obs)
    if s.tensors:
        parts.append(_tensor_table("all tensors", s.tensors))
    return Group(*parts)


def _short(value: Any, limit: int = 160) -> str:
    if isinstance(value, dict):
        text = ", ".join(f"{k}={_short(v, 40)}" for k, v in value.items())
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
