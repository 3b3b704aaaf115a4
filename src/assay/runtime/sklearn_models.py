"""scikit-learn classifiers evaluated from their fitted arrays, never unpickled.

assay's joblib/pickle reader turns an estimator's fitted arrays into tensors (`coef_`,
`intercept_`, `classes_`, `tree_.nodes.*`, `tree_.values`, `estimators_.<i>.tree_.*`) and names
its class in `metadata["sklearn"]`. From those this module predicts as scikit-learn does:

- linear classifiers: scores `X @ coef_.T + intercept_`; two classes: `classes_[score > 0]`,
  more: `classes_[argmax]`;
- decision trees: from node 0, go to `left_child` while `X[feature] <= threshold` (X as float32,
  as scikit-learn compares), else `right_child`, until a leaf (`left_child == -1`); a NaN goes
  where `missing_go_to_left` says; the class is the argmax of the leaf's `values`;
- random forests / extra trees: the mean of the trees' normalised leaf values, then argmax.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from assay.errors import UnsupportedError
from assay.model.artifact import ModelArtifact

if TYPE_CHECKING:
    import numpy as np

LINEAR = {"LogisticRegression", "LogisticRegressionCV", "LinearSVC", "RidgeClassifier", "RidgeClassifierCV",
          "SGDClassifier", "Perceptron", "PassiveAggressiveClassifier"}
TREES = {"DecisionTreeClassifier", "ExtraTreeClassifier"}
FORESTS = {"RandomForestClassifier", "ExtraTreesClassifier"}


@dataclass(frozen=True)
class Tree:
    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    values: np.ndarray            # (nodes, n_outputs, n_classes)

    def leaves(self, x: np.ndarray) -> np.ndarray:
        import numpy as np

        x = x.astype(np.float32)
        node = np.zeros(len(x), dtype=np.int64)
        rows = np.arange(len(x))
        for _ in range(len(self.left) + 1):
            inner = self.left[node] != -1
            if not inner.any():
                break
            n = node[inner]
            v = x[rows[inner], self.feature[n]]
            go_left = np.where(np.isnan(v), self.missing_left[n] != 0, v <= self.threshold[n])
            node[inner] = np.where(go_left, self.left[n], self.right[n])
        return node

    def proba(self, x: np.ndarray) -> np.ndarray:
        import numpy as np

        v = self.values[self.leaves(x), 0, :].astype(np.float64)
        s = v.sum(axis=1, keepdims=True)
        return v / np.where(s == 0, 1, s)


@dataclass(frozen=True)
class ArrayClassifier:
    cls: str
    classes: np.ndarray
    coef: np.ndarray | None = None
    intercept: np.ndarray | None = None
    trees: tuple[Tree, ...] = ()

    def predict(self, x: np.ndarray) -> np.ndarray:
        import numpy as np

        x = np.asarray(x, dtype=np.float64)
        if self.coef is not None:
            assert self.intercept is not None
            scores = x @ self.coef.T + self.intercept
            if scores.shape[1] == 1:
                return self.classes[(scores[:, 0] > 0).astype(int)]
            return self.classes[scores.argmax(axis=1)]
        proba = np.mean([t.proba(x) for t in self.trees], axis=0)
        return self.classes[proba.argmax(axis=1)]


def _tree(art: ModelArtifact, prefix: str) -> Tree:
    import numpy as np

    def get(name: str) -> np.ndarray:
        return np.asarray(art.tensor(f"{prefix}tree_.{name}").read())
    try:
        return Tree(get("nodes.left_child").astype(np.int64), get("nodes.right_child").astype(np.int64),
                    get("nodes.feature").astype(np.int64), get("nodes.threshold").astype(np.float64),
                    get("nodes.missing_go_to_left") if f"{prefix}tree_.nodes.missing_go_to_left" in
                    {t.name for t in art.tensors} else np.zeros(len(get("nodes.left_child")), np.uint8),
                    get("values"))
    except KeyError as exc:
        raise UnsupportedError(art.path, f"tree arrays incomplete: no tensor {exc}") from None


def from_artifact(art: ModelArtifact) -> ArrayClassifier:
    """The classifier an artifact's fitted arrays describe (outermost estimator only)."""
    import numpy as np

    found = art.metadata.get("sklearn", {}).get("estimators", [])
    if not found:
        raise UnsupportedError(art.path, "holds no scikit-learn estimator")
    cls = str(found[0]["class"]).rsplit(".", 1)[-1]
    names = {t.name for t in art.tensors}
    if "classes_" not in names:
        raise UnsupportedError(art.path, f"{cls}: no classes_ array (not a fitted classifier)")
    classes = np.asarray(art.tensor("classes_").read())
    if cls in LINEAR:
        coef = np.asarray(art.tensor("coef_").read(), dtype=np.float64)
        intercept = np.asarray(art.tensor("intercept_").read(), dtype=np.float64).reshape(-1) \
            if "intercept_" in names else np.zeros(coef.shape[0])
        return ArrayClassifier(cls, classes, coef.reshape(-1, coef.shape[-1]), intercept)
    if cls in TREES:
        return ArrayClassifier(cls, classes, trees=(_tree(art, ""),))
    if cls in FORESTS:
        count = sum(1 for n in names if n.startswith("estimators_.") and n.endswith(".tree_.values"))
        if not count:
            raise UnsupportedError(art.path, f"{cls}: no fitted trees found")
        trees = tuple(_tree(art, f"estimators_.{i}.") for i in range(count))
        return ArrayClassifier(cls, classes, trees=trees)
    raise UnsupportedError(art.path, f"{cls} is not evaluated from arrays (linear classifiers, decision "
                           "trees and forests are)")
