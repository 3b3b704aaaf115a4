"""Static word vectors: word2vec binary and text, GloVe text, gensim KeyedVectors pickles.

- word2vec binary (`word2vec -binary 1`, gensim `save_word2vec_format(binary=True)`): an ASCII
  header `<count> <dim>\\n`, then per word its UTF-8 bytes, one space, `dim` little-endian float32
  values, and usually a newline. Vectors are copied into one `count x dim` float32 tensor.
- text: one word per line followed by `dim` decimal numbers, separated by spaces; word2vec text
  files start with the `<count> <dim>` header, GloVe files do not. Words may contain spaces (the
  last `dim` fields are the numbers).
- gensim KeyedVectors (`KeyedVectors.save`, gensim 3 and 4): a pickle. It runs on the emulated
  pickle machine, never through `pickle` or gensim: the vectors are the NumPy array the graph
  rebuilds (or the sibling `<file>.vectors.npy` gensim writes for large arrays, read with the
  NumPy reader), the vocabulary comes from `index2word` / `index_to_key` (plain or NumPy
  strings) checked against the `vocab` (`Vocab` objects' `index`) or `key_to_index` maps.

The tensor is named `vectors`; its `attrs["vocabulary"]` holds the words, one per row.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

from assay.errors import FormatError, LimitError, UnsupportedError
from assay.formats.base import Probe, Reader, record_from_array
from assay.formats.pickle.objects import calls, object_state
from assay.formats.pickle.symbols import Call, Global, Raw
from assay.formats.plain_pickle import ArrayResolver, Tensors, guarded
from assay.io.source import Source
from assay.model.artifact import ModelArtifact
from assay.model.tensor import TensorRecord

HEADER = re.compile(rb"[ \t]*(\d{1,12})[ \t]+(\d{1,7})[ \t]*\r?\n")
MAX_WORD_BYTES = 1 << 16
MAX_DIM = 1 << 20
GENSIM_MODULES = ("gensim.models.keyedvectors", "gensim.models.word2vec", "gensim.models.fasttext")
SCALAR = ("numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar")


# -- text ----------------------------------------------------------------------------------------
def _is_float(s: bytes) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _vector_line(line: bytes, dim: int | None) -> int | None:
    """The number of trailing numbers if `line` is `word n1 n2 ...` (at least 2), else None."""
    parts = line.split()
    if len(parts) < 3:
        return None
    if dim is not None:
        return dim if len(parts) > dim and all(_is_float(p) for p in parts[-dim:]) else None
    k = 0
    for p in reversed(parts):
        if not _is_float(p):
            break
        k += 1
    if k == len(parts):          # the word itself is a number: assume one word field
        k -= 1
    return k if k >= 2 else None


def _complete_lines(head: bytes, more: bool) -> list[bytes]:
    lines = head.split(b"\n")
    if more:
        lines = lines[:-1]       # the last line may be cut off by the end of the probe
    return [ln.rstrip(b"\r") for ln in lines if ln.strip()]


def sniff_text(p: Probe) -> bool:
    more = p.size > len(p.head)
    try:
        p.head.decode("utf-8") if not more else p.head[:-4].decode("utf-8")
    except UnicodeDecodeError:
        return False
    lines = _complete_lines(p.head, more)
    if not lines:
        return False
    m = HEADER.fullmatch(lines[0] + b"\n")
    if m:
        dim = int(m.group(2))
        return len(lines) > 1 and dim >= 1 and _vector_line(lines[1], dim) == dim
    if len(lines) < 2:
        return False
    k = _vector_line(lines[0], None)
    return k is not None and _vector_line(lines[1], k) == k


def _read_text(p: Probe) -> ModelArtifact:
    import numpy as np

    data = bytes(Source.open(p.path).data)
    lines = data.split(b"\n")
    declared: int | None = None
    m = HEADER.fullmatch(lines[0] + b"\n") if lines else None
    if m:
        declared, dim = int(m.group(1)), int(m.group(2))
        lines = lines[1:]
        first_line = 2
    else:
        first = next((ln for ln in lines if ln.strip()), b"")
        k = _vector_line(first, None)
        if k is None:
            raise FormatError(p.path, "word vectors: first line is not a word followed by numbers")
        dim, first_line = k, 1
    if not 1 <= dim <= MAX_DIM:
        raise LimitError(p.path, f"word vectors: dimension {dim} out of range")
    if len(lines) * dim > p.limits.max_array_items:
        raise LimitError(p.path, f"word vectors: {len(lines)} lines of {dim} values over the limit")
    words: list[str] = []
    arr = np.empty((len(lines), dim), dtype=np.float32)     # filled row by row, trimmed below
    for i, ln in enumerate(lines):
        ln = ln.rstrip(b"\r")
        if not ln.strip():
            continue
        parts = ln.rstrip().split(b" ")
        if len(parts) <= dim:
            raise FormatError(p.path, f"word vectors: line {i + first_line} has {len(parts) - 1} "
                              f"numbers, expected {dim}")
        try:
            words.append(b" ".join(parts[:-dim]).decode("utf-8"))
        except UnicodeDecodeError:
            raise FormatError(p.path, f"word vectors: line {i + first_line}: word is not UTF-8") from None
        try:
            arr[len(words) - 1] = np.array(parts[-dim:], dtype=np.float32)
        except ValueError:
            raise FormatError(p.path, f"word vectors: line {i + first_line}: a value is not "
                              "a number") from None
    if declared is not None and declared != len(words):
        raise FormatError(p.path, f"word vectors: header declares {declared} words, file holds {len(words)}")
    arr = arr[:len(words)]
    fmt = "word-vectors-text"
    art = ModelArtifact(path=p.path, format=fmt, files=[p.path])
    art.tensors.append(_with_vocabulary(record_from_array("vectors", arr, p.path), words, p.path))
    art.metadata["wordvec"] = {"flavour": "word2vec" if declared is not None else "glove",
                               "words": len(words), "dim": dim}
    return art


# -- binary --------------------------------------------------------------------------------------
def sniff_binary(p: Probe) -> bool:
    m = HEADER.match(p.head)
    if not m:
        return False
    rest = p.head[m.end():]
    if not rest:
        return False
    return not sniff_text(p) and b" " in rest[:MAX_WORD_BYTES]


def _read_binary(p: Probe) -> ModelArtifact:
    import numpy as np

    data = Source.open(p.path).data
    raw = bytes(data[:64])
    m = HEADER.match(raw)
    if not m:
        raise FormatError(p.path, "word2vec: missing '<count> <dim>' header")
    count, dim = int(m.group(1)), int(m.group(2))
    if not 1 <= dim <= MAX_DIM or count * dim > p.limits.max_array_items:
        raise LimitError(p.path, f"word2vec: {count} x {dim} vectors over the limit")
    width = 4 * dim
    pos = m.end()
    if count * (width + 2) > len(data) - pos:
        raise FormatError(p.path, f"word2vec: header declares {count} vectors of {dim} floats but "
                          f"only {len(data) - pos} bytes follow (truncated?)", offset=pos)
    buf = bytes(data)   # one copy: bytes.find is fast, memoryview has none
    out = np.empty((count, dim), dtype="<f4")
    words: list[str] = []
    for i in range(count):
        while pos < len(buf) and buf[pos] in (0x0A, 0x0D):
            pos += 1
        sp = buf.find(b" ", pos, pos + MAX_WORD_BYTES)
        if sp < 0:
            raise FormatError(p.path, f"word2vec: word {i} has no terminating space", offset=pos)
        try:
            words.append(buf[pos:sp].decode("utf-8"))
        except UnicodeDecodeError:
            words.append(buf[pos:sp].decode("latin-1"))
        pos = sp + 1
        if pos + width > len(buf):
            raise FormatError(p.path, f"word2vec: vector {i} ends past the end of the file", offset=pos)
        out[i] = np.frombuffer(buf, dtype="<f4", count=dim, offset=pos)
        pos += width
    art = ModelArtifact(path=p.path, format="word2vec-binary", files=[p.path])
    tail = buf[pos:].strip(b"\r\n")
    if tail:
        art.observe("trailing.bytes", f"{len(tail)} bytes after the last vector", p.path, offset=pos,
                    length=len(tail), looks_like=None)
    art.tensors.append(_with_vocabulary(record_from_array("vectors", out, p.path), words, p.path))
    art.metadata["wordvec"] = {"flavour": "word2vec-binary", "words": count, "dim": dim}
    return art


# -- gensim KeyedVectors pickles ---------------------------------------------------------------
def sniff_gensim(p: Probe) -> bool:
    h = p.head
    return len(h) >= 2 and h[0] == 0x80 and 2 <= h[1] <= 5 and b"gensim.models" in h[:1024]


def _word(v: Any) -> str | None:
    """A word: a str, bytes, or a NumPy `str_` scalar (`scalar(dtype('U<n>'), utf-32 bytes)`)."""
    if isinstance(v, str):
        return v
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, Call) and calls(v, *SCALAR) and len(v.args) >= 2:
        dt, raw = v.args[0], v.args[1]
        if isinstance(raw, Raw):
            raw = raw.tobytes()
        if not (calls(dt, "numpy.dtype") and dt.args and isinstance(dt.args[0], str)
                and isinstance(raw, bytes)):
            return None
        code = dt.args[0]
        big = isinstance(dt.state, tuple) and len(dt.state) > 1 and dt.state[1] == ">"
        if code.startswith("U") and len(raw) % 4 == 0:
            try:
                return raw.decode("utf-32-be" if big else "utf-32-le").rstrip("\x00")
            except UnicodeDecodeError:
                return None
        if code.startswith("S"):
            return raw.rstrip(b"\x00").decode("utf-8", "replace")
    return None


def _index(v: Any) -> int | None:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, Call):
        from assay.formats.pickle.objects import numpy_scalar
        s = numpy_scalar(v)
        return s if isinstance(s, int) else None
    return None


def _vocabulary(state: dict[str, Any], rows: int, path: str) -> list[str]:
    order = state.get("index2word", state.get("index_to_key"))
    if isinstance(order, Call):     # a list subclass or a numpy object array: not read
        order = None
    words: list[str] | None = None
    if isinstance(order, list):
        words = []
        for i, w in enumerate(order):
            s = _word(w)
            if s is None:
                raise FormatError(path, f"gensim: word {i} of the index is not a string")
            words.append(s)
    mapping = state.get("vocab", state.get("key_to_index"))
    if isinstance(mapping, dict) and mapping:
        from_map: dict[int, str] = {}
        for k, v in mapping.items():
            word = _word(k)
            idx = _index(v) if not isinstance(v, Call) or calls(v, *SCALAR) else \
                _index(object_state(v).get("index"))
            if word is None or idx is None or not 0 <= idx < rows:
                raise FormatError(path, f"gensim: vocabulary entry {word!r} has no valid row index")
            if idx in from_map:
                raise FormatError(path, f"gensim: row {idx} is claimed by two words")
            from_map[idx] = word
        if words is None:
            if len(from_map) != rows:
                raise FormatError(path, f"gensim: vocabulary has {len(from_map)} words for {rows} rows")
            words = [from_map[i] for i in range(rows)]
        elif any(words[i] != w for i, w in from_map.items() if i < len(words)):
            raise FormatError(path, "gensim: the word index and the vocabulary disagree")
    if words is None:
        raise UnsupportedError(path, "gensim: no index2word / index_to_key vocabulary found")
    if len(words) != rows:
        raise FormatError(path, f"gensim: {len(words)} words for {rows} vector rows")
    return words


def _with_vocabulary(rec: TensorRecord, words: list[str], path: str) -> TensorRecord:
    if len(rec.shape) != 2 or rec.shape[0] != len(words):
        raise FormatError(path, f"word vectors: {len(words)} words for a tensor of shape {rec.shape}")
    return dataclasses.replace(rec, attrs={**rec.attrs, "vocabulary": tuple(words)})


def _sibling_vectors(p: Probe, state: dict[str, Any], art: ModelArtifact) -> TensorRecord | None:
    """gensim's `<file>.vectors.npy`, written beside the pickle for large arrays."""
    numpys = state.get("__numpys")
    if not (isinstance(numpys, list) and "vectors" in numpys):
        return None
    side = f"{p.path}.vectors.npy"
    if not os.path.isfile(side):
        raise FormatError(p.path, f"gensim: vectors are stored in {os.path.basename(side)}, which is missing")
    from assay.formats import read_file
    part = read_file(side, p.limits)
    if part.format != "numpy-npy" or len(part.tensors) != 1:
        raise FormatError(side, "gensim: side file is not a single NumPy array")
    art.files.append(side)
    return dataclasses.replace(part.tensors[0], name="vectors")


