"""Writes digits59.csv (10 examples of each digit 5-9: "a few per class") and
digits59-holdout.csv (every other 5-9 digit) from the 8x8 digits scikit-learn ships. Each row is
`pixels,label`: 64 space-separated values scaled to 0-1 (as the base was trained), row-major.

    python make_data.py          # writes both files beside this script
"""

import csv
import importlib.util
import os

import numpy as np

PER_CLASS = 10


def digits() -> tuple[np.ndarray, np.ndarray]:
    spec = importlib.util.find_spec("sklearn")
    assert spec is not None and spec.submodule_search_locations
    path = os.path.join(next(iter(spec.submodule_search_locations)), "datasets", "data", "digits.csv.gz")
    data = np.loadtxt(path, delimiter=",", dtype=np.float64)
    return data[:, :-1] / 16.0, data[:, -1].astype(int)


def write(path: str, x: np.ndarray, y: np.ndarray) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["pixels", "label"])
        for row, label in zip(x, y, strict=True):
            w.writerow([" ".join(f"{v:g}" for v in row), str(label)])


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    x, y = digits()
    rng = np.random.default_rng(5)
    train = np.concatenate([rng.permutation(np.flatnonzero(y == d))[:PER_CLASS] for d in range(5, 10)])
    rest = np.setdiff1d(np.flatnonzero(y >= 5), train)
    write(os.path.join(here, "digits59.csv"), x[np.sort(train)], y[np.sort(train)])
    write(os.path.join(here, "digits59-holdout.csv"), x[rest], y[rest])
