"""`cost`: what adapting or retraining an encoder would take on this machine.

Throughput is measured, not looked up: a few batches through the encoder built in code (forward;
forward+backward with low-rank factors only; forward+backward with every weight and an Adam
step), after one warm-up batch each. Estimates are then tokens x epochs / measured tokens per
second, with the assumptions stated beside each number:

- head:    setup (importing the libraries, switching torch to deterministic algorithms as a build
           does, and building the model, as measured here) + one forward
           pass over the data (features are computed once and cached) + at most 100 head epochs
           of minibatches of 32 at about a millisecond each.
- lora:    the head's time (its warm start; the one forward pass also caches the frozen lower
           layers' states) + `epochs` LoRA epochs over the top `lora_layers` of the L layers: per
           training token the measured LoRA step (factors on the top layers only) less the
           forward share of the lower layers, which training does not repeat; per validation
           token the top layers' share of a forward pass.
- full:    setup + `epochs` epochs with every weight trainable and Adam.
- scratch: the full step's throughput over 20 tokens per parameter (the compute-optimal budget of
           Hoffmann et al. 2022) — a lower bound: pretraining recipes often use far more tokens.

Memory: the peak memory of the measuring process through that step (it holds the weights, the
tokenizer and the libraries, as a training process would); measured in the order forward, LoRA,
full, so each is at least the one before.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from assay.errors import UsageError
from assay.model.artifact import ModelArtifact

if TYPE_CHECKING:
    from assay.runtime.adapted import Throughput

OpenModel = Callable[[str], ModelArtifact]
SCRATCH_TOKENS_PER_PARAMETER = 20
DEFAULT_EPOCHS = {"lora": 4, "full": 3}
HEAD_EPOCHS, HEAD_BATCH, HEAD_STEP_SECONDS = 100, 32, 0.001     # adapt's defaults; a measured order
VALIDATION = 0.2
SYNTHETIC_EXAMPLES = 1000
FILLER = ("the model reads a short sentence about products films books kitchens and gardens and "
          "then it predicts which of the labels fits the text best").split()


@dataclass(frozen=True)
class Estimate:
    method: str
    seconds: float
    memory_bytes: int
    tokens: int              # tokens processed in all
    epochs: float
    trainable: int           # trainable parameters
    assumptions: str


@dataclass(frozen=True)
class CostReport:
    model: str
    parameters: int
    threads: int
    measured: tuple[Throughput, ...]
    workload: dict[str, Any]
    estimates: tuple[Estimate, ...]

    def only(self, methods: Sequence[str]) -> CostReport:
        return replace(self, estimates=tuple(e for e in self.estimates if e.method in set(methods)))


def _synthetic(seq_len: int, batch: int) -> list[str]:
    words = (FILLER * (seq_len // len(FILLER) + 1))[:max(1, seq_len - 2)]   # [CLS] and [SEP]
    return [" ".join(words)] * batch


def _token_counts(enc: Any, texts: Sequence[str]) -> list[int]:
    out: list[int] = []
    for i in range(0, len(texts), 256):
        out += [sum(e.attention_mask) for e in enc.tokenizer.encode_batch(list(texts[i:i + 256]))]
    return out


def estimate(parameters: int, measured: dict[str, Throughput], examples: int, tokens: int,
             lora_trainable: int, epochs: int | None, setup: float = 0.0,
             top_share: float = 1.0) -> tuple[Estimate, ...]:
    """The four estimates from measured throughputs (pure arithmetic; see the module docstring).
    `setup` (loading libraries and building the model, measured) is added to all but scratch."""
    fwd, lora, full = measured["forward"], measured["lora"], measured["full"]
    e_lora = epochs or DEFAULT_EPOCHS["lora"]
    e_full = epochs or DEFAULT_EPOCHS["full"]
    t_feat = tokens / fwd.tokens_per_second
    head_steps = HEAD_EPOCHS * math.ceil((1 - VALIDATION) * examples / HEAD_BATCH)
    t_head = setup + t_feat + head_steps * HEAD_STEP_SECONDS
    # LoRA epochs: forward+backward of the top layers on the training share (the measured step
    # less the lower layers' forward, floored at a quarter of the step), and the top layers'
    # forward on the validation share
    step = max(1 / lora.tokens_per_second - (1 - top_share) / fwd.tokens_per_second,
               0.25 / lora.tokens_per_second)
    per_epoch = (1 - VALIDATION) * tokens * step + VALIDATION * tokens * top_share / fwd.tokens_per_second
    scratch_tokens = SCRATCH_TOKENS_PER_PARAMETER * parameters
    return (
        Estimate("head", t_head, fwd.peak_bytes, tokens, 1, 0,
                 f"setup {setup:.1f} s, one forward pass for cached features, at most {HEAD_EPOCHS} head "
                 f"epochs at {HEAD_STEP_SECONDS * 1000:g} ms a minibatch"),
        Estimate("lora", t_head + e_lora * per_epoch,
                 lora.peak_bytes, tokens * (e_lora + 1), e_lora,
                 lora_trainable, f"the head's time, then {e_lora} epochs of forward+backward of the "
                                 f"top {top_share:.0%} of the layers with low-rank factors (and a "
                                 "validation pass each)"),
        Estimate("full", setup + e_full * tokens / full.tokens_per_second,
                 full.peak_bytes, tokens * e_full, e_full, parameters,
                 f"{e_full} epochs, every weight trainable, Adam (weights + grads + 2 moments)"),
        Estimate("scratch", scratch_tokens / full.tokens_per_second,
                 full.peak_bytes, scratch_tokens,
                 scratch_tokens / tokens if tokens else 0.0, parameters,
                 f"{SCRATCH_TOKENS_PER_PARAMETER} tokens per parameter (Hoffmann et al. 2022) at the full "
                 "step's throughput; a lower bound"),
    )


def cost(model: str, open_model: OpenModel, *, data: str | None = None, text_column: str = "text",
         threads: int = 1, batch: int = 16, seq_len: int = 64, epochs: int | None = None,
         targets: Sequence[str] = ("query", "value"), rank: int = 8, lora_layers: int = 2) -> CostReport:
    import os
    if not os.path.isdir(model):
        raise UsageError(model, "cost measures a sentence-encoder folder (config.json, tokenizer, weights)")
    if batch < 1 or seq_len < 4:
        raise UsageError(None, "batch must be at least 1 and the sequence length at least 4")
    t0 = time.perf_counter()
    from assay.runtime import adapted
    from assay.runtime.adapt_bert import build
    art = open_model(model)
    adapted.pin_threads(threads)
    enc = build(art, model)
    setup = time.perf_counter() - t0 + adapted.deterministic_setup_seconds()
    if data is not None:
        from assay.adapt.data import read_examples
        ex = read_examples(data, text_column, None, require_labels=False)
        texts = list(ex.texts)
        counts = _token_counts(enc, texts)
        sample = texts[:batch]
        workload = {"source": f"data {os.path.basename(data)}", "examples": len(texts), "tokens": sum(counts),
                    "mean_tokens": round(sum(counts) / len(counts), 1)}
    else:
        sample = _synthetic(seq_len, batch)
        per = _token_counts(enc, sample[:1])[0]
        workload = {"source": f"synthetic: {SYNTHETIC_EXAMPLES} examples of {per} tokens",
                    "examples": SYNTHETIC_EXAMPLES, "tokens": SYNTHETIC_EXAMPLES * per, "mean_tokens": per}
    layers = int(enc.spec.config.get("num_hidden_layers", 0))
    top = min(layers, lora_layers or layers)
    measured = adapted.measure(enc, sample, rank=rank, targets=targets, layers=top)
    hidden = enc.dim
    lora_trainable = top * len(targets) * 2 * rank * hidden
    ests = estimate(art.parameter_count, {t.mode: t for t in measured}, workload["examples"],
                    workload["tokens"], lora_trainable, epochs, setup, top / layers if layers else 1.0)
    return CostReport(os.path.abspath(model), art.parameter_count, threads, tuple(measured), workload, ests)
