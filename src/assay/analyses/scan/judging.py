"""Judging one file: every rule over what its reader recorded, findings folded and capped."""

from __future__ import annotations

from assay.analyses.scan import rules
from assay.analyses.scan.model import FileScan, Finding, severity_rank
from assay.analyses.scan.policy import Policy, default_policy
from assay.analyses.scan.rules import Context
from assay.model.artifact import Location, Observation


def judge(path: str, fmt: str | None, observations: list[Observation] | tuple[Observation, ...],
          policy: Policy | None = None, error: str | None = None, error_kind: str | None = None,
          seconds: float = 0.0) -> FileScan:
    """Run every rule over one file's observations; a crashing rule is recorded, not raised."""
    ctx = Context(path, fmt, tuple(observations), policy or default_policy(), error, error_kind)
    findings: list[Finding] = []
    crashed: list[str] = []
    for r in rules.RULES:
        try:
            findings.extend(r.check(ctx))
        except Exception as exc:  # a rule bug must not stop the scan of other rules or files
            crashed.append(f"{r.id}: {type(exc).__name__}: {exc}")
    return FileScan(path, fmt, tuple(_fold(findings)), error, tuple(crashed), seconds)


def _fold(findings: list[Finding]) -> list[Finding]:
    """Fold identical findings (same rule, message, file and member) into one with a count."""
    seen: dict[tuple, Finding] = {}
    for f in findings:
        key = (f.rule, f.message, f.location.file, f.location.member)
        if key in seen:
            old = seen[key]
            seen[key] = Finding(old.rule, old.severity, old.message, old.location, old.count + 1)
        else:
            seen[key] = f
    out = sorted(seen.values(), key=lambda f: (severity_rank(f.severity), f.rule,
                                                f.location.member or "", f.location.offset or 0))
    return _cap(out)


MAX_PER_RULE = 20      # findings listed per rule and file; the rest are counted in one more


def _cap(findings: list[Finding]) -> list[Finding]:
    """An archive of 4,000 crafted members is one problem, not 4,000 lines: list the first
    MAX_PER_RULE findings of each rule in a file and count the rest in a final one."""
    kept: list[Finding] = []
    extra: dict[str, list[Finding]] = {}
    listed: dict[str, int] = {}
    for f in findings:
        if listed.get(f.rule, 0) < MAX_PER_RULE:
            listed[f.rule] = listed.get(f.rule, 0) + 1
            kept.append(f)
        else:
            extra.setdefault(f.rule, []).append(f)
    for rule_id, rest in extra.items():
        first = rest[0]
        kept.append(Finding(rule_id, first.severity, f"{sum(f.count for f in rest)} more findings of "
                            f"{rule_id} in this file, not listed", Location(first.location.file),
                            sum(f.count for f in rest)))
    return kept
