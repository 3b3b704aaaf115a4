"""Scan results: frozen values, rendered elsewhere."""

from __future__ import annotations

from dataclasses import dataclass, field

from assay.model.artifact import Location

SEVERITIES = ("critical", "high", "medium", "low", "info")
DEFAULT_POLICY_NAME = "default"     # the name of the policy shipped in assay/data/policy.toml


def severity_rank(s: str) -> int:
    return SEVERITIES.index(s) if s in SEVERITIES else len(SEVERITIES)


@dataclass(frozen=True)
class Finding:
    """One judgement of a rule: rule ID, severity, message, where."""
    rule: str
    severity: str
    message: str
    location: Location
    count: int = 1          # identical events folded into one finding


@dataclass(frozen=True)
class FileScan:
    """The scan of one file: its findings, or why it could not be read or was skipped."""
    path: str
    format: str | None                 # reader name, None when no reader recognised the file
    findings: tuple[Finding, ...] = ()
    error: str | None = None           # one line when the file could not be fully read
    rule_errors: tuple[str, ...] = ()  # rules that crashed on this file (the scan went on)
    seconds: float = 0.0
    skipped: str | None = None         # not a model file (found in a folder), with the reason

    def to_wire(self) -> tuple:
        """As plain values (tuples, strings, numbers), to pass between processes."""
        return (self.path, self.format, tuple((f.rule, f.severity, f.message, f.location.file,
                                               f.location.member, f.location.offset, f.count)
                                              for f in self.findings),
                self.error, self.rule_errors, self.seconds, self.skipped)

    @classmethod
    def from_wire(cls, t: tuple) -> FileScan:
        path, fmt, findings, error, rule_errors, seconds, skipped = t
        return cls(path, fmt, tuple(Finding(r, sev, msg, Location(file, member, offset), count)
                                    for r, sev, msg, file, member, offset, count in findings),
                   error, tuple(rule_errors), seconds, skipped)

    @property
    def status(self) -> str:
        """"findings" | "error" | "skipped" | "clean" (never a truth value meaning "safe")."""
        if self.findings:
            return "findings"
        if self.error or self.rule_errors:
            return "error"
        return "skipped" if self.skipped else "clean"


@dataclass(frozen=True)
class ScanReport:
    """The scan of every file asked for, in order, with totals."""
    files: tuple[FileScan, ...]
    policy: str = "default"
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for s in self.files for f in s.findings)

    @property
    def errors(self) -> tuple[FileScan, ...]:
        return tuple(s for s in self.files if s.error or s.rule_errors)
