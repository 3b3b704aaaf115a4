"""`assay scan`: judge what a reader recorded about a file; never read or run the file here.

`judge` turns one file's observations (or its reading error) into a `FileScan`; the runner
that opens files, in parallel and under budgets, lives in `assay.api`. The result types are
imported with the package; the rules, the policy and `judge` when first asked for, so that a
process that only collects results (the scan's parent) never imports them.
"""

from __future__ import annotations

from assay._lazy import lazy_names
from assay.analyses.scan.model import DEFAULT_POLICY_NAME, FileScan, Finding, ScanReport, severity_rank

__all__ = ["CATALOG", "DEFAULT_POLICY_NAME", "FileScan", "Finding", "Policy", "ScanReport",
           "default_policy", "judge", "severity_rank"]

__getattr__, __dir__ = lazy_names(__name__, globals(), {
    "CATALOG": "assay.analyses.scan.catalog", "Context": "assay.analyses.scan.rules",
    "Policy": "assay.analyses.scan.policy", "default_policy": "assay.analyses.scan.policy",
    "judge": "assay.analyses.scan.judging"})
