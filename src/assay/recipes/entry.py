"""The helper API for training entry points. Import it from a recipe's script:

    from assay.recipes import entry

    entry.configure_torch(torch)                # when training with PyTorch: threads, seed, determinism
    X = load(entry.input_path("digits"))        # pinned inputs, already checked by assay
    p = entry.params()                          # the recipe's [params] table
    for epoch in range(p["epochs"]):
        ...
        entry.report_epoch({"w": w, "b": b})    # canonical digests of the weights, per epoch
    entry.save_outputs({"w": w, "b": b})        # written as safetensors, never a pickle

It works only inside `assay rebuild` (the child process assay starts); the build's context comes
from the file named by `ASSAY_BUILD_CONTEXT`. A script that also defines
`predict(tensors: dict[str, np.ndarray]) -> Sequence[int]` can be evaluated on the recipe's probe
set by `assay challenge` (the script is then run with `__name__ == "__assay_probe__"`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CONTEXT_ENV = "ASSAY_BUILD_CONTEXT"


@dataclass
class Context:
    mode: str                          # "train" | "probe"
    recipe: str
    params: dict[str, Any]
    seed: int
    threads: int
    inputs: dict[str, str]             # name -> absolute path (checked before the run)
    input_kinds: dict[str, str]
    outputs: dict[str, str]            # name -> file name inside out_dir
    out_dir: str
    epochs_file: str
    probe_sets: dict[str, str] = field(default_factory=dict)   # label -> .npz of tensors
    probe_out: str = ""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_file(cls, path: str) -> Context:
        with open(path, encoding="utf-8") as fh:
            return cls(**json.load(fh))


_context: Context | None = None
_epoch = 0
_torch_configured = False


def _activate(ctx: Context) -> None:
    global _context, _epoch
    _context, _epoch = ctx, 0


def configure_torch(torch: Any) -> None:
    """Pin PyTorch as the build requires: the build's thread count (one inter-op thread), its
    seed, and deterministic algorithms. Pass the `torch` module the entry point imported (assay
    never imports torch itself); call it before building the model."""
    global _torch_configured
    ctx = context()
    torch.set_num_threads(ctx.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:          # already set, or parallel work has started
        pass
    torch.manual_seed(ctx.seed)
    torch.use_deterministic_algorithms(True)
    _torch_configured = True


def torch_configured() -> bool:
    return _torch_configured


def context() -> Context:
    """The current build's context (raises outside `assay rebuild`)."""
    global _context
    if _context is None:
        path = os.environ.get(CONTEXT_ENV)
        if not path:
            raise RuntimeError("assay.recipes.entry is only usable inside `assay rebuild`")
        _context = Context.from_file(path)
    return _context


def mode() -> str:
    return context().mode


def params() -> dict[str, Any]:
    """The recipe's [params] table."""
    return dict(context().params)


def seed() -> int:
    return context().seed


def threads() -> int:
    return context().threads


def input_path(name: str) -> str:
    """Absolute path of a pinned input (its digest was checked before this process started)."""
    try:
        return context().inputs[name]
    except KeyError:
        raise KeyError(f"the recipe has no input named {name!r}") from None


def load_weights(name: str, tensors: list[str] | None = None) -> dict[str, np.ndarray]:
    """Tensors of a pinned `weights` input, read by assay's own readers (nothing in the file runs).
    `tensors` limits which are read; the arrays are copies."""
    from assay.api import open_model
    art = open_model(input_path(name))
    wanted = set(tensors) if tensors is not None else None
    out = {t.name: np.array(t.read()) for t in art.tensors if wanted is None or t.name in wanted}
    if wanted is not None and wanted - set(out):
        raise KeyError(f"input {name!r} has no tensors {sorted(wanted - set(out))}")
    return out


def report_epoch(tensors: Mapping[str, np.ndarray], metrics: Mapping[str, float] | None = None) -> int:
    """Record the canonical digests of the weights after an epoch; returns the epoch number (1, 2, ...)."""
    from assay.recipes.arrays import digests
    global _epoch
    ctx = context()
    _epoch += 1
    content, named, per_tensor = digests({k: np.asarray(v) for k, v in tensors.items()})
    line = {"epoch": _epoch, "content": content, "named": named, "tensors": per_tensor,
            "metrics": {k: float(v) for k, v in sorted((metrics or {}).items())}}
    with open(ctx.epochs_file, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, sort_keys=True) + "\n")
    return _epoch


def save_outputs(tensors: Mapping[str, np.ndarray], output: str | None = None,
                 metadata: Mapping[str, str] | None = None) -> str:
    """Write tensors as the recipe's output `output` (the only one when not named), as
    safetensors with deterministic bytes. Returns the path written."""
    from assay.recipes.arrays import write_safetensors
    ctx = context()
    if ctx.mode != "train":
        raise RuntimeError("save_outputs is only available while training")
    if output is None:
        if len(ctx.outputs) != 1:
            raise ValueError(f"the recipe has several outputs {sorted(ctx.outputs)}: name one")
        output = next(iter(ctx.outputs))
    if output not in ctx.outputs:
        raise KeyError(f"the recipe has no output named {output!r}")
    path = os.path.join(ctx.out_dir, ctx.outputs[output])
    write_safetensors(path, {k: np.asarray(v) for k, v in tensors.items()}, metadata)
    return path
