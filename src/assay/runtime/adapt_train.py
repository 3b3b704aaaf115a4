"""The entry point of every recipe `assay adapt` writes (copied beside the recipe, pinned by its
BLAKE3 digest). Runs only inside `assay rebuild`'s child process, never imported by assay.

Inputs: `train` (CSV or JSONL), optional `holdout`, and `base`, a BERT-family sentence-encoder
folder pinned by content identity (its config and tokenizer files pinned as data inputs). The
encoder is built in code from its config and filled with the tensors assay read.

- `method = "head"`: features of every training row are computed once (and cached under
  `params.feature_cache`, keyed by the base's content identity, the data's digest, the encoder
  settings, thread count and torch version); a linear or MLP head is trained on them with Adam,
  minibatches in a seeded order, early stopping on the validation split's loss (best epoch kept).
- `method = "lora"`: the same head is trained first, then low-rank factors `A` (rank x in) and
  `B` (out x rank, zero at start) on the target projections of every layer are trained jointly
  with it (`W' = W + alpha/rank * B @ A`); the merged encoder is written with the base's tensor
  names, so assay reads it as the base plus a low-rank update.

Outputs: `adapter` (head and low-rank factors, safetensors; its metadata `assay.adapt` carries the
classes and the validation and holdout numbers) and, for LoRA, `merged`. Progress lines
(`progress KIND DONE TOTAL NOTE`) go to the build log, which `assay adapt` follows.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from assay.adapt import data as adapt_data
from assay.adapt import heads
from assay.recipes import entry
from assay.runtime import adapted
from assay.runtime.encoder import SentenceEncoder, build

CACHE_VERSION = "assay-features-v1"


def progress(kind: str, done: int, total: int, note: str = "") -> None:
    print(f"progress {kind} {done} {total} {note}".rstrip(), flush=True)


def cached_features(enc: Any, texts: Sequence[str], data_path: str,
                    p: dict[str, Any]) -> np.ndarray:
    """Features of the rows of `data_path`, from the cache when an equal computation was cached."""
    cache = str(p.get("feature_cache") or "")
    path = ""
    if cache and os.path.isabs(cache):
        from assay.api import identify
        from assay.recipes.pinning import file_digest
        spec = enc.spec if isinstance(enc, SentenceEncoder) else None
        settings = {"side": getattr(enc, "side", None)} if spec is None else \
            {"pooling": spec.pooling, "normalize": spec.normalize, "max_len": spec.max_seq_length}
        key = json.dumps({"v": CACHE_VERSION, "base": identify(entry.input_path("base")).content,
                          "data": file_digest(data_path), "text": p["text_column"], "encoder": settings,
                          "threads": entry.threads(),
                          "batch": adapted.FEATURE_BATCH, "torch": torch.__version__}, sort_keys=True)
        import blake3
        path = os.path.join(cache, blake3.blake3(key.encode()).hexdigest() + ".npy")
        if os.path.isfile(path):
            try:
                x = np.load(path, allow_pickle=False)
            except (OSError, ValueError):
                x = None
            if x is not None and x.dtype == np.float32 and x.shape == (len(texts), enc.dim):
                print(f"features from cache {path}", flush=True)
                progress("features", len(texts), len(texts))
                return x
    x = adapted.features(enc, texts, lambda d, n: progress("features", d, n))
    if path:
        try:
            os.makedirs(cache, exist_ok=True)
            tmp = f"{path}.{os.getpid()}.partial.npy"
            np.save(tmp, x, allow_pickle=False)
            os.replace(tmp, path)
        except OSError as exc:           # a cache that cannot be written only costs time
            print(f"feature cache not written: {exc}", flush=True)
    return x


def make_head(kind: str, dim: int, hidden: int, n_classes: int) -> nn.Module:
    if kind == "linear":
        return nn.Linear(dim, n_classes)
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))


def head_state(head: nn.Module) -> dict[str, np.ndarray]:
    return {f"head.{k}": v.detach().clone().numpy() for k, v in head.state_dict().items()}


class Stopper:
    """Early stopping on validation loss: remembers the best epoch's state."""

    def __init__(self, patience: int) -> None:
        self.patience, self.best, self.best_epoch, self.state, self.waited = patience, math.inf, 0, None, 0

    def update(self, epoch: int, loss: float, state: dict[str, np.ndarray]) -> bool:
        """Record an epoch; True when training should stop."""
        if loss < self.best - 1e-6:
            self.best, self.best_epoch, self.state, self.waited = loss, epoch, state, 0
        else:
            self.waited += 1
        return self.waited >= self.patience


