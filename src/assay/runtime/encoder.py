"""BERT-family sentence encoders (Hugging Face / sentence-transformers folders), run on CPU.

The folder supplies `config.json` (`model_type` "bert"), a tokenizer (`tokenizer.json`, else
`vocab.txt`), and optionally sentence-transformers' `modules.json`, `1_Pooling/config.json` (mean,
CLS, max or mean/sqrt(len) pooling) and `sentence_bert_config.json` (`max_seq_length`). The
network is `transformers.BertModel` built from a `BertConfig` in code, and its state dict is the
tensors assay read from the weight files (`TensorRecord.read()`), loaded with `load_state_dict`.
Nothing in the folder is imported or executed: no `from_pretrained`, no remote code, no pickle.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assay.errors import FormatError, UnsupportedError
from assay.io.jsonfile import read_json_file
from assay.model.artifact import ModelArtifact
from assay.runtime import require

if TYPE_CHECKING:
    import numpy as np
    import torch

MAX_SIDE_FILE = 16 << 20
POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len")
KNOWN_MODULES = {"sentence_transformers.models.Transformer": "transformer",
                 "sentence_transformers.models.Pooling": "pooling",
                 "sentence_transformers.models.Normalize": "normalize"}
# Names some checkpoints put before the encoder's own tensor names.
PREFIXES = ("bert.", "model.", "0.auto_model.", "auto_model.")
# Buffers a checkpoint may carry or lack without changing the computation.
OPTIONAL_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
SUPPORTED_TYPES = ("bert",)


@dataclass(frozen=True)
class EncoderSpec:
    """What the folder declares: architecture config, pooling, normalisation, sequence length."""

    folder: str
    config: dict[str, Any]
    pooling: str
    normalize: bool
    max_seq_length: int
    tokenizer_file: str          # tokenizer.json, or vocab.txt for a WordPiece vocabulary
    lowercase: bool


def _count(v: object, path: str, key: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 1 << 20:
        raise FormatError(path, f"{key} must be a positive integer, not {v!r}")
    return v


def _pooling_mode(cfg: dict[str, Any], path: str) -> str:
    modes = [m for m, key in (("cls", "pooling_mode_cls_token"), ("mean", "pooling_mode_mean_tokens"),
                              ("max", "pooling_mode_max_tokens"),
                              ("mean_sqrt_len", "pooling_mode_mean_sqrt_len_tokens")) if cfg.get(key)]
    if len(modes) != 1:
        raise UnsupportedError(path, f"pooling must select exactly one of {', '.join(POOLING_MODES)} "
                               f"(selected: {modes or 'none'})")
    return modes[0]


def read_spec(folder: str) -> EncoderSpec:
    """Read what a sentence-encoder folder declares (small JSON files only)."""
    cfg_path = os.path.join(folder, "config.json")
    if not os.path.isfile(cfg_path):
        raise FormatError(folder, "no config.json: cannot tell the architecture")
    config = read_json_file(cfg_path)
    if not isinstance(config, dict):
        raise FormatError(cfg_path, "config is not a JSON object")
    mtype = config.get("model_type")
    if mtype not in SUPPORTED_TYPES:
        raise UnsupportedError(cfg_path, f"model_type {mtype!r} is not a supported encoder "
                               f"({', '.join(SUPPORTED_TYPES)})")
    pooling, normalize = "mean", False
    modules_path = os.path.join(folder, "modules.json")
    if os.path.isfile(modules_path):
        modules = read_json_file(modules_path)
        if not isinstance(modules, list):
            raise FormatError(modules_path, "modules.json is not a list")
        for m in modules:
            kind = KNOWN_MODULES.get(m.get("type")) if isinstance(m, dict) else None
            if kind is None:
                raise UnsupportedError(modules_path, f"module {m!r} is not one assay runs "
                                       "(Transformer, Pooling, Normalize)")
            sub = str(m.get("path", ""))
            if kind == "pooling":
                pcfg_path = os.path.join(folder, sub, "config.json")
                if os.path.isabs(sub) or ".." in sub.split("/") or not os.path.isfile(pcfg_path):
                    raise FormatError(modules_path, f"pooling config {sub!r} missing or outside the folder")
                pcfg = read_json_file(pcfg_path)
                pooling = _pooling_mode(pcfg if isinstance(pcfg, dict) else {}, pcfg_path)
            elif kind == "normalize":
                normalize = True
    max_len = _count(config.get("max_position_embeddings", 512), cfg_path, "max_position_embeddings")
    sbert = os.path.join(folder, "sentence_bert_config.json")
    lowercase = False
    if os.path.isfile(sbert):
        scfg = read_json_file(sbert)
        if isinstance(scfg, dict):
            max_len = min(max_len, _count(scfg.get("max_seq_length") or max_len, sbert, "max_seq_length"))
            lowercase = bool(scfg.get("do_lower_case", False))
    tok = os.path.join(folder, "tokenizer.json")
    if not os.path.isfile(tok):
        tok = os.path.join(folder, "vocab.txt")
        if not os.path.isfile(tok):
            raise FormatError(folder, "no tokenizer.json or vocab.txt")
        tcfg_path = os.path.join(folder, "tokenizer_config.json")
        tcfg = read_json_file(tcfg_path) if os.path.isfile(tcfg_path) else {}
        lowercase = lowercase or bool(isinstance(tcfg, dict) and tcfg.get("do_lower_case", True))
    return EncoderSpec(folder, config, pooling, normalize, max_len, tok, lowercase)


def state_dict(art: ModelArtifact) -> dict[str, torch.Tensor]:
    """The artifact's tensors as float32 torch tensors, with known name prefixes removed."""
    import numpy as np
    import torch

    out: dict[str, torch.Tensor] = {}
    for t in art.tensors:
        name = _strip(t.name)
        arr = t.read()
        if arr.dtype.kind == "f":
            arr = np.array(arr, dtype=np.float32)
        else:
            arr = np.array(arr)
        out[name] = torch.from_numpy(arr)
    return out


