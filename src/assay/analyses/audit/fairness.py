"""Classifier outcome fairness with fairlearn's metrics (the audit extra).

Inputs are arrays: true labels, predictions and the sensitive feature; labels are made binary by
a positive label. Per group: count, selection rate, true and false positive rates, accuracy;
overall: demographic parity difference and ratio, equalized odds difference, accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from assay.errors import MissingDependencyError, UsageError


@dataclass(frozen=True)
class GroupRates:
    group: str
    count: int
    selection_rate: float
    true_positive_rate: float
    false_positive_rate: float
    accuracy: float


@dataclass(frozen=True)
class FairnessReport:
    predictions: str                      # where the predictions came from
    positive: str
    groups: tuple[GroupRates, ...]
    demographic_parity_difference: float
    demographic_parity_ratio: float
    equalized_odds_difference: float
    accuracy: float


def _label(v: Any) -> str:
    """A label as text, with 1, 1.0 and "1" the same label."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v).strip()
    return str(int(f)) if f.is_integer() else repr(f)


def _binary(values: Sequence[Any], positive: str) -> Any:
    import numpy as np
    pos = _label(positive)
    return np.array([1 if _label(v) == pos else 0 for v in values], dtype=np.int64)


def fairness(y_true: Sequence[Any], y_pred: Sequence[Any], sensitive: Sequence[Any], *,
             positive: str = "1", predictions: str = "column") -> FairnessReport:
    """fairlearn's group metrics for binary predictions; `positive` names the positive label."""
    import importlib.util
    if importlib.util.find_spec("fairlearn") is None:
        raise MissingDependencyError(None, "fairlearn not installed: fairness metrics need the audit "
                                     "extra (pip install 'assay[audit]')")
    import numpy as np
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score

    if not (len(y_true) == len(y_pred) == len(sensitive)) or not len(y_true):
        raise UsageError(None, "labels, predictions and the sensitive column need the same, non-zero length")
    yt, yp = _binary(y_true, positive), _binary(y_pred, positive)
    groups = np.array([str(s) for s in sensitive])
    frame = MetricFrame(metrics={"selection_rate": selection_rate, "tpr": true_positive_rate,
                                 "fpr": false_positive_rate, "accuracy": accuracy_score,
                                 "count": lambda t, p: len(t)},
                        y_true=yt, y_pred=yp, sensitive_features=groups)
    table = frame.by_group
    rows = tuple(GroupRates(str(g), int(table.loc[g, "count"]), float(table.loc[g, "selection_rate"]),
                            float(table.loc[g, "tpr"]), float(table.loc[g, "fpr"]),
                            float(table.loc[g, "accuracy"])) for g in sorted(table.index, key=str))
    return FairnessReport(
        predictions, positive, rows,
        float(demographic_parity_difference(yt, yp, sensitive_features=groups)),
        float(demographic_parity_ratio(yt, yp, sensitive_features=groups)),
        float(equalized_odds_difference(yt, yp, sensitive_features=groups)),
        float(accuracy_score(yt, yp)))
