"""Small synthetic models built in memory, and their fingerprints through the real function."""

from __future__ import annotations

import numpy as np

from assay.analyses.lineage.fingerprint import fingerprint
from assay.analyses.lineage.types import Fingerprint
from assay.formats.base import record_from_array
from assay.model.artifact import ModelArtifact

Weights = dict[str, np.ndarray]


def base_model(seed: int, layers: int = 3, dim: int = 48) -> Weights:
    rng = np.random.default_rng(seed)
    out: Weights = {"embed.weight": rng.standard_normal((96, dim), dtype=np.float32) * 0.05}
    for i in range(layers):
        out[f"layers.{i}.attn.weight"] = rng.standard_normal((dim, dim), dtype=np.float32) * 0.05
        out[f"layers.{i}.mlp.weight"] = rng.standard_normal((2 * dim, dim), dtype=np.float32) * 0.05
        out[f"layers.{i}.norm.weight"] = np.ones(dim, dtype=np.float32)
    return out


def finetune(w: Weights, seed: int, scale: float = 0.003) -> Weights:
    rng = np.random.default_rng(seed)
    return {k: (v + rng.standard_normal(v.shape, dtype=np.float32) * scale).astype(v.dtype)
            if v.ndim == 2 else v.copy() for k, v in w.items()}


def cast(w: Weights, dtype: str = "float16") -> Weights:
    return {k: v.astype(dtype) for k, v in w.items()}


def prune(w: Weights, fraction: float = 0.3) -> Weights:
    out = {}
    for k, v in w.items():
        if v.ndim == 2:
            cut = np.quantile(np.abs(v), fraction)
            v = np.where(np.abs(v) < cut, np.float32(0), v).astype(v.dtype)
        out[k] = v.copy()
    return out


def artifact(w: Weights, label: str = "mem") -> ModelArtifact:
    return ModelArtifact(label, "synthetic",
                         tensors=[record_from_array(k, np.ascontiguousarray(v), label) for k, v in w.items()])


def fp(w: Weights, label: str) -> Fingerprint:
    return fingerprint(artifact(w, label), label)
