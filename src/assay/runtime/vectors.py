"""Static word vectors as a lookup: the tensor a word-vector reader produced and its vocabulary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from assay.errors import UsageError
from assay.model.artifact import ModelArtifact
from assay.model.tensor import TensorRecord

if TYPE_CHECKING:
    import numpy as np


def vector_tensor(art: ModelArtifact) -> TensorRecord | None:
    """The artifact's word-vector tensor (one carrying `attrs["vocabulary"]`), if any."""
    for t in art.tensors:
        if isinstance(t.attrs.get("vocabulary"), tuple):
            return t
    return None


class WordVectors:
    """Rows of a `words x dim` tensor by word. Unknown words give rows of NaN. When the
    vocabulary has no upper-case letter at all (an uncased model such as GloVe 6B), words are
    looked up lower-cased."""

    def __init__(self, rec: TensorRecord, name: str) -> None:
        words = rec.attrs.get("vocabulary")
        if not isinstance(words, tuple) or len(rec.shape) != 2 or len(words) != rec.shape[0]:
            raise UsageError(name, "tensor is not a word-vector table with a vocabulary")
        self.name = name
        self.rec = rec
        self.index = {w: i for i, w in enumerate(words)}   # first occurrence wins below
        for i in range(len(words) - 1, -1, -1):
            self.index[words[i]] = i
        self.uncased = not any(w != w.lower() for w in words)

    @classmethod
    def from_artifact(cls, art: ModelArtifact) -> WordVectors:
        rec = vector_tensor(art)
        if rec is None:
            raise UsageError(art.path, "holds no word vectors (word2vec, GloVe or gensim KeyedVectors)")
        return cls(rec, art.path)

    @property
    def dim(self) -> int:
        return self.rec.shape[1]

    def __contains__(self, word: str) -> bool:
        return self._row(word) is not None

    def _row(self, word: str) -> int | None:
        i = self.index.get(word)
        if i is None and self.uncased:
            i = self.index.get(word.lower())
        return i

    def embed(self, words: Sequence[str]) -> np.ndarray:
        import numpy as np

        mat = self.rec.read()
        out = np.full((len(words), self.dim), np.nan, dtype=np.float64)
        for k, w in enumerate(words):
            i = self._row(w)
            if i is not None:
                out[k] = mat[i]
        return out
