"""A BERT encoder in plain PyTorch for `adapt`, `predict` and `cost`: the same computation as
`transformers.BertModel` (absolute positions, GELU, post-LayerNorm, no pooler output used) with
the same module and tensor names, without importing `transformers` (whose import alone takes
seconds of a CPU adapt).

Built in code from the folder's config and filled with the tensors assay read, exactly as
`runtime.encoder.build` does (same checks of config against weights, same tokenizer, same
pooling); a config this module does not cover (another activation, relative positions, a
decoder) is built by `runtime.encoder.build` instead. The network can also run in two halves,
`lower` (embeddings and the first layers) and `upper` (the rest), so that LoRA on the top layers
trains on the lower layers' cached hidden states.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from assay.errors import FormatError
from assay.model.artifact import ModelArtifact
from assay.runtime.encoder import OPTIONAL_BUFFERS, SentenceEncoder, _check_sizes, _tokenizer, read_spec
from assay.runtime.encoder import build as build_transformers
from assay.runtime.encoder import state_dict as read_state

ACTIVATIONS = {"gelu": nn.functional.gelu, "relu": nn.functional.relu}


class _Named(nn.Module):
    """An empty container: gives submodules the names `transformers` uses."""


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads, self.size = heads, hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, self.size).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        # softmax(q k^T / sqrt(d) + mask) v in one fused kernel (the default scale is 1/sqrt(d))
        out = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        return out.transpose(1, 2).reshape(b, t, h)


class Layer(nn.Module):
    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        hidden, eps = int(cfg["hidden_size"]), float(cfg.get("layer_norm_eps", 1e-12))
        self.act = ACTIVATIONS[str(cfg.get("hidden_act", "gelu"))]
        self.attention = _Named()
        self.attention.self = SelfAttention(hidden, int(cfg["num_attention_heads"]))
        self.attention.output = _Named()
        self.attention.output.dense = nn.Linear(hidden, hidden)
        self.attention.output.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.intermediate = _Named()
        self.intermediate.dense = nn.Linear(hidden, int(cfg["intermediate_size"]))
        self.output = _Named()
        self.output.dense = nn.Linear(int(cfg["intermediate_size"]), hidden)
        self.output.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        a = self.attention
        x = a.output.LayerNorm(a.output.dense(a.self(x, keep)) + x)
        return self.output.LayerNorm(self.output.dense(self.act(self.intermediate.dense(x))) + x)


class Bert(nn.Module):
    """`transformers.BertModel`'s encoder computation; returns `(last_hidden_state,)`."""

    def __init__(self, cfg: dict[str, Any], pooler: bool) -> None:
        super().__init__()
        hidden = int(cfg["hidden_size"])
        self.embeddings = _Named()
        self.embeddings.word_embeddings = nn.Embedding(int(cfg["vocab_size"]), hidden)
        self.embeddings.position_embeddings = nn.Embedding(int(cfg["max_position_embeddings"]), hidden)
        self.embeddings.token_type_embeddings = nn.Embedding(int(cfg["type_vocab_size"]), hidden)
        self.embeddings.LayerNorm = nn.LayerNorm(hidden, eps=float(cfg.get("layer_norm_eps", 1e-12)))
        self.encoder = _Named()
        self.encoder.layer = nn.ModuleList(Layer(cfg) for _ in range(int(cfg["num_hidden_layers"])))
        if pooler:              # read so that the weights match; sentence features never use it
            self.pooler = _Named()
            self.pooler.dense = nn.Linear(hidden, hidden)

    @staticmethod
    def keep_mask(attention_mask: torch.Tensor) -> torch.Tensor:
        return attention_mask.bool()[:, None, None, :]

    def lower(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor,
              upto: int) -> torch.Tensor:
        """Hidden states after the embeddings and the first `upto` layers."""
        e = self.embeddings
        pos = torch.arange(input_ids.shape[1])[None, :]
        x = e.LayerNorm(e.word_embeddings(input_ids) + e.token_type_embeddings(token_type_ids)
                        + e.position_embeddings(pos))
        keep = self.keep_mask(attention_mask)
        for layer in self.encoder.layer[:upto]:
            x = layer(x, keep)
        return x

    def upper(self, x: torch.Tensor, attention_mask: torch.Tensor, start: int) -> torch.Tensor:
        """Hidden states after layers `start`, `start + 1`, ... of the states `x`."""
        keep = self.keep_mask(attention_mask)
        for layer in self.encoder.layer[start:]:
            x = layer(x, keep)
        return x

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> tuple[torch.Tensor]:
        n = len(self.encoder.layer)
        return (self.lower(input_ids, attention_mask, token_type_ids, n),)


def supported(cfg: dict[str, Any]) -> bool:
    return (cfg.get("hidden_act", "gelu") in ACTIVATIONS
            and cfg.get("position_embedding_type", "absolute") == "absolute"
            and not cfg.get("is_decoder") and not cfg.get("add_cross_attention"))


def build(art: ModelArtifact, folder: str) -> SentenceEncoder:
    """The folder's encoder, as `runtime.encoder.build` makes it, on this module's network when
    the config is one it covers (else on `transformers.BertModel`)."""
    spec = read_spec(folder)
    cfg = {k: v for k, v in spec.config.items() if not k.startswith("_")}
    if not supported(cfg):
        return build_transformers(art, folder)
    _check_sizes(cfg, art, folder)       # before anything is allocated from the config's numbers
    heads = cfg["num_attention_heads"]
    weights = read_state(art)
    model = Bert(cfg, pooler=any(k.startswith("pooler.") for k in weights))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    if missing:
        raise FormatError(folder, f"{len(missing)} encoder tensors are not in the weights, "
                                  f"e.g. {missing[0]!r}")
    extra = sorted(set(weights) - set(expected) - set(OPTIONAL_BUFFERS))
    if extra:
        raise FormatError(folder, f"{len(extra)} tensors do not belong to a bert encoder, e.g. {extra[0]!r}")
    for k, v in expected.items():
        if tuple(weights[k].shape) != tuple(v.shape):
            raise FormatError(folder, f"tensor {k!r} has shape {tuple(weights[k].shape)}, the config "
                              f"implies {tuple(v.shape)} ({heads} heads)")
    model.load_state_dict({k: weights[k] for k in expected})
    model.train(False)
    return SentenceEncoder(spec, model, _tokenizer(spec), os.path.basename(os.path.normpath(folder)))
