"""The entry point of every recipe `assay adapt` writes (copied beside the recipe, pinned by its
BLAKE3 digest). Runs only inside `assay rebuild`'s child process, never imported by assay.

Inputs: `train` (CSV or JSONL; for images, with the image files' digests in it), optional
`holdout`, and `base`: a BERT-family sentence-encoder folder, a small CNN's weight file, or an
ONNX model, pinned by content identity. The network is built in code from its config and filled
with the tensors assay read (`runtime.adapted.build_encoder`).

Tasks (`params.task`):
- `classify`: a linear or MLP head, cross-entropy. `regress`: the same heads with one output,
  mean squared error on standardised targets (the written head gives the label's units).
  `embed`: a square projection of the frozen features (identity at start) trained with the
  neighbourhood-components objective (each training item's softmax over the others' cosine
  similarities should put its mass on items of its own label), reported as nearest-neighbour
  label accuracy (recall@1 against the training items) before and after.

Methods:
- `head`: features of every training row are computed once (and cached under
  `params.feature_cache`, keyed by the base's content identity, the data's digest, the encoder
  settings, thread count and torch version); the head is trained with Adam, minibatches in a
  seeded order, early stopping on the validation split's loss; then (classify, regress) refit
  on the training and validation rows together for the best epoch count, from the same initial
  weights and order seed. The validation numbers are those of the early-stopping stage.
- `lora`: the head is trained first (early-stopped, not refit: it is the warm start), then
  low-rank factors `A` (rank x in) and `B` (out x rank, zero at start) on the target projections
  of the top `lora_layers` layers are trained jointly with it (`W' = W + alpha/rank * B @ A`).
  The frozen lower layers' hidden states are computed once, with the features (and cached with
  them), so each step runs only the top layers. For a CNN base the factors are on the
  convolution kernels (as out x in*k*k). The merged network is written with the base's tensor
  names, so assay reads it as the base plus a low-rank update.

Outputs: `adapter` (head, projection or low-rank factors, safetensors; its metadata
`assay.adapt` carries the task, the classes and the validation and holdout numbers) and, for
LoRA, `merged`. Progress lines (`progress KIND DONE TOTAL NOTE`) go to the build log, which
`assay adapt` follows; `time STAGE SECONDS TOTAL` lines say where the time went.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from assay.adapt import data as adapt_data
from assay.adapt import heads
from assay.recipes import entry
from assay.runtime import adapted
from assay.runtime.adapt_bert import Bert
from assay.runtime.encoder import SentenceEncoder, pool

CACHE_VERSION = "assay-features-v2"


_T0 = time.perf_counter()
_LAST = [_T0]


def stage(name: str) -> None:
    """A `time STAGE SECONDS TOTAL` line in the build log: where the build's time went (TOTAL
    counts from the end of this script's imports; the build record's wall time includes them)."""
    now = time.perf_counter()
    print(f"time {name} {now - _LAST[0]:.2f} {now - _T0:.2f}", flush=True)
    _LAST[0] = now


def progress(kind: str, done: int, total: int, note: str = "") -> None:
    print(f"progress {kind} {done} {total} {note}".rstrip(), flush=True)


def cache_prefix(enc: Any, data_path: str, p: dict[str, Any], **extra: Any) -> str:
    """Where the arrays of a frozen computation are cached (a path without suffix), or "" for no
    cache. The key: the base's content identity (an ONNX file's digest), the data's digest, the
    column, the network and its settings, thread count, batch size and torch version."""
    cache = str(p.get("feature_cache") or "")
    if not (cache and os.path.isabs(cache)):
        return ""
    import blake3

    from assay.api import identify
    from assay.recipes.pinning import file_digest
    spec = enc.spec if isinstance(enc, SentenceEncoder) else None
    settings = {"side": getattr(enc, "side", None)} if spec is None else \
        {"pooling": spec.pooling, "normalize": spec.normalize, "max_len": spec.max_seq_length}
    base = entry.input_path("base")
    pin = file_digest(base) if p.get("modality") == "onnx" else identify(base).content
    key = json.dumps({"v": CACHE_VERSION, "base": pin, "data": file_digest(data_path),
                      "text": p["text_column"], "encoder": settings,
                      "network": type(getattr(enc, "model", enc)).__name__, "output": p.get("output", ""),
                      "threads": entry.threads(), "batch": adapted.FEATURE_BATCH, "torch": torch.__version__,
                      **extra}, sort_keys=True)
    return os.path.join(cache, blake3.blake3(key.encode()).hexdigest())


def cache_load(prefix: str, names: Sequence[str]) -> dict[str, np.ndarray] | None:
    """Cached float32 / int64 arrays, or None when any is missing or unreadable."""
    if not prefix:
        return None
    out = {}
    for name in names:
        path = f"{prefix}.{name}.npy" if name else f"{prefix}.npy"
        try:
            out[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
    print(f"frozen computation from cache {prefix}", flush=True)
    return out


def cache_save(prefix: str, arrays: dict[str, np.ndarray]) -> None:
    if not prefix:
        return
    try:
        os.makedirs(os.path.dirname(prefix), exist_ok=True)
        for name, x in arrays.items():
            path = f"{prefix}.{name}.npy" if name else f"{prefix}.npy"
            tmp = f"{path}.{os.getpid()}.partial.npy"
            np.save(tmp, x, allow_pickle=False)
            os.replace(tmp, path)
    except OSError as exc:           # a cache that cannot be written only costs time
        print(f"feature cache not written: {exc}", flush=True)


def cached_features(enc: Any, texts: Sequence[str], data_path: str,
                    p: dict[str, Any]) -> np.ndarray:
    """Features of the rows of `data_path`, from the cache when an equal computation was cached."""
    prefix = cache_prefix(enc, data_path, p)
    got = cache_load(prefix, [""])
    if got is not None and got[""].dtype == np.float32 and got[""].shape == (len(texts), enc.dim):
        progress("features", len(texts), len(texts))
        return got[""]
    x = adapted.features(enc, texts, lambda d, n: progress("features", d, n))
    cache_save(prefix, {"": x})
    return x


def make_head(kind: str, dim: int, hidden: int, out: int) -> nn.Module:
    torch.manual_seed(entry.seed())        # the same initial head in the early-stopping and refit stages
    if kind == "linear":
        return nn.Linear(dim, out)
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, out))


def head_state(head: nn.Module) -> dict[str, np.ndarray]:
    return {f"head.{k}": v.detach().clone().numpy() for k, v in head.state_dict().items()}


def load_head(head: nn.Module, state: dict[str, np.ndarray]) -> None:
    head.load_state_dict({k[len("head."):]: torch.from_numpy(v) for k, v in state.items()
                          if k.startswith("head.")})


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


class Targets:
    """What the head learns: class indices (classify, embed) or standardised numbers (regress)."""

    def __init__(self, task: str, labels: Sequence[str], classes: Sequence[str], tr: Sequence[int],
                 numbers: Sequence[float] | None = None) -> None:
        self.task = task
        if task == "regress":
            v = np.asarray(numbers, dtype=np.float64)
            self.mean = float(v[list(tr)].mean())
            self.std = float(v[list(tr)].std()) or 1.0
            self.raw = v
            self.y: np.ndarray = ((v - self.mean) / self.std).astype(np.float32)
            self.outputs = 1
        else:
            self.y = np.array([list(classes).index(v) for v in labels], dtype=np.int64)
            self.outputs = len(classes)

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.task == "regress":
            return nn.functional.mse_loss(out[:, 0], y)
        return nn.functional.cross_entropy(out, y)

    def metric(self, state: dict[str, np.ndarray], x: np.ndarray, rows: Sequence[int]) -> str:
        if self.task == "regress":
            pred = heads.values(state, x)
            return f"val_rmse={float(np.sqrt(((pred - self.y[list(rows)]) ** 2).mean())) * self.std:.4g}"
        return f"val_acc={float((heads.predict(state, x)[0] == self.y[list(rows)]).mean()):.3f}"

    def in_units(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The head as written: a regression head's last layer scaled back to the label's units."""
        if self.task != "regress":
            return state
        out = dict(state)
        w, b = ("head.weight", "head.bias") if "head.weight" in out else ("head.2.weight", "head.2.bias")
        out[w] = (out[w] * self.std).astype(np.float32)
        out[b] = (out[b] * self.std + self.mean).astype(np.float32)
        return out


