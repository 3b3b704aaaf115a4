"""`--task regress` and `--task embed`, and the head's refit on training + validation rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assay import api
from assay.adapt.plan import AdaptOptions, AdaptResult
from assay.errors import UsageError
from assay.render.adapt import adapt_text, predict_csv, predict_json
from tests.adapt.conftest import DIGITS, FAST, digits_rows, write_rows
from tests.adapt.test_bad_data import one_error_line, run


def test_head_is_refit_on_all_rows_for_the_best_epoch_count(head_run: AdaptResult) -> None:
    m = head_run.meta
    assert m["refit"] == {"epochs": m["best_epoch"], "rows": m["train"]["n"] + m["validation"]["n"]}
    doc = json.loads((Path(head_run.out_dir) / "adapt.json").read_text())
    assert doc["method"]["refit"] == m["refit"]
    assert "then refit on all" in adapt_text(head_run)


def test_regress_digit_values(digits_base: str, tmp_path: Path) -> None:
    # the digit's value as a number, from the frozen convolutions of a 0-4 network
    hold = write_rows(tmp_path / "holdout.csv", digits_rows(0, 150), header=("pixels", "label"))
    r = api.adapt(digits_base, str(DIGITS / "digits59.csv"), str(tmp_path / "out"), holdout=str(hold),
                  options=AdaptOptions(task="regress", text_column="pixels", cache_dir=None))
    h = r.meta["holdout"]
    assert set(h) == {"n", "rmse", "mae", "r2", "predictions_digest"} and h["n"] == 150
    assert h["r2"] > 0.5 and 0 < h["mae"] <= h["rmse"] < 1.5, h
    assert r.meta["target"]["mean"] == pytest.approx(7.0, abs=0.5)
    shapes = {t.name: t.shape for t in api.open_model(str(Path(r.out_dir) / "adapter.safetensors")).tensors}
    assert shapes["head.weight"][0] == 1
    preds = api.predict(r.out_dir, str(hold))
    assert preds.task == "regress" and len(preds.values) == 150
    assert preds.metrics["rmse"] == pytest.approx(h["rmse"], rel=1e-9)
    assert predict_json(preds)["predictions"][0].keys() == {"row", "value"}
    assert predict_csv(preds).splitlines()[0] == "row,value"
    assert "RMSE" in adapt_text(r)


def test_regress_needs_numeric_labels(minilm: Path, tmp_path: Path) -> None:
    data = write_rows(tmp_path / "words.csv", [("a b", "1.5"), ("c d", "2"), ("e f", "many"), ("g", "3")] * 2)
    r = run("adapt", str(minilm), "--data", str(data), "--task", "regress", "-o", str(tmp_path / "o"))
    one_error_line(r, "words.csv", "row 4: label 'many' is not a finite number")


def test_embed_projection(minilm: Path, texts: dict[str, Path], tmp_path: Path) -> None:
    r = api.adapt(str(minilm), str(texts["train"]), str(tmp_path / "out"), holdout=str(texts["holdout"]),
                  options=AdaptOptions(task="embed", cache_dir=None, **FAST))
    for part in ("validation", "holdout"):
        d = r.meta[part]
        assert 0 <= d["recall_at_1_before"] <= 1 and d["recall_at_1"] >= 0.8, d
    w = api.open_model(str(Path(r.out_dir) / "adapter.safetensors")).tensors
    assert [(t.name, t.shape) for t in w] == [("projection.weight", (384, 384))]
    preds = api.predict(r.out_dir, str(texts["holdout"]))
    v = np.array(preds.vectors)
    assert v.shape == (r.meta["holdout"]["n"], 384) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert "nearest-neighbour label accuracy" in adapt_text(r)
    with pytest.raises(UsageError, match="--task embed"):
        api.adapt(str(minilm), str(texts["train"]), str(tmp_path / "o2"),
                  options=AdaptOptions(task="embed", method="lora"))
