"""Logistic regression on the handwritten digits that scikit-learn ships (1,797 8x8 images).

Run by `assay rebuild recipe.toml`, never directly. The data file is the pinned input
`digits` (scikit-learn's own `datasets/data/digits.csv.gz`, what `load_digits` reads). The model
is written as its fitted arrays (coef, intercept, classes) in safetensors: no pickle.
"""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from assay.recipes import entry


def load() -> tuple[np.ndarray, np.ndarray]:
    data = np.loadtxt(entry.input_path("digits"), delimiter=",")
    x, y = data[:, :-1] / 16.0, data[:, -1].astype(np.int64)
    order = np.random.default_rng(entry.seed()).permutation(len(y))
    return x[order], y[order]


def arrays(model: LogisticRegression) -> dict[str, np.ndarray]:
    return {"coef": model.coef_, "intercept": model.intercept_, "classes": model.classes_.astype(np.int64)}


def main() -> None:
    p = entry.params()
    x, y = load()
    n = p["train_size"]
    model = LogisticRegression(C=p["C"], tol=p["tol"], max_iter=p["iterations_per_round"], warm_start=True)
    for _ in range(p["rounds"]):            # warm-started rounds of lbfgs: one "epoch" each
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x[:n], y[:n])
        entry.report_epoch(arrays(model), {"accuracy": model.score(x[n:], y[n:])})
    entry.save_outputs(arrays(model), metadata={"recipe": "digits-logreg"})


def predict(tensors: dict[str, np.ndarray]) -> np.ndarray:
    """Classes predicted for the held-out digits (the probe set), from the arrays alone."""
    x, _ = load()
    held_out = x[entry.params()["train_size"]:]
    scores = held_out @ tensors["coef"].T + tensors["intercept"]
    return tensors["classes"][scores.argmax(axis=1)]


if __name__ == "__main__":
    main()