def fit_head(x: np.ndarray, t: Targets, rows: list[int], va: list[int], p: dict[str, Any],
             epochs: int | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Train a head on `rows`: early-stopped on `va`, or (refit, `va` empty) for `epochs` epochs."""
    g = torch.Generator().manual_seed(entry.seed())
    head = make_head(p["head"], x.shape[1], int(p["hidden"]), t.outputs)
    # L2 of strength 1/n on the mean loss by default: scikit-learn's LogisticRegression at C=1
    wd = 1.0 / len(rows) if p["weight_decay"] == "auto" else float(p["weight_decay"])
    opt = torch.optim.Adam(head.parameters(), lr=float(p["lr"]), weight_decay=wd)
    xt, yt = torch.from_numpy(x[rows]), torch.from_numpy(t.y[rows])
    xv, yv = torch.from_numpy(x[va]), torch.from_numpy(t.y[va])
    bs, most = int(p["batch_size"]), epochs or int(p["epochs"])
    stop = Stopper(int(p["patience"]))
    ran = 0
    for epoch in range(1, most + 1):
        head.train(True)
        for idx in torch.randperm(len(rows), generator=g).split(bs):
            opt.zero_grad()
            t.loss(head(xt[idx]), yt[idx]).backward()
            opt.step()
        head.train(False)
        ran = epoch
        if epochs is not None:
            progress("refit", epoch, epochs)
            continue
        with torch.no_grad():
            val_loss = float(t.loss(head(xv), yv))
        state = head_state(head)
        note = t.metric(state, x[va], va)
        entry.report_epoch(state, {"val_loss": val_loss})
        progress("head", epoch, most, f"val_loss={val_loss:.4f} {note}")
        if stop.update(epoch, val_loss, state):
            break
    if epochs is not None:
        return head, {"epochs": ran, "rows": len(rows)}
    assert stop.state is not None
    load_head(head, stop.state)
    return head, {"best_epoch": stop.best_epoch, "epochs_run": ran, "val_loss": stop.best}


# -- embed: a projection trained with the neighbourhood-components objective --------------------
def nca_loss(z_anchor: torch.Tensor, z_keys: torch.Tensor, y_anchor: torch.Tensor, y_keys: torch.Tensor,
             self_index: torch.Tensor | None, temperature: float) -> torch.Tensor:
    """Mean over anchors of -log(the softmax mass, over the keys, on keys of the anchor's label)."""
    sim = z_anchor @ z_keys.T / temperature
    if self_index is not None:
        sim = sim.masked_fill(nn.functional.one_hot(self_index, len(z_keys)).bool(), -1e9)
    logp = sim.log_softmax(dim=1)
    same = (y_anchor[:, None] == y_keys[None, :])
    if self_index is not None:
        same = same & ~nn.functional.one_hot(self_index, len(z_keys)).bool()
    return -(logp.masked_fill(~same, -1e9).logsumexp(dim=1)).mean()


def train_projection(x: np.ndarray, t: Targets, tr: list[int], va: list[int],
                     p: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    g = torch.Generator().manual_seed(entry.seed())
    dim = x.shape[1]
    w = nn.Parameter(torch.eye(dim))
    opt = torch.optim.Adam([w], lr=float(p["lr"]) * 0.1)
    temp = float(p.get("temperature", 0.1))
    xt, yt = torch.from_numpy(x[tr]), torch.from_numpy(t.y[tr])
    xv, yv = torch.from_numpy(x[va]), torch.from_numpy(t.y[va])
    bs, most = int(p["batch_size"]), int(p["epochs"])
    stop = Stopper(int(p["patience"]))
    ran = 0

    def proj(a: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(a @ w.T, dim=1)

    for epoch in range(1, most + 1):
        for idx in torch.randperm(len(tr), generator=g).split(bs):
            opt.zero_grad()
            keys = proj(xt)
            nca_loss(keys[idx], keys, yt[idx], yt, idx, temp).backward()
            opt.step()
        with torch.no_grad():
            val_loss = float(nca_loss(proj(xv), proj(xt), yv, yt, None, temp))
        state = {"projection.weight": w.detach().clone().numpy()}
        z = heads.project(state, x)
        acc = float((heads.nearest_labels(z[va], z[tr], t.y[tr]) == t.y[va]).mean())
        entry.report_epoch(state, {"val_loss": val_loss, "val_recall_at_1": acc})
        progress("head", epoch, most, f"val_loss={val_loss:.4f} val_r@1={acc:.3f}")
        ran = epoch
        if stop.update(epoch, val_loss, state):
            break
    assert stop.state is not None
    return stop.state["projection.weight"], {"best_epoch": stop.best_epoch, "epochs_run": ran,
                                             "val_loss": stop.best, "temperature": temp}


# -- LoRA ----------------------------------------------------------------------------------------
def _factors(base: nn.Module, fan_in: int, fan_out: int, rank: int,
             g: torch.Generator) -> tuple[nn.Parameter, nn.Parameter]:
    """Freeze `base`; the factors A (rank x fan_in, uniform like a linear layer's weights, from
    the seeded generator) and B (fan_out x rank, zero: the update starts at nothing)."""
    for q in base.parameters():
        q.requires_grad_(False)
    bound = 1.0 / math.sqrt(fan_in)
    a = nn.Parameter((torch.rand(rank, fan_in, generator=g) * 2 - 1) * bound)
    return a, nn.Parameter(torch.zeros(fan_out, rank))


class LoRALinear(nn.Module):
    """`base(x) + scale * x A^T B^T`, the base frozen."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, g: torch.Generator) -> None:
        super().__init__()
        self.base = base
        self.A, self.B = _factors(base, base.in_features, base.out_features, rank, g)
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.A.T @ self.B.T) * self.scale

    def delta(self) -> np.ndarray:
        return (self.scale * (self.B.detach() @ self.A.detach())).numpy()


class LoRAConv(nn.Module):
    """A frozen convolution plus `scale * B @ A` on its kernel seen as out x (in * k * k)."""

    def __init__(self, base: nn.Conv2d, rank: int, alpha: float, g: torch.Generator) -> None:
        super().__init__()
        self.base = base
        self.A, self.B = _factors(base, base.weight[0].numel(), base.out_channels, rank, g)
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.base.weight + (self.B @ self.A * self.scale).view_as(self.base.weight)
        return nn.functional.conv2d(x, w, self.base.bias, self.base.stride, self.base.padding)

    def delta(self) -> np.ndarray:
        return (self.scale * (self.B.detach() @ self.A.detach())).view_as(self.base.weight).numpy()


def lora_layer_range(enc: Any, p: dict[str, Any]) -> range:
    n = len(enc.model.encoder.layer)
    k = int(p.get("lora_layers", 0)) or n
    return range(max(0, n - k), n)


def add_lora(enc: Any, p: dict[str, Any]) -> dict[str, nn.Module]:
    g = torch.Generator().manual_seed(entry.seed() + 1)
    rank, alpha = int(p["rank"]), float(p["alpha"])
    for q in enc.model.parameters():
        q.requires_grad_(False)
    mods: dict[str, nn.Module] = {}
    if isinstance(enc.model, nn.Sequential):         # a CNN: every convolution
        for i, m in enumerate(list(enc.model)):
            if isinstance(m, nn.Conv2d):
                mods[str(i)] = enc.model[i] = LoRAConv(m, rank, alpha, g)
        return mods
    for i in lora_layer_range(enc, p):
        att = enc.model.encoder.layer[i].attention.self
        for t in p["targets"]:
            mod = LoRALinear(getattr(att, t), rank, alpha, g)
            setattr(att, t, mod)
            mods[f"encoder.layer.{i}.attention.self.{t}"] = mod
    return mods


def lora_state(mods: dict[str, nn.Module]) -> dict[str, np.ndarray]:
    out = {}
    for name, m in mods.items():
        out[f"{name}.lora_A.weight"] = m.A.detach().clone().numpy()
        out[f"{name}.lora_B.weight"] = m.B.detach().clone().numpy()
    return out


class Upper:
    """The training rows' hidden states after the frozen lower layers, computed once (in the
    feature batches); `pooled(rows)` runs only the layers from `start` on, with gradients when
    enabled. Also gives the features of the unchanged network (`features`), the same numbers
    `adapted.features` computes. A network this cannot split runs whole on each call."""

    def __init__(self, enc: Any, texts: Sequence[str], start: int) -> None:
        self.enc, self.texts, self.start = enc, list(texts), start
        self.split = isinstance(enc.model, Bert)
        self.states: list[torch.Tensor] = []
        if not self.split:
            self.features = cached_features(enc, texts, entry.input_path("train"), entry.params())
            self.images = enc.pixels(self.texts) if isinstance(enc.model, nn.Sequential) else None
            return
        prefix = cache_prefix(enc, entry.input_path("train"), entry.params(), lower_layers=start)
        got = cache_load(prefix, ["features", "states", "lengths"])
        if got is None or got["features"].shape != (len(texts), enc.dim) or \
                got["lengths"].shape != (len(texts),) or int(got["lengths"].sum()) != len(got["states"]):
            got = self._compute()
            cache_save(prefix, got)
        else:
            progress("features", len(texts), len(texts))
        self.features = got["features"]
        flat = torch.from_numpy(got["states"])
        self.states = list(flat.split(got["lengths"].tolist()))

    def _compute(self) -> dict[str, np.ndarray]:
        """Features and lower-layer states of every row, in the feature batches."""
        enc, n_rows = self.enc, len(self.texts)
        rows, states, lengths = [], [], []
        with torch.no_grad():
            for i in range(0, n_rows, adapted.FEATURE_BATCH):
                ids, mask, types = enc._batch(self.texts[i:i + adapted.FEATURE_BATCH])
                h = enc.model.lower(ids, mask, types, self.start)
                rows.append(self._pool(enc.model.upper(h, mask, self.start), mask).float().numpy())
                for r, n in enumerate(mask.sum(dim=1).tolist()):
                    states.append(h[r, :n].numpy())
                    lengths.append(n)
                progress("features", min(i + adapted.FEATURE_BATCH, n_rows), n_rows)
        return {"features": np.concatenate(rows).astype(np.float32),
                "states": np.concatenate(states).astype(np.float32),
                "lengths": np.array(lengths, dtype=np.int64)}

    def _pool(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return pool(tokens, mask, self.enc.spec.pooling, self.enc.spec.normalize)

    def pooled(self, rows: Sequence[int]) -> torch.Tensor:
        if not self.split:
            if self.images is not None:
                return self.enc.model(torch.from_numpy(self.images[list(rows)]))
            return self.enc.embed([self.texts[r] for r in rows])
        lens = [len(self.states[r]) for r in rows]
        h = torch.zeros(len(rows), max(lens), self.states[rows[0]].shape[1])
        mask = torch.zeros(len(rows), max(lens), dtype=torch.long)
        for j, r in enumerate(rows):
            h[j, :lens[j]] = self.states[r]
            mask[j, :lens[j]] = 1
        return self._pool(self.enc.model.upper(h, mask, self.start), mask)


def train_lora(enc: Any, upper: Upper, t: Targets, tr: list[int], va: list[int], head: nn.Module,
               p: dict[str, Any]) -> tuple[dict[str, nn.Module], dict[str, Any]]:
    mods = add_lora(enc, p)
    g = torch.Generator().manual_seed(entry.seed() + 2)
    params = [q for m in mods.values() for q in (m.A, m.B)]
    opt = torch.optim.Adam([{"params": params, "lr": float(p["lora_lr"])},
                            {"params": list(head.parameters()), "lr": float(p["lora_lr"])}])
    bs, epochs = int(p["lora_batch_size"]), int(p["lora_epochs"])
    stop = Stopper(int(p["lora_patience"]))
    enc.model.train(False)                 # no dropout: the update is a function of data and seed
    yt = torch.from_numpy(t.y)
    ran = 0
    steps = math.ceil(len(tr) / bs)
    for epoch in range(1, epochs + 1):
        for s, idx in enumerate(torch.randperm(len(tr), generator=g).split(bs), 1):
            rows = [tr[int(i)] for i in idx]
            opt.zero_grad()
            t.loss(head(upper.pooled(rows)), yt[rows]).backward()
            opt.step()
            progress("lora", (epoch - 1) * steps + s, epochs * steps, f"epoch {epoch}")
        head.train(False)
        with torch.no_grad():
            xv = torch.cat([upper.pooled(va[i:i + adapted.FEATURE_BATCH])
                            for i in range(0, len(va), adapted.FEATURE_BATCH)]).float()
            val_loss = float(t.loss(head(xv), yt[va]))
        state = {**head_state(head), **lora_state(mods)}
        note = t.metric(state, xv.numpy(), va)
        entry.report_epoch(state, {"val_loss": val_loss})
        print(f"lora epoch {epoch}: val_loss={val_loss:.4f} {note}", flush=True)
        ran = epoch
        if stop.update(epoch, val_loss, state):
            break
    assert stop.state is not None
    for name, m in mods.items():
        m.A.data = torch.from_numpy(stop.state[f"{name}.lora_A.weight"])
        m.B.data = torch.from_numpy(stop.state[f"{name}.lora_B.weight"])
    load_head(head, stop.state)
    return mods, {"best_epoch": stop.best_epoch, "epochs_run": ran, "val_loss": stop.best}


def merge(enc: Any, mods: dict[str, nn.Module]) -> dict[str, np.ndarray]:
    """The base's tensors (its own names) with `W + scale * B @ A` on the targets; the in-memory
    model is switched to exactly these merged weights (so evaluation matches `predict`)."""
    from assay.api import open_model
    from assay.runtime.encoder import _strip
    art = open_model(entry.input_path("base"))
    out: dict[str, np.ndarray] = {}
    for tr_ in art.tensors:
        arr = np.array(tr_.read())
        name = _strip(tr_.name)
        if name.endswith(".weight") and name[:-len(".weight")] in mods:
            arr = (arr.astype(np.float32) + mods[name[:-len(".weight")]].delta()).astype(arr.dtype)
        out[tr_.name] = arr
    by_stripped = {_strip(k): v for k, v in out.items()}
    for name, m in mods.items():
        base = m.base
        base.weight.data = torch.from_numpy(np.array(by_stripped[f"{name}.weight"], dtype=np.float32))
        if "." in name:
            setattr(enc.model.get_submodule(name.rsplit(".", 1)[0]), name.rsplit(".", 1)[1], base)
        else:
            enc.model[int(name)] = base
    return out


# -- evaluation: the numbers `assay predict` reproduces -------------------------------------------
def _digest(values: Sequence[str]) -> str:
    import blake3
    return "blake3:" + blake3.blake3(",".join(values).encode()).hexdigest()


def evaluate(enc: Any, task: str, adapter: dict[str, np.ndarray], texts: Sequence[str], y: np.ndarray,
             keys: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """Numbers of the adapter on `texts` (labels `y`: class indices, or numbers for regress).
    `keys` (embed): the training items' raw features and labels, for recall@1."""
    x = adapted.features(enc, texts)
    n = len(texts)
    if task == "regress":
        pred = heads.values(adapter, x)
        return {"n": n, **heads.regression_metrics(pred, y),
                "predictions_digest": _digest([f"{v:.6g}" for v in pred])}
    if task == "embed":
        assert keys is not None
        kx, ky = keys
        before = heads.nearest_labels(x, kx, ky)
        z, zk = heads.project(adapter, x), heads.project(adapter, kx)
        after = heads.nearest_labels(z, zk, ky)
        return {"n": n, "recall_at_1_before": float((before == y).mean()) if n else 0.0,
                "recall_at_1": float((after == y).mean()) if n else 0.0,
                "predictions_digest": _digest([str(int(i)) for i in after])}
    pred, _ = heads.predict(adapter, x)
    correct = int((pred == y).sum())
    return {"n": n, "correct": correct, "accuracy": correct / n if n else 0.0,
            "predictions_digest": _digest([str(int(i)) for i in pred])}


class Inputs:
    """The training and holdout data as read and checked in the child, the split and targets."""

    def __init__(self, p: dict[str, Any]) -> None:
        self.task = task = str(p.get("task", "classify"))
        read = adapt_data.reader(p)
        self.train = train = read(entry.input_path("train"))
        adapt_data.check_training(train, task=task)
        self.classes = train.classes if task != "regress" else ()
        self.holdout = None
        if "holdout" in entry.context().inputs:
            self.holdout = read(entry.input_path("holdout"))
            adapt_data.check_holdout(self.holdout, self.classes, task=task)
        assert train.labels is not None
        self.tr, self.va = adapt_data.split(train.labels, float(p["val_fraction"]), entry.seed(),
                                            stratify=task != "regress")
        numbers = adapt_data.numeric_labels(train) if task == "regress" else None
        self.t = Targets(task, train.labels, self.classes, self.tr, numbers)
        what = f"{len(self.classes)} classes" if self.classes else "numeric labels"
        print(f"{len(train)} examples, {what}: {len(self.tr)} train, {len(self.va)} validation", flush=True)

    def holdout_targets(self) -> np.ndarray:
        assert self.holdout is not None and self.holdout.labels is not None
        if self.task == "regress":
            return np.array(adapt_data.numeric_labels(self.holdout), dtype=np.float64)
        return np.array([self.classes.index(v) for v in self.holdout.labels], dtype=np.int64)


def train_adapter(enc: Any, d: Inputs, p: dict[str, Any], meta: dict[str, Any]
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray] | None, Any]:
    """(adapter, the adapter the validation numbers are of, merged weights or None, features)."""
    t, tr, va = d.t, d.tr, d.va
    upper = None
    if p["method"] == "lora" and hasattr(enc, "model"):
        start = lora_layer_range(enc, p).start if isinstance(enc.model, Bert) else 0
        upper = Upper(enc, d.train.texts, start)
        x = upper.features
    else:
        x = cached_features(enc, d.train.texts, entry.input_path("train"), p)
    stage("features")
    if d.task == "embed":
        proj, info = train_projection(x, t, tr, va, p)
        meta.update(info, head="projection")
        stage("head")
        return {"projection.weight": proj}, {"projection.weight": proj}, None, x
    head, info = fit_head(x, t, tr, va, p)
    stage("head")
    if upper is None:
        val_adapter = t.in_units(head_state(head))
        if p.get("refit", True):
            head, info["refit"] = fit_head(x, t, tr + va, [], p, epochs=info["best_epoch"])
        meta.update(info)
        stage("refit")
        return t.in_units(head_state(head)), val_adapter, None, x
    mods, info = train_lora(enc, upper, t, tr, va, head, p)
    adapter = {**t.in_units(head_state(head)), **lora_state(mods)}
    stage("lora")
    merged = merge(enc, mods)
    meta.update(info, rank=int(p["rank"]), alpha=float(p["alpha"]))
    if isinstance(enc.model, Bert):
        r = lora_layer_range(enc, p)
        meta.update(targets=list(p["targets"]), lora_layers=[r.start, r.stop - 1])
    stage("merge")
    return adapter, adapter, merged, x


def main() -> None:
    entry.configure_torch(torch)
    stage("configure")
    p = entry.params()
    d = Inputs(p)
    from assay.api import open_model
    enc = adapted.build_encoder(str(p.get("modality", "text")), entry.input_path("base"), open_model,
                                output=str(p.get("output", "")) or None)
    if hasattr(enc, "check"):              # images: readable, of the pinned digests, of the right size
        for ex in (d.train, d.holdout):
            if ex is not None:
                enc.check(ex)
    stage("build")
    meta: dict[str, Any] = {"task": d.task, "method": p["method"], "head": p["head"],
                            "classes": list(d.classes), "text_column": p["text_column"],
                            "label_column": p["label_column"], "train": {"n": len(d.tr)}}
    adapter, val_adapter, merged, x = train_adapter(enc, d, p, meta)
    if hasattr(enc, "model"):
        enc.model.train(False)
    t, tr, va = d.t, d.tr, d.va
    embed = d.task == "embed"
    yv = t.raw[va] if d.task == "regress" else t.y[va]
    meta["validation"] = evaluate(enc, d.task, val_adapter, [d.train.texts[i] for i in va], yv,
                                  (x[tr], t.y[tr]) if embed else None)
    if d.task == "regress":
        meta["target"] = {"mean": t.mean, "std": t.std}
    if d.holdout is not None:           # embed: against every training item
        meta["holdout"] = evaluate(enc, d.task, adapter, d.holdout.texts, d.holdout_targets(),
                                   (x, t.y) if embed else None)
    stage("evaluate")
    text = json.dumps(meta, sort_keys=True)
    print(f"adapter: {text}", flush=True)
    entry.save_outputs(adapter, "adapter", metadata={"assay.adapt": text})
    if merged is not None:
        entry.save_outputs(merged, "merged")
    stage("save")


if __name__ == "__main__":
    main()