def _read_gensim(p: Probe) -> ModelArtifact:
    from assay.formats.pickle.machine import run_pickle

    data = Source.open(p.path).data
    art = ModelArtifact(path=p.path, format="gensim-keyedvectors", files=[p.path])
    res = run_pickle(data, p.path, limits=p.limits)
    art.observations.extend(res.observations(p.path))
    root = res.value
    cls = root.func if isinstance(root, Call) else None
    if not (isinstance(cls, Global) and cls.module in GENSIM_MODULES):
        raise UnsupportedError(p.path, "gensim: the pickle's root object is not a gensim model")
    state = object_state(root)
    if "wv" in state and isinstance(state["wv"], Call):     # a whole Word2Vec model: its vectors
        state = object_state(state["wv"])
    Tensors(art, p.path, None, in_memory=False, limits=p.limits).add_all(
        state, ArrayResolver(p.path, p.limits))
    vec = next((t for t in art.tensors if t.name == "vectors"), None)
    if vec is None:
        vec = _sibling_vectors(p, state, art)
        if vec is None:
            raise UnsupportedError(p.path, "gensim: no 'vectors' array in the object")
        art.tensors.insert(0, vec)
    if len(vec.shape) != 2:
        raise FormatError(p.path, f"gensim: vectors have shape {vec.shape}, not (words, dim)")
    words = _vocabulary(state, vec.shape[0], p.path)
    art.tensors[art.tensors.index(vec)] = _with_vocabulary(vec, words, p.path)
    art.metadata["wordvec"] = {"flavour": "gensim", "class": cls.qualname, "words": len(words),
                               "dim": vec.shape[1]}
    art.metadata["pickle"] = {"pickles": 1, "protocols": [res.protocol]}
    return art


def vocabulary(rec: TensorRecord) -> tuple[str, ...] | None:
    """The words of a word-vector tensor, one per row, or None for other tensors."""
    v = rec.attrs.get("vocabulary")
    return v if isinstance(v, tuple) else None


READERS = [
    Reader("gensim-keyedvectors", sniff_gensim, guarded("gensim-keyedvectors", _read_gensim),
           "gensim KeyedVectors pickle (read on the emulated pickle machine)"),
    Reader("word2vec-binary", sniff_binary, guarded("word2vec-binary", _read_binary),
           "word2vec binary vectors"),
    Reader("word-vectors-text", sniff_text, guarded("word-vectors-text", _read_text),
           "word2vec or GloVe text vectors"),
]

__all__ = ["READERS", "vocabulary"]
