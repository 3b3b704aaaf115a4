"""`assay scan` output: a table for people, `assay.scan/1` JSON, and SARIF 2.1.0 for CI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assay.analyses.scan.catalog import CATALOG
from assay.analyses.scan.model import FileScan, Finding, ScanReport

SCHEMA = "assay.scan/1"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}
DOCS = "docs/rules/{}.md"

if TYPE_CHECKING:      # rich only for text output: JSON and SARIF runs start faster
    from rich.console import Group


def _finding(f: Finding) -> dict[str, Any]:
    return {"rule": f.rule, "severity": f.severity, "family": CATALOG.get(f.rule, ("?",))[0],
            "message": f.message, "file": f.location.file, "member": f.location.member,
            "offset": f.location.offset, "count": f.count}


def _file(s: FileScan) -> dict[str, Any]:
    return {"path": s.path, "format": s.format, "status": s.status,
            "findings": [_finding(f) for f in s.findings], "error": s.error,
            "rule_errors": list(s.rule_errors), "skipped": s.skipped}


def to_json(r: ScanReport) -> dict[str, Any]:
    return {"schema": SCHEMA, "policy": r.policy, "totals": r.totals, "files": [_file(s) for s in r.files]}


def to_text(r: ScanReport, show_clean: bool = False) -> Group:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    t = Table(show_edge=False, pad_edge=False, expand=False)
    for col in ("file", "status", "rule", "severity", "finding"):
        t.add_column(col, overflow="fold")
    for s in r.files:
        if s.status in ("clean", "skipped") and not show_clean:
            continue
        if s.findings:
            for i, f in enumerate(s.findings):
                where = f.location.member or ""
                if f.location.offset is not None:
                    where += f"@{f.location.offset}"
                msg = f.message + (f" [{where}]" if where else "") + (f" (x{f.count})" if f.count > 1 else "")
                t.add_row(Text(s.path if i == 0 else ""), "findings" if i == 0 else "", f.rule,
                          Text(f.severity, style=STYLE.get(f.severity, "")), Text(msg))
        if s.error or s.rule_errors:
            t.add_row(Text(s.path if not s.findings else ""), "error", "", "",
                      Text("; ".join(filter(None, [s.error, *s.rule_errors]))))
        if s.status in ("clean", "skipped"):
            t.add_row(Text(s.path), s.status, "", "", Text(s.skipped or ""))
    tot = r.totals
    clean = tot.get("files", 0) - sum(1 for s in r.files if s.status != "clean")
    summary = Text(f"{tot.get('files', 0)} files: {sum(1 for s in r.files if s.findings)} with findings "
                   f"({tot.get('findings', 0)} findings), {tot.get('errors', 0)} errors, "
                   f"{tot.get('skipped', 0)} skipped, {clean} clean")
    return Group(t, summary) if t.row_count else Group(summary)


def to_sarif(r: ScanReport, version: str) -> dict[str, Any]:
    used = sorted({f.rule for f in r.findings} | set(CATALOG))
    rules = []
    for rid in used:
        family, severity, title = CATALOG.get(rid, ("other", "medium", rid))
        rules.append({"id": rid, "name": title.replace(" ", ""), "shortDescription": {"text": title},
                      "help": {"text": f"See {DOCS.format(rid)} in the assay source."},
                      "defaultConfiguration": {"level": SARIF_LEVEL.get(severity, "warning")},
                      "properties": {"family": family, "severity": severity}})
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    results = []
    for s in r.files:
        for f in s.findings:
            region: dict[str, Any] = {}
            if f.location.offset is not None:
                region = {"byteOffset": f.location.offset}
            loc: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": _uri(f.location.file)}}}
            if region:
                loc["physicalLocation"]["region"] = region
            if f.location.member:
                loc["logicalLocations"] = [{"name": f.location.member, "kind": "member"}]
            results.append({"ruleId": f.rule, "ruleIndex": index[f.rule],
                            "level": SARIF_LEVEL.get(f.severity, "warning"),
                            "message": {"text": f.message}, "locations": [loc],
                            "properties": {"severity": f.severity, "count": f.count}})
    notifications = [{"level": "error", "message": {"text": s.error or "; ".join(s.rule_errors)},
                      "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(s.path)}}}]}
                     for s in r.files if s.error or s.rule_errors]
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "assay", "version": version, "rules": rules}},
        "results": results,
        "invocations": [{"executionSuccessful": not notifications,
                         "toolExecutionNotifications": notifications}],
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def _uri(path: str) -> str:
    from urllib.parse import quote
    return quote(path.replace("\\", "/"))
