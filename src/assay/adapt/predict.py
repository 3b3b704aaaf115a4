"""`predict`: apply an `assay adapt` output folder to new data.

The base is found through the folder's recipe and checked against its pins (content identity of
the weights, digests of its config and tokenizer) before it runs; for LoRA the merged weights
replace the base's. Features come from the same function the training child used
(`runtime.adapted.features`, same batch size, the recipe's thread count, the network built by
`runtime.adapted.build_encoder`), and the head is the NumPy one of `adapt.heads`, so a holdout
file gets the labels (numbers, vectors) the training's evaluation gave.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from assay.adapt import data as adapt_data
from assay.adapt import heads
from assay.adapt.plan import ADAPTER_FILE, MERGED_FILE, RECIPE_DIR
from assay.errors import UsageError
from assay.model.artifact import ModelArtifact

OpenModel = Callable[[str], ModelArtifact]


@dataclass(frozen=True)
class Predictions:
    model: str
    data: str
    classes: tuple[str, ...]
    labels: tuple[str, ...]          # classify: one label per row (else empty)
    scores: tuple[float, ...]        # classify: the probability of that label
    accuracy: float | None           # classify, when the data has the label column
    task: str = "classify"
    values: tuple[float, ...] = ()                 # regress: one number per row
    vectors: tuple[tuple[float, ...], ...] = ()    # embed: one unit vector per row
    metrics: dict[str, float] = field(default_factory=dict)   # regress with labels: rmse, mae, r2


def predict(model_dir: str, data: str, open_model: OpenModel, *, text_column: str | None = None,
            label_column: str | None = None, threads: int | None = None) -> Predictions:
    from assay.recipes import runner, schema
    from assay.recipes.pinning import check_inputs
    recipe_path = os.path.join(model_dir, RECIPE_DIR, "recipe.toml")
    adapter_path = os.path.join(model_dir, ADAPTER_FILE)
    if not (os.path.isfile(recipe_path) and os.path.isfile(adapter_path)):
        raise UsageError(model_dir, f"not an `assay adapt` output folder (needs {RECIPE_DIR}/recipe.toml "
                                    f"and {ADAPTER_FILE})")
    loaded = schema.load(recipe_path)
    p = loaded.recipe.params
    task = str(p.get("task", "classify"))
    checked = {c.name: c.path for c in check_inputs(loaded, runner.weights_identity(open_model))}
    adapter = open_model(adapter_path)
    meta = json.loads(adapter.metadata.get("safetensors", {}).get("assay.adapt", "{}"))
    classes = tuple(str(c) for c in meta.get("classes", ()))
    if task != "regress" and not classes:
        raise UsageError(adapter_path, "adapter has no `assay.adapt` metadata naming its classes")
    tensors = {t.name: np.array(t.read()) for t in adapter.tensors
               if t.name.startswith("head.") or t.name == "projection.weight"}
    ex = adapt_data.read_for_predict(data, p, text_column, label_column)
    base = checked["base"]
    from assay.runtime import adapted
    adapted.pin_threads(threads or loaded.recipe.build.threads)
    merged = os.path.join(model_dir, MERGED_FILE) if p.get("method") == "lora" else None
    enc = adapted.build_encoder(str(p.get("modality", "text")), base, open_model, weights=merged,
                                output=str(p.get("output", "")) or None)
    if hasattr(enc, "check"):
        enc.check(ex)
    x = adapted.features(enc, ex.texts)
    where = (os.path.abspath(model_dir), os.path.abspath(data), classes)
    if task == "regress":
        vals = heads.values(tensors, x)
        metrics = {}
        if ex.labels is not None:
            metrics = heads.regression_metrics(vals, np.array(adapt_data.numeric_labels(ex)))
        return Predictions(*where, (), (), None, task, tuple(float(v) for v in vals), (), metrics)
    if task == "embed":
        z = heads.project(tensors, x)
        return Predictions(*where, (), (), None, task, (), tuple(tuple(float(v) for v in row) for row in z))
    idx, score = heads.predict(tensors, x)
    labels = tuple(classes[int(i)] for i in idx)
    acc = None
    if ex.labels is not None:
        acc = float(np.mean([a == b for a, b in zip(labels, ex.labels, strict=True)]))
    return Predictions(*where, labels, tuple(float(s) for s in score), acc)