def _strip(name: str) -> str:
    for p in PREFIXES:
        if name.startswith(p):
            return name[len(p):]
    return name


def _check_sizes(cfg: dict[str, Any], art: ModelArtifact, folder: str) -> None:
    """The config's sizes must be those of the weights (a hostile config cannot make assay
    allocate a model larger than the file it came with)."""
    shapes = {_strip(t.name): t.shape for t in art.tensors}
    layers = {n.split(".")[2] for n in shapes if n.startswith("encoder.layer.")}
    expect = {
        ("vocab_size", "hidden_size"): shapes.get("embeddings.word_embeddings.weight"),
        ("max_position_embeddings", "hidden_size"): shapes.get("embeddings.position_embeddings.weight"),
        ("type_vocab_size", "hidden_size"): shapes.get("embeddings.token_type_embeddings.weight"),
        ("intermediate_size", "hidden_size"): shapes.get("encoder.layer.0.intermediate.dense.weight"),
    }
    where = os.path.join(folder, "config.json")
    for keys, shape in expect.items():
        if shape is None:
            raise FormatError(folder, f"weights lack the tensor giving {keys[0]}")
        want = tuple(cfg.get(k) for k in keys)
        if want != tuple(shape):
            raise FormatError(where, f"{'/'.join(keys)} {want} do not match the weights {tuple(shape)}")
    n = cfg.get("num_hidden_layers")
    if n != len(layers):
        raise FormatError(where, f"num_hidden_layers {n!r} does not match the {len(layers)} layers "
                          "in the weights")
    heads = cfg.get("num_attention_heads")
    if not isinstance(heads, int) or heads < 1 or cfg["hidden_size"] % heads:
        raise FormatError(where, f"num_attention_heads {heads!r} does not divide hidden_size")


