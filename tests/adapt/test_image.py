"""The image path: a small CNN "pretrained" on digits 0-4 (rebuilt from the example's recipe)
adapted to 5-9 from ten examples per class, given as pixel rows, as image files (a folder per
class, or paths in a CSV; written by Pillow), through the same network exported to ONNX, and
with a low-rank update of its convolutions; predict agrees with the holdout evaluation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assay import api
from assay.adapt.plan import AdaptOptions
from assay.errors import UnsupportedError
from assay.model.artifact import ModelArtifact
from assay.runtime.vision import shapes
from tests.adapt.conftest import DIGITS, digits_rows, write_rows


def test_digits_five_to_nine_from_a_zero_to_four_base(digits_base: str, tmp_path: Path) -> None:
    base = digits_base
    # a small slice of the example's holdout keeps the test fast
    holdout = write_rows(tmp_path / "holdout.csv", digits_rows(0, 120), header=("pixels", "label"))
    r = api.adapt(base, str(DIGITS / "digits59.csv"), str(tmp_path / "out"), holdout=str(holdout),
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


def write_images(rows: list[tuple[str, str]], folder: Path) -> list[tuple[str, str]]:
    """PNG files of pixel rows, one subfolder per label: even rows 8x8 grey, odd rows 16x16 RGB
    (assay converts and resizes them to what the network takes). Returns (path, label) rows."""
    image = pytest.importorskip("PIL.Image", reason="Pillow reads image files")
    out = []
    for i, (px, label) in enumerate(rows):
        a = (np.array([float(v) for v in px.split()]).reshape(8, 8) * 255).round().astype(np.uint8)
        im = image.fromarray(a, "L")
        if i % 2:
            im = im.convert("RGB").resize((16, 16), image.Resampling.NEAREST)
        (folder / label).mkdir(parents=True, exist_ok=True)
        im.save(folder / label / f"{i:03d}.png")
        out.append((f"{folder.name}/{label}/{i:03d}.png", label))
    return out


def test_image_files_folder_and_paths(digits_base: str, tmp_path: Path) -> None:
    with open(DIGITS / "digits59.csv", encoding="utf-8") as fh:
        train = [(a, b) for a, b in (line.rstrip("\n").rsplit(",", 1) for line in fh.readlines()[1:])]
    write_images(train, tmp_path / "train")
    hold = write_rows(tmp_path / "holdout.csv", write_images(digits_rows(0, 60), tmp_path / "hold"),
                      header=("image", "label"))
    r = api.adapt(digits_base, str(tmp_path / "train"), str(tmp_path / "out"), holdout=str(hold),
                  options=AdaptOptions(text_column="image", cache_dir=None))
    assert r.classes == ["5", "6", "7", "8", "9"] and r.meta["train"]["n"] == 40
    assert r.holdout_accuracy is not None and r.holdout_accuracy >= 0.8
    # the images are copied beside the recipe and pinned by the manifest the recipe pins
    manifest = Path(r.out_dir) / "recipe" / "holdout.csv"
    assert manifest.read_text().splitlines()[0] == "image,label,assay_blake3"
    assert len(list((Path(r.out_dir) / "recipe" / "train-images").iterdir())) == 50
    assert api.predict(r.out_dir, str(hold)).accuracy == r.holdout_accuracy
    rec = api.rebuild(str(Path(r.out_dir) / "recipe" / "recipe.toml"), str(tmp_path / "rebuilt"))
    assert rec.output("adapter").content == r.output_identity("adapter")
    # a changed image fails the rebuild, naming it
    img = next((Path(r.out_dir) / "recipe" / "train-images").iterdir())
    img.write_bytes(img.read_bytes() + b"x")
    from assay.recipes.schema import BuildFailedError
    with pytest.raises(BuildFailedError, match=f"{img.name}: image does not have the digest"):
        api.rebuild(str(Path(r.out_dir) / "recipe" / "recipe.toml"), str(tmp_path / "tampered"))


def test_unreadable_image_is_one_error(digits_base: str, tmp_path: Path) -> None:
    pytest.importorskip("PIL.Image", reason="Pillow reads image files")
    rows = write_images(digits_rows(0, 6) * 2, tmp_path / "imgs")
    bad = tmp_path / rows[3][0]
    bad.write_bytes(b"not a picture")
    data = write_rows(tmp_path / "d.csv", rows, header=("image", "label"))
    r = subprocess.run([sys.executable, "-m", "assay.cli.main", "adapt", digits_base, "--data", str(data),
                        "--text-column", "image", "-o", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"assay: error: {bad}: cannot read image"), lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # torch.onnx's TorchScript exporter
def test_onnx_base_features_from_a_named_output(digits_base: str, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from torch import nn
    w = {t.name: torch.from_numpy(np.array(t.read())) for t in api.open_model(digits_base).tensors}

    class Net(nn.Module):               # the base as a whole classifier: features and logits out
        def __init__(self) -> None:
            super().__init__()
            self.f = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1),
                                   nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
            self.head = nn.Linear(512, 5)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            f = self.f(x)
            return f, self.head(f)

    net = Net()
    net.f.load_state_dict({k: v for k, v in w.items() if not k.startswith("6.")})
    net.head.load_state_dict({k[2:]: v for k, v in w.items() if k.startswith("6.")})
    path = str(tmp_path / "cnn.onnx")
    torch.onnx.export(net, (torch.zeros(2, 1, 8, 8),), path, input_names=["image"],
                      output_names=["features", "logits"], dynamic_axes={"image": {0: "n"}}, dynamo=False)
    hold = write_rows(tmp_path / "holdout.csv", digits_rows(0, 100), header=("pixels", "label"))
    r = api.adapt(path, str(DIGITS / "digits59.csv"), str(tmp_path / "out"), holdout=str(hold),
                  options=AdaptOptions(text_column="pixels", output="features", cache_dir=None))
    assert r.holdout_accuracy is not None and r.holdout_accuracy >= 0.85
    assert api.predict(r.out_dir, str(hold)).accuracy == r.holdout_accuracy
    rec = api.rebuild(str(Path(r.out_dir) / "recipe" / "recipe.toml"), str(tmp_path / "rebuilt"))
    assert rec.output("adapter").content == r.output_identity("adapter")
    from assay.errors import UsageError
    with pytest.raises(UsageError, match="the model's outputs: features, logits"):
        api.adapt(path, str(DIGITS / "digits59.csv"), str(tmp_path / "o2"),
                  options=AdaptOptions(text_column="pixels", output="nope"))
    with pytest.raises(UsageError, match="LoRA needs a network assay builds in code"):
        api.adapt(path, str(DIGITS / "digits59.csv"), str(tmp_path / "o3"),
                  options=AdaptOptions(text_column="pixels", output="features", method="lora"))


def test_lora_on_the_convolutions_is_an_adapter(digits_base: str, tmp_path: Path) -> None:
    hold = write_rows(tmp_path / "holdout.csv", digits_rows(0, 100), header=("pixels", "label"))
    r = api.adapt(digits_base, str(DIGITS / "digits59.csv"), str(tmp_path / "out"), holdout=str(hold),
                  options=AdaptOptions(text_column="pixels", method="lora", rank=2, alpha=4.0,
                                       cache_dir=None))
    merged = str(Path(r.out_dir) / "merged.safetensors")
    adapter = {t.name: t.shape for t in api.open_model(str(Path(r.out_dir) / "adapter.safetensors")).tensors}
    assert adapter["0.lora_A.weight"] == (2, 9) and adapter["2.lora_B.weight"] == (32, 2)
    names = {t.name for t in api.open_model(digits_base).tensors}
    assert {t.name for t in api.open_model(merged).tensors} == names       # the base's names
    verdict = api.lineage_pair(digits_base, merged)
    assert verdict.relation == "adapter", verdict
    assert r.holdout_accuracy is not None and r.holdout_accuracy >= 0.8
    assert api.predict(r.out_dir, str(hold)).accuracy == r.holdout_accuracy
