"""Classifier heads as NumPy functions of their tensors: the one implementation behind the
training child's validation and holdout numbers and `assay predict`, so that both give the same
labels for the same features.

Tensor names (in `adapter.safetensors`): a linear head is `head.weight` (classes x dim) and
`head.bias`; an MLP head is `head.0.weight`, `head.0.bias` (hidden x dim), ReLU, then
`head.2.weight`, `head.2.bias` (classes x hidden) — the names of `torch.nn.Sequential`.
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