def pool(tokens: torch.Tensor, mask: torch.Tensor, mode: str, normalize: bool) -> torch.Tensor:
    """Sentence vectors from token states (sentence-transformers' Pooling and Normalize)."""
    import torch

    m = mask.unsqueeze(-1).to(tokens.dtype)
    if mode == "cls":
        pooled = tokens[:, 0]
    elif mode == "max":
        pooled = tokens.masked_fill(m == 0, -1e9).max(dim=1).values
    else:
        summed = (tokens * m).sum(dim=1)
        counts = m.sum(dim=1).clamp(min=1e-9)
        pooled = summed / (counts.sqrt() if mode == "mean_sqrt_len" else counts)
    if normalize:
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
    return pooled


class SentenceEncoder:
    """A sentence encoder: tokenizer, BertModel, pooling, optional L2 normalisation."""

    def __init__(self, spec: EncoderSpec, model: Any, tokenizer: Any, name: str) -> None:
        self.spec = spec
        self.model = model
        self.tokenizer = tokenizer
        self.name = name

    @property
    def dim(self) -> int:
        return int(self.spec.config.get("hidden_size", 0))

    def _batch(self, sentences: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        import torch

        enc = self.tokenizer.encode_batch(list(sentences))
        ids = torch.tensor([e.ids for e in enc], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.long)
        types = torch.tensor([e.type_ids for e in enc], dtype=torch.long)
        return ids, mask, types

    def embed(self, sentences: Sequence[str]) -> torch.Tensor:
        """Pooled (and normalised) embeddings as a torch tensor, with gradients when enabled."""

        ids, mask, types = self._batch(sentences)
        out = self.model(input_ids=ids, attention_mask=mask, token_type_ids=types)
        return pool(out[0], mask, self.spec.pooling, self.spec.normalize)

    def encode(self, sentences: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embeddings of `sentences` (float32, one row each), computed without gradients."""
        import numpy as np
        import torch

        rows = []
        self.model.train(False)
        with torch.inference_mode():
            for i in range(0, len(sentences), batch_size):
                rows.append(self.embed(sentences[i:i + batch_size]).float().numpy())
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(rows).astype(np.float32)


def _tokenizer(spec: EncoderSpec) -> Any:
    import tokenizers

    try:
        if spec.tokenizer_file.endswith(".json"):
            tok = tokenizers.Tokenizer.from_file(spec.tokenizer_file)
        else:
            tok = tokenizers.BertWordPieceTokenizer(spec.tokenizer_file, lowercase=spec.lowercase)
    except Exception as exc:  # the library raises plain Exceptions for malformed files
        raise FormatError(spec.tokenizer_file, f"tokenizer cannot be read ({exc})") from None
    pad_id = int(spec.config.get("pad_token_id") or 0)
    pad_token = tok.id_to_token(pad_id) or "[PAD]"
    tok.enable_truncation(max_length=spec.max_seq_length)
    tok.enable_padding(pad_id=pad_id, pad_token=pad_token)
    return tok


def build(art: ModelArtifact, folder: str) -> SentenceEncoder:
    """Build the encoder a folder declares and fill it with the artifact's tensors."""
    require("torch", "transformers", "tokenizers")
    spec = read_spec(folder)
    from transformers import BertConfig, BertModel

    cfg = {k: v for k, v in spec.config.items()
           if not k.startswith("_") and k not in ("auto_map", "architectures")}
    _check_sizes(cfg, art, folder)      # before anything is allocated from the config's numbers
    weights = state_dict(art)
    pooler = any(k.startswith("pooler.") for k in weights)
    try:
        model = BertModel(BertConfig(**cfg), add_pooling_layer=pooler)
    except (TypeError, ValueError, AttributeError) as exc:
        raise FormatError(os.path.join(folder, "config.json"),
                          f"config cannot build the encoder ({exc})") from None
    expected = set(model.state_dict())
    missing = sorted(expected - set(weights) - set(OPTIONAL_BUFFERS))
    if missing:
        raise FormatError(folder, f"{len(missing)} encoder tensors are not in the weights, "
                          f"e.g. {missing[0]!r}")
    extra = sorted(set(weights) - expected - set(OPTIONAL_BUFFERS))
    if extra:
        raise FormatError(folder, f"{len(extra)} tensors do not belong to a {spec.config['model_type']} "
                          f"encoder, e.g. {extra[0]!r}")
    for k in list(weights):
        if k in expected and tuple(weights[k].shape) != tuple(model.state_dict()[k].shape):
            raise FormatError(folder, f"tensor {k!r} has shape {tuple(weights[k].shape)}, the config "
                              f"implies {tuple(model.state_dict()[k].shape)}")
    model.load_state_dict({k: v for k, v in weights.items() if k in expected}, strict=False)
    model.train(False)
    return SentenceEncoder(spec, model, _tokenizer(spec), os.path.basename(os.path.normpath(folder)))


# -- ONNX encoders -------------------------------------------------------------------------------
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _pool(tokens: np.ndarray, mask: np.ndarray, mode: str, normalize: bool) -> np.ndarray:
    import numpy as np

    m = mask[..., None].astype(tokens.dtype)
    if mode == "cls":
        pooled = tokens[:, 0]
    elif mode == "max":
        pooled = np.where(m == 0, -1e9, tokens).max(axis=1)
    else:
        counts = np.clip(m.sum(axis=1), 1e-9, None)
        pooled = (tokens * m).sum(axis=1) / (np.sqrt(counts) if mode == "mean_sqrt_len" else counts)
    if normalize:
        pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    return pooled.astype(np.float32)


class OnnxSentenceEncoder:
    """The same encoder exported to ONNX (`model.onnx` or `onnx/model.onnx` in the folder, as
    Hugging Face exports place it), run with onnxruntime; the first output must be the token
    embeddings (batch, tokens, hidden). Standard operators only, no external data."""

    def __init__(self, spec: EncoderSpec, model_path: str) -> None:
        from assay.runtime.onnx_model import session
        self.spec = spec
        self.session = session(model_path)
        self.inputs = [i.name for i in self.session.get_inputs()]
        unknown = [n for n in self.inputs if n not in ONNX_INPUTS]
        if unknown:
            raise UnsupportedError(model_path, f"encoder input {unknown[0]!r} is not one of "
                                   f"{', '.join(ONNX_INPUTS)}")
        self.tokenizer = _tokenizer(spec)
        self.name = os.path.basename(os.path.normpath(spec.folder))

    def encode(self, sentences: Sequence[str], batch_size: int = 64) -> np.ndarray:
        import numpy as np

        rows = []
        for i in range(0, len(sentences), batch_size):
            enc = self.tokenizer.encode_batch(list(sentences[i:i + batch_size]))
            feed = {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                    "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                    "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64)}
            tokens = self.session.run(None, {k: feed[k] for k in self.inputs})[0]
            rows.append(_pool(np.asarray(tokens, dtype=np.float32), feed["attention_mask"], self.spec.pooling,
                              self.spec.normalize))
        if not rows:
            return np.zeros((0, int(self.spec.config.get("hidden_size", 0))), dtype=np.float32)
        return np.concatenate(rows)


def onnx_model_path(folder: str) -> str | None:
    for rel in ("model.onnx", os.path.join("onnx", "model.onnx")):
        p = os.path.join(folder, rel)
        if os.path.isfile(p):
            return p
    return None


def build_onnx(folder: str) -> OnnxSentenceEncoder:
    require("onnxruntime", "tokenizers")
    spec = read_spec(folder)
    path = onnx_model_path(folder)
    if path is None:
        raise FormatError(folder, "no model.onnx or onnx/model.onnx")
    return OnnxSentenceEncoder(spec, path)
