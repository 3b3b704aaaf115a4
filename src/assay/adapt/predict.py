"""`predict`: apply an `assay adapt` output folder to new texts.

The base is found through the folder's recipe and checked against its pins (content identity of
the weights, digests of its config and tokenizer) before it runs; for LoRA the merged weights
replace the base's. Features come from the same function the training child used
(`runtime.adapted.features`, same batch size, the recipe's thread count), and the head is the
NumPy one of `adapt.heads`, so a holdout file gets the labels the training's evaluation gave.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    labels: tuple[str, ...]
    scores: tuple[float, ...]
    accuracy: float | None          # when the data has the label column


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
    checked = {c.name: c.path for c in check_inputs(loaded, runner.weights_identity(open_model))}
    adapter = open_model(adapter_path)
    meta = json.loads(adapter.metadata.get("safetensors", {}).get("assay.adapt", "{}"))
    classes = tuple(str(c) for c in meta.get("classes", ()))
    if not classes:
        raise UsageError(adapter_path, "adapter has no `assay.adapt` metadata naming its classes")
    tensors = {t.name: np.array(t.read()) for t in adapter.tensors if t.name.startswith("head.")}
    ex = adapt_data.read_examples(data, text_column or str(p.get("text_column", "text")),
                                  label_column or str(p.get("label_column", "label")), require_labels=False)
    base = checked["base"]
    weights = os.path.join(model_dir, MERGED_FILE) if p.get("method") == "lora" else base
    from assay.runtime import adapted
    from assay.runtime.encoder import build
    adapted.pin_threads(threads or loaded.recipe.build.threads)
    if p.get("modality", "text") == "image":
        from assay.runtime.vision import build as build_image
        enc: Any = build_image(open_model(weights))
        adapt_data.check_pixels(ex, enc.channels * enc.side * enc.side)
    else:
        enc = build(open_model(weights), base)
    x = adapted.features(enc, ex.texts)
    idx, score = heads.predict(tensors, x)
    labels = tuple(classes[int(i)] for i in idx)
    acc = None
    if ex.labels is not None:
        acc = float(np.mean([a == b for a, b in zip(labels, ex.labels, strict=True)]))
    return Predictions(os.path.abspath(model_dir), os.path.abspath(data), classes, labels,
                       tuple(float(s) for s in score), acc)
