"""`assay adapt`, `assay predict`, `assay cost`: retarget a sentence encoder to the user's own
labelled data on a CPU, apply the result, and estimate what adapting or retraining costs here.

- `data`: labelled examples from CSV or JSONL, checked (columns, classes, unseen labels) before
  anything runs; a bad file is one `DataError` naming the file and the rule.
- `heads`: the classifier heads (linear or small MLP) as NumPy functions of their tensors, the
  one implementation used by both the training child (to evaluate) and `predict`.
- `plan`: `adapt` writes a recipe (`assay.recipe/1`) whose entry point is the packaged script
  `assay/runtime/adapt_train.py` (copied beside the recipe, pinned by digest) and runs it through
  `assay.recipes.runner`: training only ever happens in the build's child process.
- `cost`: throughput-based estimates of head training, LoRA, full fine-tuning and training from
  scratch (`assay.cost/1`).
"""
