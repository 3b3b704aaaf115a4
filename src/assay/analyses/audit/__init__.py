"""`assay audit`: association tests (WEAT, SEAT) on one model or two, and outcome fairness.

Pure: inputs are embedding functions, vectors and label arrays; outputs are frozen values."""

from assay.analyses.audit.stimuli import (
    AssociationTest,
    WordSet,
    neutral_sentences,
    parse_tests,
    seat_templates,
    select,
    weat_tests,
)
from assay.analyses.audit.weat import (
    AuditReport,
    Comparison,
    Drift,
    Embedder,
    Settings,
    Shift,
    TestResult,
    audit,
    compare,
    drift,
    run_test,
)

__all__ = ["AssociationTest", "AuditReport", "Comparison", "Drift", "Embedder", "Settings", "Shift",
           "TestResult", "WordSet", "audit", "compare", "drift", "neutral_sentences", "parse_tests",
           "run_test", "seat_templates", "select", "weat_tests"]