def train_head(x: np.ndarray, y: np.ndarray, tr: list[int], va: list[int], p: dict[str, Any],
               n_classes: int) -> tuple[nn.Module, dict[str, Any]]:
    g = torch.Generator().manual_seed(entry.seed())
    head = make_head(p["head"], x.shape[1], int(p["hidden"]), n_classes)
    # L2 of strength 1/n on the mean loss by default: scikit-learn's LogisticRegression at C=1
    wd = 1.0 / len(tr) if p["weight_decay"] == "auto" else float(p["weight_decay"])
    opt = torch.optim.Adam(head.parameters(), lr=float(p["lr"]), weight_decay=wd)
    xt, yt = torch.from_numpy(x[tr]), torch.from_numpy(y[tr])
    xv, yv = torch.from_numpy(x[va]), torch.from_numpy(y[va])
    bs, epochs = int(p["batch_size"]), int(p["epochs"])
    stop = Stopper(int(p["patience"]))
    ran = 0
    for epoch in range(1, epochs + 1):
        head.train(True)
        for idx in torch.randperm(len(tr), generator=g).split(bs):
            opt.zero_grad()
            nn.functional.cross_entropy(head(xt[idx]), yt[idx]).backward()
            opt.step()
        head.train(False)
        with torch.no_grad():
            val_loss = float(nn.functional.cross_entropy(head(xv), yv))
        state = head_state(head)
        acc = float((heads.predict(state, x[va])[0] == y[va]).mean())
        entry.report_epoch(state, {"val_loss": val_loss, "val_accuracy": acc})
        progress("head", epoch, epochs, f"val_loss={val_loss:.4f} val_acc={acc:.3f}")
        ran = epoch
        if stop.update(epoch, val_loss, state):
            break
    assert stop.state is not None
    head.load_state_dict({k[len("head."):]: torch.from_numpy(v) for k, v in stop.state.items()})
    return head, {"best_epoch": stop.best_epoch, "epochs_run": ran, "val_loss": stop.best}


