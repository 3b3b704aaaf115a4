"""The build's child process: `python -m assay.recipes.child CONTEXT.json`.

Started by `runner` with a controlled environment (thread counts, hash seed, offline). Seeds the
random generators, then runs the recipe's entry point: as `__main__` to train, or, to evaluate a
probe set, imported as `__assay_probe__` so that its `predict` function can be called on each set
of tensors. assay never imports torch itself: an entry point that uses it passes its own module to
`entry.configure_torch`; whether it did is written to the run's result file for the build record.
"""

from __future__ import annotations

import json
import os
import random
import runpy
import sys

import numpy as np

from assay.recipes import entry

PROBE_RUN_NAME = "__assay_probe__"


def _configure(ctx: entry.Context) -> None:
    random.seed(ctx.seed)
    np.random.seed(ctx.seed)


def _write_result(path: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"torch_imported": "torch" in sys.modules,
                   "torch_configured": entry.torch_configured()}, fh)


def _probe(entry_path: str, ctx: entry.Context) -> None:
    scope = runpy.run_path(entry_path, run_name=PROBE_RUN_NAME)
    predict = scope.get("predict")
    if not callable(predict):
        raise SystemExit(f"{entry_path}: the recipe declares a probe set but the entry point "
                         "defines no predict(tensors) function")
    out: dict[str, list[int]] = {}
    for label, npz in sorted(ctx.probe_sets.items()):
        with np.load(npz, allow_pickle=False) as z:
            tensors = {k: z[k] for k in z.files}
        out[label] = [int(x) for x in np.asarray(predict(tensors)).reshape(-1)]
    with open(ctx.probe_out, "w", encoding="utf-8") as fh:
        json.dump(out, fh)


def main(argv: list[str]) -> int:
    ctx = entry.Context.from_file(argv[1])
    entry_path, result_file = argv[2], argv[3]
    entry._activate(ctx)
    _configure(ctx)
    sys.argv = [entry_path]
    sys.path.insert(0, os.path.dirname(entry_path))
    if ctx.mode == "probe":
        _probe(entry_path, ctx)
    else:
        runpy.run_path(entry_path, run_name="__main__")
    _write_result(result_file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
