"""Heads as NumPy functions of their tensors: the one implementation behind the training child's
validation and holdout numbers and `assay predict`, so that both give the same labels (numbers,
vectors) for the same features; and the metrics both report.

Tensor names (in `adapter.safetensors`): a linear head is `head.weight` (outputs x dim) and
`head.bias`; an MLP head is `head.0.weight`, `head.0.bias` (hidden x dim), ReLU, then
`head.2.weight`, `head.2.bias` (outputs x hidden) — the names of `torch.nn.Sequential`. Outputs
are the classes (classify) or one number (regress, in the label's units). An embedding adapter
is `projection.weight` (out x dim); its vectors are L2-normalised.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

HEADS = ("linear", "mlp")


def head_tensors(tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items() if k.startswith("head.")}


def logits(tensors: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Class scores (rows x classes) of features `x` (rows x dim), float32."""
    h = head_tensors(tensors)
    x = np.asarray(x, dtype=np.float32)
    if "head.weight" in h:
        return x @ h["head.weight"].T + h["head.bias"]
    if "head.0.weight" in h and "head.2.weight" in h:
        hidden = np.maximum(x @ h["head.0.weight"].T + h["head.0.bias"], 0)
        return hidden @ h["head.2.weight"].T + h["head.2.bias"]
    raise ValueError("no head tensors (head.weight, or head.0.weight and head.2.weight)")


def predict(tensors: Mapping[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(class index, softmax probability of that class) for each row."""
    z = logits(tensors, x).astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    idx = p.argmax(axis=1)
    return idx, p[np.arange(len(idx)), idx]


def values(tensors: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """A regression head's outputs (one number per row), in the units of the training labels."""
    return logits(tensors, x)[:, 0].astype(np.float64)


def normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def project(tensors: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """An embedding adapter's vectors: features times `projection.weight` (out x dim), L2-normalised
    (cosine similarity is the dot product)."""
    w = np.asarray(tensors["projection.weight"], dtype=np.float32)
    return normalize(np.asarray(x, dtype=np.float32) @ w.T)


def regression_metrics(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R^2 (1 - residual / total sum of squares; 0 when the targets are constant)."""
    pred, y = np.asarray(pred, dtype=np.float64), np.asarray(y, dtype=np.float64)
    err = pred - y
    total = float(((y - y.mean()) ** 2).sum()) if len(y) else 0.0
    return {"rmse": float(np.sqrt((err ** 2).mean())) if len(y) else 0.0,
            "mae": float(np.abs(err).mean()) if len(y) else 0.0,
            "r2": 1.0 - float((err ** 2).sum()) / total if total > 0 else 0.0}


def nearest_labels(query: np.ndarray, keys: np.ndarray, key_labels: np.ndarray,
                   exclude_self: bool = False) -> np.ndarray:
    """The label of each query row's nearest key row by cosine similarity (ties: the first key)."""
    sim = normalize(query) @ normalize(keys).T
    if exclude_self:
        np.fill_diagonal(sim, -np.inf)
    return np.asarray(key_labels)[sim.argmax(axis=1)]