class LoRALinear(nn.Module):
    """`base(x) + scale * x A^T B^T`, the base frozen."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, g: torch.Generator) -> None:
        super().__init__()
        self.base = base
        for q in base.parameters():
            q.requires_grad_(False)
        bound = 1.0 / math.sqrt(base.in_features)
        self.A = nn.Parameter((torch.rand(rank, base.in_features, generator=g) * 2 - 1) * bound)
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.A.T @ self.B.T) * self.scale

    def delta(self) -> np.ndarray:
        return (self.scale * (self.B.detach() @ self.A.detach())).numpy()


def add_lora(enc: SentenceEncoder, targets: Sequence[str], rank: int, alpha: float) -> dict[str, LoRALinear]:
    g = torch.Generator().manual_seed(entry.seed() + 1)
    for q in enc.model.parameters():
        q.requires_grad_(False)
    mods: dict[str, LoRALinear] = {}
    for i, layer in enumerate(enc.model.encoder.layer):
        for t in targets:
            mod = LoRALinear(getattr(layer.attention.self, t), rank, alpha, g)
            setattr(layer.attention.self, t, mod)
            mods[f"encoder.layer.{i}.attention.self.{t}"] = mod
    return mods


def lora_state(mods: dict[str, LoRALinear]) -> dict[str, np.ndarray]:
    out = {}
    for name, m in mods.items():
        out[f"{name}.lora_A.weight"] = m.A.detach().clone().numpy()
        out[f"{name}.lora_B.weight"] = m.B.detach().clone().numpy()
    return out


def train_lora(enc: SentenceEncoder, texts: Sequence[str], y: np.ndarray, tr: list[int], va: list[int],
               head: nn.Module, p: dict[str, Any]) -> tuple[dict[str, LoRALinear], dict[str, Any]]:
    mods = add_lora(enc, p["targets"], int(p["rank"]), float(p["alpha"]))
    g = torch.Generator().manual_seed(entry.seed() + 2)
    params = [q for m in mods.values() for q in (m.A, m.B)]
    opt = torch.optim.Adam([{"params": params, "lr": float(p["lora_lr"])},
                            {"params": list(head.parameters()), "lr": float(p["lora_lr"])}])
    bs, epochs = int(p["lora_batch_size"]), int(p["lora_epochs"])
    stop = Stopper(int(p["lora_patience"]))
    enc.model.train(False)                 # no dropout: the update is a function of data and seed
    yt = torch.from_numpy(y)
    ran = 0
    steps = math.ceil(len(tr) / bs)
    for epoch in range(1, epochs + 1):
        for s, idx in enumerate(torch.randperm(len(tr), generator=g).split(bs), 1):
            rows = [tr[int(i)] for i in idx]
            opt.zero_grad()
            logits = head(enc.embed([texts[r] for r in rows]))
            nn.functional.cross_entropy(logits, yt[rows]).backward()
            opt.step()
            progress("lora", (epoch - 1) * steps + s, epochs * steps, f"epoch {epoch}")
        head.train(False)
        xv = adapted.features(enc, [texts[r] for r in va])
        state = {**head_state(head), **lora_state(mods)}
        with torch.no_grad():
            val_loss = float(nn.functional.cross_entropy(head(torch.from_numpy(xv)), yt[va]))
        acc = float((heads.predict(state, xv)[0] == y[va]).mean())
        entry.report_epoch(state, {"val_loss": val_loss, "val_accuracy": acc})
        print(f"lora epoch {epoch}: val_loss={val_loss:.4f} val_acc={acc:.3f}", flush=True)
        ran = epoch
        if stop.update(epoch, val_loss, state):
            break
    assert stop.state is not None
    for name, m in mods.items():
        m.A.data = torch.from_numpy(stop.state[f"{name}.lora_A.weight"])
        m.B.data = torch.from_numpy(stop.state[f"{name}.lora_B.weight"])
    head.load_state_dict({k[len("head."):]: torch.from_numpy(v) for k, v in stop.state.items()
                          if k.startswith("head.")})
    return mods, {"best_epoch": stop.best_epoch, "epochs_run": ran, "val_loss": stop.best}


def merge(enc: SentenceEncoder, mods: dict[str, LoRALinear]) -> dict[str, np.ndarray]:
    """The base's tensors (its own names) with `W + scale * B @ A` on the targets; the in-memory
    model is switched to exactly these merged weights (so evaluation matches `predict`)."""
    from assay.api import open_model
    from assay.runtime.encoder import _strip
    art = open_model(entry.input_path("base"))
    out: dict[str, np.ndarray] = {}
    for t in art.tensors:
        arr = np.array(t.read())
        name = _strip(t.name)
        if name.endswith(".weight") and name[:-len(".weight")] in mods:
            arr = (arr.astype(np.float32) + mods[name[:-len(".weight")]].delta()).astype(arr.dtype)
        out[t.name] = arr
    by_stripped = {_strip(k): v for k, v in out.items()}
    for name, m in mods.items():
        parent = enc.model.get_submodule(name.rsplit(".", 1)[0])
        lin = m.base
        lin.weight.data = torch.from_numpy(np.array(by_stripped[f"{name}.weight"], dtype=np.float32))
        setattr(parent, name.rsplit(".", 1)[1], lin)
    return out


def evaluate(enc: SentenceEncoder, state: dict[str, np.ndarray], texts: Sequence[str],
             y: np.ndarray) -> dict[str, Any]:
    import blake3
    x = adapted.features(enc, texts)
    pred, _ = heads.predict(state, x)
    correct = int((pred == y).sum())
    digest = blake3.blake3(",".join(str(int(i)) for i in pred).encode()).hexdigest()
    return {"n": len(texts), "correct": correct, "accuracy": correct / len(texts) if len(texts) else 0.0,
            "predictions_digest": f"blake3:{digest}"}


def main() -> None:
    entry.configure_torch(torch)
    p = entry.params()
    ctx = entry.context()
    train = adapt_data.read_examples(entry.input_path("train"), p["text_column"], p["label_column"])
    adapt_data.check_training(train)
    classes = train.classes
    holdout = None
    if "holdout" in ctx.inputs:
        holdout = adapt_data.read_examples(entry.input_path("holdout"), p["text_column"], p["label_column"])
        adapt_data.check_holdout(holdout, classes)
    assert train.labels is not None
    y = np.array([classes.index(v) for v in train.labels], dtype=np.int64)
    tr, va = adapt_data.split(train.labels, float(p["val_fraction"]), entry.seed())
    print(f"{len(train)} examples, {len(classes)} classes: {len(tr)} train, {len(va)} validation", flush=True)
    from assay.api import open_model
    if p.get("modality", "text") == "image":
        from assay.runtime.vision import build as build_image
        enc: Any = build_image(open_model(entry.input_path("base")))
    else:
        enc = build(open_model(entry.input_path("base")), entry.input_path("base"))
    x = cached_features(enc, train.texts, entry.input_path("train"), p)
    head, info = train_head(x, y, tr, va, p, len(classes))
    outputs: dict[str, dict[str, np.ndarray]] = {}
    if p["method"] == "lora":
        mods, info = train_lora(enc, train.texts, y, tr, va, head, p)
        adapter = {**head_state(head), **lora_state(mods)}
        outputs["merged"] = merge(enc, mods)
    else:
        adapter = head_state(head)
    enc.model.train(False)
    meta: dict[str, Any] = {"method": p["method"], "head": p["head"], "classes": list(classes),
                            "text_column": p["text_column"], "label_column": p["label_column"],
                            "train": {"n": len(tr)}, **info,
                            "validation": evaluate(enc, adapter, [train.texts[i] for i in va], y[va])}
    if p["method"] == "lora":
        meta.update(rank=int(p["rank"]), alpha=float(p["alpha"]), targets=list(p["targets"]))
    if holdout is not None:
        assert holdout.labels is not None
        yh = np.array([classes.index(v) for v in holdout.labels], dtype=np.int64)
        meta["holdout"] = evaluate(enc, adapter, holdout.texts, yh)
    text = json.dumps(meta, sort_keys=True)
    print(f"adapter: {text}", flush=True)
    entry.save_outputs(adapter, "adapter", metadata={"assay.adapt": text})
    if "merged" in outputs:
        entry.save_outputs(outputs["merged"], "merged")


if __name__ == "__main__":
    main()
