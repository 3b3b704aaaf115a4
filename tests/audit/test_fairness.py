"""Outcome fairness: fairlearn's metrics on a hand-checked toy set; predictions from a column, from
scikit-learn models evaluated from their fitted arrays (never unpickled), and from ONNX."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from assay import api
from assay.errors import UnsupportedError
from assay.render.audit import fairness_json

pytest.importorskip("fairlearn", reason="the audit extra is not installed")

# group a: 4 rows, group b: 6 rows (see the hand computation in the test)
TOY = {"group": list("aaaabbbbbb"), "label": [1, 1, 0, 0, 1, 0, 0, 0, 1, 1],
       "pred": [1, 0, 1, 0, 1, 1, 0, 0, 0, 0]}


def _csv(path: Path, columns: dict[str, list]) -> Path:
    names = list(columns)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(names)
        w.writerows(zip(*(columns[n] for n in names), strict=True))
    return path


def test_toy_set_by_hand_and_by_fairlearn(tmp_path: Path) -> None:
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
    r = api.audit_fairness(str(_csv(tmp_path / "toy.csv", TOY)), "label", "group", prediction="pred")
    a, b = r.groups
    # a: selects 2 of 4; of its 2 positives finds 1; of its 2 negatives flags 1; 2 of 4 right
    assert (a.group, a.count, a.selection_rate, a.true_positive_rate, a.false_positive_rate, a.accuracy) \
        == ("a", 4, 0.5, 0.5, 0.5, 0.5)
    # b: selects 2 of 6; finds 1 of 3 positives; flags 1 of 3 negatives; 3 of 6 right
    assert (b.count, b.accuracy) == (6, 0.5)
    assert b.selection_rate == pytest.approx(1 / 3) and b.true_positive_rate == pytest.approx(1 / 3)
    assert b.false_positive_rate == pytest.approx(1 / 3)
    assert r.demographic_parity_difference == pytest.approx(1 / 6)
    assert r.demographic_parity_ratio == pytest.approx(2 / 3)
    assert r.equalized_odds_difference == pytest.approx(1 / 6)
    assert r.accuracy == 0.5
    g = np.array(TOY["group"])
    assert r.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(TOY["label"], TOY["pred"], sensitive_features=g))
    assert r.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(TOY["label"], TOY["pred"], sensitive_features=g))
    assert fairness_json(r)["schema"] == "assay.fairness/1"


def _data(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    group = rng.choice(["f", "m"], size=n)
    y = ((x[:, 0] + 0.7 * x[:, 1] - 0.3 * x[:, 2] + (group == "m") * 0.4 + rng.normal(0, 0.3, n)) > 0)
    return x, y.astype(int), group


@pytest.mark.parametrize("kind", ["logistic", "tree", "forest"])
def test_sklearn_predictions_from_arrays_equal_sklearn(tmp_path: Path, kind: str) -> None:
    joblib = pytest.importorskip("joblib")
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    from assay.runtime.sklearn_models import from_artifact
    x, y, group = _data()
    model = {"logistic": LogisticRegression(), "tree": DecisionTreeClassifier(max_depth=6, random_state=0),
             "forest": RandomForestClassifier(n_estimators=7, max_depth=5, random_state=0)}[kind].fit(x, y)
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    xt, _, _ = _data(500, seed=1)
    ours = from_artifact(api.open_model(str(path))).predict(xt)
    np.testing.assert_array_equal(ours, model.predict(xt))
    # the same model through the fairness path, against fairlearn on sklearn's own predictions
    from fairlearn.metrics import demographic_parity_difference
    cols = {f"x{i}": list(x[:, i]) for i in range(4)} | {"label": list(y), "group": list(group)}
    r = api.audit_fairness(str(_csv(tmp_path / "d.csv", cols)), "label", "group", model=str(path))
    assert r.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(y, model.predict(x), sensitive_features=group))


def test_onnx_classifier(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper, save

    from assay.runtime.onnx_model import OnnxClassifier
    w = np.array([[1.0], [0.7], [-0.3], [0.0]], dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["s"]), helper.make_node("Sigmoid", ["s"], ["p"])],
        "logit", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, [None, 1])], [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "model.onnx"
    save(model, str(path))
    x, y, group = _data()
    expect = ((x @ w.astype(np.float64))[:, 0] > 0).astype(int)
    np.testing.assert_array_equal(OnnxClassifier(str(path)).predict(x), expect)
    cols = {f"x{i}": list(x[:, i]) for i in range(4)} | {"label": list(y), "group": list(group)}
    r = api.audit_fairness(str(_csv(tmp_path / "d.csv", cols)), "label", "group", model=str(path))
    assert r.predictions.startswith("ONNX")
    model.opset_import.append(helper.make_opsetid("com.evil", 1))
    save(model, str(path))
    with pytest.raises(UnsupportedError, match="custom operator domain"):
        OnnxClassifier(str(path))


def test_cli_fairness_json(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys
    path = _csv(tmp_path / "toy.csv", TOY)
    r = subprocess.run([sys.executable, "-m", "assay.cli.main", "audit", "--data", str(path),
                        "--prediction", "pred", "--format", "json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "assay.fairness/1"
    assert doc["demographic_parity_difference"] == pytest.approx(1 / 6, abs=1e-6)   # rounded to 6 places
