"""The image path: a small CNN "pretrained" on digits 0-4 (rebuilt from the example's recipe)
adapted to 5-9 from ten examples per class; predict agrees with the holdout evaluation."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from assay import api
from assay.adapt.plan import AdaptOptions
from assay.errors import UnsupportedError
from assay.model.artifact import ModelArtifact
from assay.runtime.vision import shapes
from tests.adapt.conftest import write_rows

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "adapt" / "digits"


def test_digits_five_to_nine_from_a_zero_to_four_base(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    if importlib.util.find_spec("sklearn") is None:
        pytest.skip("scikit-learn (the train extra) ships the digits")
    base = api.rebuild(str(EXAMPLE / "base" / "recipe.toml"), str(tmp_path / "base")).output_path()
    # a small slice of the example's holdout keeps the test fast
    with open(EXAMPLE / "digits59-holdout.csv", encoding="utf-8") as fh:
        rows = [line.rstrip("\n").rsplit(",", 1) for line in fh.readlines()[1:121]]
    holdout = write_rows(tmp_path / "holdout.csv", [(a, b) for a, b in rows], header=("pixels", "label"))
    r = api.adapt(base, str(EXAMPLE / "digits59.csv"), str(tmp_path / "out"), holdout=str(holdout),
                  options=AdaptOptions(text_column="pixels", cache_dir=None))
    assert r.classes == ["5", "6", "7", "8", "9"]
    assert r.holdout_accuracy is not None and r.holdout_accuracy >= 0.85
    preds = api.predict(r.out_dir, str(holdout))
    assert preds.accuracy == r.holdout_accuracy


def test_unknown_network_is_refused() -> None:
    from assay.model.dtypes import DTYPES
    from assay.model.tensor import TensorRecord
    art = ModelArtifact(path="x.safetensors", format="safetensors", files=[])
    art.tensors.append(TensorRecord("w", DTYPES["float32"], (2, 2), None, loader=lambda: memoryview(
        np.zeros(4, np.float32).view(np.uint8))))
    with pytest.raises(UnsupportedError, match="not a network assay builds in code"):
        shapes(art)
