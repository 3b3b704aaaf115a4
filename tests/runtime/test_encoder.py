"""The audit encoder: built in code from a sentence-transformers folder, filled with assay's tensors,
checked against the reference sentence-transformers pipeline (used here only as an oracle)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from assay import api
from assay.errors import FormatError, MissingDependencyError, UnsupportedError
from assay.runtime import encoder

SENTENCES = ["This is a flower.", "The quick brown fox jumps over the lazy dog near the river bank.",
             "tulip", "Naïve café owners say ‘hello’ — in 2026!", ""]


@pytest.fixture(scope="module")
def oracle_cls() -> type:
    st = pytest.importorskip("sentence_transformers", reason="sentence-transformers is in the test extra")
    return st.SentenceTransformer


def _ours(folder: Path) -> np.ndarray:
    return encoder.build(api.open_model(str(folder)), str(folder)).encode(SENTENCES)


def test_embeddings_equal_sentence_transformers(minilm: Path, oracle_cls: type) -> None:
    ref = oracle_cls(str(minilm), device="cpu").encode(SENTENCES, convert_to_numpy=True)
    ours = _ours(minilm)
    assert ours.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)   # the Normalize module


@pytest.mark.parametrize("mode", ["cls", "max"])
def test_pooling_modes_equal_sentence_transformers(minilm: Path, oracle_cls: type, tmp_path: Path,
                                                   mode: str) -> None:
    folder = tmp_path / "m"
    shutil.copytree(minilm, folder)
    pool = json.loads((folder / "1_Pooling" / "config.json").read_text())
    pool.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=mode == "cls",
                pooling_mode_max_tokens=mode == "max")
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pool))
    modules = [m for m in json.loads((folder / "modules.json").read_text()) if m["path"] != "2_Normalize"]
    (folder / "modules.json").write_text(json.dumps(modules))
    spec = encoder.read_spec(str(folder))
    assert (spec.pooling, spec.normalize) == (mode, False)
    ref = oracle_cls(str(folder), device="cpu").encode(SENTENCES, convert_to_numpy=True)
    np.testing.assert_allclose(_ours(folder), ref, atol=1e-5, rtol=0)


def test_unknown_module_and_architecture_refused(minilm: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(minilm, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    modules = json.loads((folder / "modules.json").read_text())
    (folder / "modules.json").write_text(json.dumps([*modules, {"idx": 3, "name": "3", "path": "3_X",
                                                               "type": "evil.module.Run"}]))
    with pytest.raises(UnsupportedError, match="not one assay runs"):
        encoder.read_spec(str(folder))
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(model_type="custom", auto_map={"AutoModel": "modeling_custom.Model"})
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedError, match="model_type 'custom'"):
        encoder.read_spec(str(folder))


def test_weights_that_do_not_fit_are_refused(minilm: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(minilm, folder)
    cfg = json.loads((folder / "config.json").read_text())
    for key, value, message in [("num_hidden_layers", 7, "6 layers in the weights"),
                                ("intermediate_size", 10**9, "do not match the weights"),
                                ("num_attention_heads", 5, "does not divide")]:
        bad = {**cfg, key: value}      # e.g. a config that would allocate a huge model
        (folder / "config.json").write_text(json.dumps(bad))
        with pytest.raises(FormatError, match=message):
            encoder.build(api.open_model(str(folder)), str(folder))


def test_missing_extra_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, minilm: Path) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "transformers" else real(name, *a))
    with pytest.raises(MissingDependencyError, match="needs the audit extra") as exc:
        encoder.build(api.open_model(str(minilm)), str(minilm))
    assert "\n" not in exc.value.one_line()


def test_seat_effect_sizes_are_stable_across_runs(minilm: Path) -> None:
    from assay.analyses.audit import Settings, select, weat_tests
    tests = select(weat_tests(), ["weat7"])
    settings = Settings(seed=3, permutations=1000, bootstrap=200)
    a = api.audit(str(minilm), tests=tests, settings=settings).results[0]
    b = api.audit(str(minilm), tests=tests, settings=settings).results[0]
    assert a.method == "SEAT" and a.sizes == (64, 64, 64, 64)
    assert (a.effect_size, a.p_value, a.interval) == (b.effect_size, b.p_value, b.interval)


def test_onnx_export_of_the_encoder(minilm: Path, oracle_cls: type, tmp_path: Path) -> None:
    """The encoder exported to ONNX here (torch's exporter, test-only) and run by assay with
    onnxruntime gives the reference embeddings too."""
    pytest.importorskip("onnxruntime")
    import warnings

    import torch
    folder = tmp_path / "onnx-encoder"
    shutil.copytree(minilm, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    enc = encoder.build(api.open_model(str(minilm)), str(minilm))
    ids, mask, types = enc._batch(["hello world", "a b c"])

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self, m: torch.nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> torch.Tensor:
            out = self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out[0]

    (folder / "onnx").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(TokenEmbeddings(enc.model), (ids, mask, types), str(folder / "onnx" / "model.onnx"),
                          input_names=list(encoder.ONNX_INPUTS), output_names=["last_hidden_state"],
                          dynamic_axes={k: {0: "batch", 1: "tokens"} for k in encoder.ONNX_INPUTS},
                          dynamo=False, opset_version=17)
    emb = api.open_embedder(str(folder))
    ref = oracle_cls(str(minilm), device="cpu").encode(SENTENCES, convert_to_numpy=True)
    np.testing.assert_allclose(emb.embed(SENTENCES), ref, atol=1e-5, rtol=0)
