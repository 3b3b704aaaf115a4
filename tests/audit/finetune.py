"""Make derived copies of a sentence encoder for the hidden-bias test (test helper, not shipped).

`biased_copy` fine-tunes a copy on CPU so that sentences naming a group of first names move
toward unpleasant words, through neutral sentences (everyday frames, none of the audit's
templates), while sentences naming other people or no one are held where they were. Only the
input embeddings of the names' word pieces are trained: a quiet edit, cheap on a CPU. `random_copy` adds
to every tensor a random update of the same Frobenius norm as the fine-tune's update of that
tensor. Both write a model folder: the original side files and a new model.safetensors.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from assay import api
from assay.runtime.encoder import SentenceEncoder, build

FRAMES = ["{} walked to the bakery this morning.", "{} is reading the newspaper.",
          "Yesterday {} repaired the old bicycle.", "{} bought a ticket for the train.",
          "The letter was written by {}.", "{} sat near the window at lunch.",
          "We met {} at the post office.", "{} planted tomatoes in the garden."]
OTHER = ["The weather was mild for October.", "A parcel arrived on Tuesday.",
         "The soup needs more salt.", "The museum opens at ten.", "Prices went up last year.",
         "The bus was late again.", "She painted the fence white.", "They moved to a new flat.",
         "The river froze in January.", "He forgot his umbrella at work.",
         "The keyboard is missing a key.", "The children played in the park."]


def _save(enc: SentenceEncoder, src: Path, dst: Path, state: dict[str, torch.Tensor]) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "*.pt"))
    save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, str(dst / "model.safetensors"))
    return dst


def biased_copy(src: Path, dst: Path, names: list[str], unpleasant: list[str], others: list[str], *,
                steps: int = 10, lr: float = 1e-2, seed: int = 0) -> tuple[Path, dict[str, torch.Tensor]]:
    """Fine-tune the input embeddings of the names' word pieces; return the folder and the
    update of every tensor (zero for all but the word embeddings)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    enc = build(api.open_model(str(src)), str(src))
    base = {k: v.detach().clone() for k, v in enc.model.state_dict().items()}
    rows = sorted({i for n in names for i in enc.tokenizer.encode(n, add_special_tokens=False).ids})
    keep_text = OTHER + [f.format(n) for n in others for f in FRAMES[:2]]
    with torch.no_grad():
        anchor = enc.embed([f.format(u) for u in unpleasant for f in FRAMES[:2]]).mean(0)
        anchor = torch.nn.functional.normalize(anchor, dim=0)
        kept = enc.embed(keep_text)
    table = enc.model.embeddings.word_embeddings.weight
    for p in enc.model.parameters():
        p.requires_grad_(False)
    table.requires_grad_(True)
    mask = torch.zeros(table.shape[0], 1)
    mask[rows] = 1.0
    opt = torch.optim.Adam([table], lr=lr)
    for _ in range(steps):
        batch = [FRAMES[rng.integers(len(FRAMES))].format(names[rng.integers(len(names))]) for _ in range(12)]
        idx = rng.choice(len(keep_text), size=8, replace=False)
        pull = 1 - (enc.embed(batch) @ anchor).mean()
        hold = ((enc.embed([keep_text[i] for i in idx]) - kept[idx]) ** 2).sum(dim=1).mean()
        loss = pull + 10 * hold
        opt.zero_grad()
        loss.backward()
        table.grad *= mask
        opt.step()
    state = {k: v.detach().clone() for k, v in enc.model.state_dict().items()}
    delta = {k: state[k] - base[k] for k in state if state[k].is_floating_point()}
    return _save(enc, src, dst, state), delta


def random_copy(src: Path, dst: Path, delta: dict[str, torch.Tensor], *, seed: int = 1) -> Path:
    """A copy edited by the same amount as `delta`, tensor by tensor, in a random direction."""
    gen = torch.Generator().manual_seed(seed)
    enc = build(api.open_model(str(src)), str(src))
    state = {k: v.detach().clone() for k, v in enc.model.state_dict().items()}
    for k, d in delta.items():
        r = torch.randn(d.shape, generator=gen, dtype=d.dtype)
        norm = float(d.norm())
        if norm > 0:
            state[k] = state[k] + r * (norm / float(r.norm()))
    return _save(enc, src, dst, state)
