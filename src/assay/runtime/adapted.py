"""Sentence features for `adapt` and `predict`, and this machine's measured throughput for `cost`.

One function builds the frozen network (`build_encoder`) and one computes features (`features`,
fixed batch size and order) for both the training child and `assay predict`, so the same input
gives the same numbers in both. A text encoder is `runtime.adapt_bert.build`: BERT built in code
from its config, filled with tensors assay read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assay.runtime import require

if TYPE_CHECKING:
    import numpy as np

    from assay.model.artifact import ModelArtifact
    from assay.runtime.encoder import SentenceEncoder

FEATURE_BATCH = 64


def pin_threads(threads: int) -> None:
    """Pin torch's intra-op threads (inference in the parent: `predict`, `cost`)."""
    require("torch")
    import torch
    torch.set_num_threads(max(1, threads))


def build_encoder(modality: str, base: str, open_model: Callable[[str], ModelArtifact],
                  weights: str | None = None, output: str | None = None) -> Any:
    """The frozen network of an adapt, as the training child and `predict` both build it: a
    sentence encoder (`runtime.adapt_bert`), a small CNN (`runtime.vision`) or an ONNX model's
    named output (`runtime.onnx_model`). `weights` replaces the base's tensors (a merged LoRA)."""
    if modality == "onnx":
        from assay.runtime.onnx_model import OnnxFeatures
        return OnnxFeatures(base, output)
    art = open_model(weights or base)
    if modality == "image":
        from assay.runtime.vision import build as build_image
        return build_image(art)
    from assay.runtime.adapt_bert import build
    return build(art, base)


def deterministic_setup_seconds() -> float:
    """What switching torch to deterministic algorithms costs a fresh process (a build's child
    does it first: the call imports torch's compiler configuration), measured by making the call
    with the current setting, which it leaves unchanged."""
    import torch
    t0 = time.perf_counter()
    torch.use_deterministic_algorithms(torch.are_deterministic_algorithms_enabled(),
                                       warn_only=torch.is_deterministic_algorithms_warn_only_enabled())
    return time.perf_counter() - t0


def features(enc: Any, texts: Sequence[str],
             on_batch: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Pooled embeddings of `texts` (float32, one row each), in batches of `FEATURE_BATCH`."""
    import numpy as np

    rows = []
    for i in range(0, len(texts), FEATURE_BATCH):
        rows.append(enc.encode(list(texts[i:i + FEATURE_BATCH]), batch_size=FEATURE_BATCH))
        if on_batch:
            on_batch(min(i + FEATURE_BATCH, len(texts)), len(texts))
    if not rows:
        return np.zeros((0, enc.dim), dtype=np.float32)
    return np.concatenate(rows).astype(np.float32)


@dataclass(frozen=True)
class Throughput:
    """Tokens per second of one training-like step, and the extra memory it took."""

    mode: str                 # forward | lora | full
    tokens_per_second: float
    batch: int
    seq_len: int
    steps: int
    peak_bytes: int           # the process's peak RSS after this mode's steps (weights included)


def _peak_rss() -> int:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(enc: SentenceEncoder, texts: Sequence[str], *, steps: int = 3, rank: int = 8,
            targets: Sequence[str] = ("query", "value"), layers: int = 0) -> list[Throughput]:
    """Time `steps` batches of `texts` through the encoder: forward only (features for a head),
    forward+backward with gradients only for low-rank factors on `targets` of the top `layers`
    layers (LoRA; 0: every layer), and
    forward+backward with gradients for every weight plus an Adam step (full fine-tuning).
    The first batch of each mode is a warm-up and is not timed. The model is left unchanged."""
    import torch

    model = enc.model
    model.train(False)
    ids, mask, types = enc._batch(list(texts))
    tokens = int(mask.sum())
    out: list[Throughput] = []

    def run(mode: str, step: Callable[[], None]) -> None:
        step()                                   # warm-up
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        dt = (time.perf_counter() - t0) / steps
        out.append(Throughput(mode, tokens / dt if dt > 0 else 0.0, len(texts), int(ids.shape[1]), steps,
                              _peak_rss()))

    def forward() -> None:
        with torch.inference_mode():
            model(input_ids=ids, attention_mask=mask, token_type_ids=types)

    params = list(model.parameters())
    saved = [p.requires_grad for p in params]
    # LoRA: frozen weights; factors on the target projections, grads flow through activations.
    factors = []
    hooks = []
    stack = list(model.encoder.layer)
    for layer in stack[len(stack) - (layers or len(stack)):]:
        for t in targets:
            lin = getattr(layer.attention.self, t)
            a = torch.zeros(rank, lin.in_features, requires_grad=True)
            b = torch.zeros(lin.out_features, rank, requires_grad=True)
            factors += [a, b]
            hooks.append(lin.register_forward_hook(
                lambda _m, inp, o, a=a, b=b: o + inp[0] @ a.T @ b.T))
    for p in params:
        p.requires_grad_(False)

    def lora() -> None:
        y = model(input_ids=ids, attention_mask=mask, token_type_ids=types)[0]
        y.float().pow(2).mean().backward()

    try:
        run("forward", forward)
        run("lora", lora)
    finally:
        for h in hooks:
            h.remove()
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=0.0)      # lr 0: the Adam step's cost, weights unchanged

    def full() -> None:
        opt.zero_grad()
        y = model(input_ids=ids, attention_mask=mask, token_type_ids=types)[0]
        y.float().pow(2).mean().backward()
        opt.step()

    try:
        run("full", full)
    finally:
        for p, s in zip(params, saved, strict=True):
            p.requires_grad_(s)
            p.grad = None
    return out
