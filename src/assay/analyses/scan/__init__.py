"""`assay scan`: judge what a reader recorded about a file; never read or run the file here.

`judge` turns one file's observations (or its reading error) into a `FileScan`; the runner
that opens files, in parallel and under budgets, lives in `assay.api`. The result types are
imported with the package; the rules, the policy and `judge` when first asked for, so that a
process that only collects results (the scan's parent) never imports them.
"""

from __future__ import annotations

from typing import Any

from assay.analyses.scan.model import DEFAULT_POLICY_NAME, FileScan, Finding, ScanReport, severity_rank

__all__ = ["CATALOG", "DEFAULT_POLICY_NAME", "FileScan", "Finding", "Policy", "ScanReport",
           "default_policy", "judge", "severity_rank"]

_LAZY = {"CATALOG": "catalog", "Context": "rules", "Policy": "policy", "default_policy": "policy",
         "judge": "judging"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(f"assay.analyses.scan.{_LAZY[name]}"), name)
        globals()[name] = value          # asked once: a plain module attribute from now on
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
