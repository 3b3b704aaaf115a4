"""`assay adapt`: reproducible (twice, and through `assay rebuild`), an `adapter` to lineage,
and `predict` agrees with the training's own holdout evaluation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from assay import api
from assay.adapt import heads
from assay.adapt.plan import AdaptOptions, AdaptResult
from tests.adapt.conftest import FAST


def _tensors(path: str) -> dict[str, np.ndarray]:
    return {t.name: np.array(t.read()) for t in api.open_model(path).tensors}


def test_head_output_folder(head_run: AdaptResult) -> None:
    out = Path(head_run.out_dir)
    for f in ("adapter.safetensors", "build.json", "build.log", "adapt.json", "README.md",
              "recipe/recipe.toml", "recipe/adapt_train.py", "recipe/train.csv", "recipe/holdout.csv"):
        assert (out / f).is_file(), f
    doc = json.loads((out / "adapt.json").read_text())
    assert doc["schema"] == "assay.adapt/1" and doc["classes"] == ["food", "sport", "weather"]
    assert doc["validation"]["accuracy"] >= 0.8 and doc["holdout_result"]["accuracy"] >= 0.8
    assert doc["resources"]["peak_memory_bytes"] > 0 and doc["resources"]["wall_seconds"] > 0
    assert head_run.data_digest in (out / "README.md").read_text()
    assert set(_tensors(str(out / "adapter.safetensors"))) == {"head.weight", "head.bias"}


def test_adapt_twice_gives_identical_tensors(head_run: AdaptResult, minilm: Path, texts: dict[str, Path],
                                             tmp_path: Path) -> None:
    # the second run computes its features afresh (no cache): caching changes time, not results
    again = api.adapt(str(minilm), str(texts["train"]), str(tmp_path / "again"),
                      options=AdaptOptions(cache_dir=None, **FAST), holdout=str(texts["holdout"]))
    assert again.output_identity("adapter") == head_run.output_identity("adapter")
    assert again.meta == head_run.meta


def test_rebuild_of_written_recipe_reproduces_adapter(head_run: AdaptResult, tmp_path: Path) -> None:
    rec = api.rebuild(os.path.join(head_run.out_dir, "recipe", "recipe.toml"), str(tmp_path / "rebuilt"))
    assert rec.output("adapter").content == head_run.output_identity("adapter")
    assert "frozen computation from cache" in (tmp_path / "rebuilt" / "build.log").read_text()


def test_predict_gives_the_holdout_evaluation(head_run: AdaptResult, texts: dict[str, Path]) -> None:
    preds = api.predict(head_run.out_dir, str(texts["holdout"]))
    hold = head_run.meta["holdout"]
    assert preds.accuracy == hold["accuracy"]
    idx = [head_run.classes.index(lab) for lab in preds.labels]
    import blake3
    digest = blake3.blake3(",".join(map(str, idx)).encode()).hexdigest()
    assert f"blake3:{digest}" == hold["predictions_digest"]


def test_lora_merged_is_an_adapter_of_the_base(lora_run: AdaptResult, minilm: Path,
                                              texts: dict[str, Path], tmp_path: Path) -> None:
    out = Path(lora_run.out_dir)
    adapter = _tensors(str(out / "adapter.safetensors"))
    assert adapter["encoder.layer.5.attention.self.query.lora_A.weight"].shape == (2, 384)
    assert not any(k.startswith("encoder.layer.3.") for k in adapter)      # the top 2 layers only
    verdict = api.lineage_pair(str(minilm), str(out / "merged.safetensors"))
    assert verdict.relation == "adapter", verdict
    base = {t.name for t in api.open_model(str(minilm)).tensors}
    assert set(_tensors(str(out / "merged.safetensors"))) == base        # the base's names, nothing else
    # the rebuild reads the lower layers' states from the cache the adapt wrote: same tensors
    rec = api.rebuild(str(out / "recipe" / "recipe.toml"), str(tmp_path / "rebuilt"))
    assert "frozen computation from cache" in (tmp_path / "rebuilt" / "build.log").read_text()
    assert rec.output("merged").content == lora_run.output_identity("merged")
    assert rec.output("adapter").content == lora_run.output_identity("adapter")
    preds = api.predict(str(out), str(texts["holdout"]))
    assert preds.accuracy == lora_run.meta["holdout"]["accuracy"]


def test_heads_numpy_matches_shapes() -> None:
    rng = np.random.RandomState(0)
    t = {"head.0.weight": rng.randn(5, 3).astype(np.float32), "head.0.bias": np.zeros(5, np.float32),
         "head.2.weight": rng.randn(2, 5).astype(np.float32), "head.2.bias": np.zeros(2, np.float32)}
    idx, p = heads.predict(t, rng.randn(4, 3))
    assert idx.shape == (4,) and np.all((p >= 0.5) & (p <= 1))


def test_cli_predict_csv(head_run: AdaptResult, texts: dict[str, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from assay.cli.main import app
    r = CliRunner().invoke(app, ["predict", head_run.out_dir, "--data", str(texts["holdout"]), "-f", "csv"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "row,label,score" and len(lines) == 1 + head_run.meta["holdout"]["n"]
    r = CliRunner().invoke(app, ["predict", str(tmp_path), "--data", str(texts["holdout"])])
    assert r.exit_code == 2 and "not an `assay adapt` output folder" in r.stderr


def test_catalog_records_the_adapter(lora_run: AdaptResult, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from assay.cli.adapt import _catalog
    _catalog(lora_run, str(tmp_path / "catalog.sqlite"))
    err = capsys.readouterr().err
    assert "is adapter of" in err, err


def test_plain_pytorch_bert_matches_transformers(minilm: Path, texts: dict[str, Path]) -> None:
    # adapt's encoder (no transformers import) computes what transformers.BertModel computes
    from assay.adapt.data import read_examples
    from assay.runtime import adapt_bert, adapted, encoder
    from assay.runtime.adapt_bert import Bert
    ours = adapt_bert.build(api.open_model(str(minilm)), str(minilm))
    theirs = encoder.build(api.open_model(str(minilm)), str(minilm))
    assert isinstance(ours.model, Bert) and not isinstance(theirs.model, Bert)
    rows = list(read_examples(str(texts["holdout"])).texts)
    a, b = adapted.features(ours, rows), adapted.features(theirs, rows)
    assert a.shape == (len(rows), 384) and float(np.abs(a - b).max()) < 1e-5
