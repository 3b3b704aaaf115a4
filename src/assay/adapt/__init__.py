"""`assay adapt`, `assay predict`, `assay cost`: retarget a sentence encoder, a small image CNN or
an ONNX model to the user's own labelled data on a CPU (classify, regress, embed), apply the
result, and estimate what adapting or retraining costs here.

- `data`: labelled examples from CSV or JSONL (texts, pixel rows, image paths) or a folder of
  images per class, checked (columns, classes, numeric labels, unseen labels, unreadable images)
  before anything runs; a bad file is one `DataError` naming the file (or image) and the rule.
- `heads`: the heads (linear or small MLP; an embedding projection) and metrics as NumPy
  functions of their tensors, the one implementation used by both the training child (to
  evaluate) and `predict`.
- `plan`: `adapt` writes a recipe (`assay.recipe/1`) whose entry point is the packaged script
  `assay/runtime/adapt_train.py` (copied beside the recipe, pinned by digest) and runs it through
  `assay.recipes.runner`: training only ever happens in the build's child process.
- `cost`: throughput-based estimates of head training, LoRA, full fine-tuning and training from
  scratch (`assay.cost/1`).
"""
