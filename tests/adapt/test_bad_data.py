"""Bad data: one clear line on stderr and exit 2, before anything is built."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from assay.adapt.data import DataError, check_holdout, check_training, read_examples, split
from tests.adapt.conftest import write_rows


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assay.cli.main", *args], capture_output=True, text=True,
                          timeout=120)


def one_error_line(r: subprocess.CompletedProcess[str], *words: str) -> None:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and lines[0].startswith("assay: error: "), r.stderr
    assert all(w in lines[0] for w in words), lines[0]


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write_rows(tmp_path / "good.csv", [("a b", "x"), ("c d", "y")] * 3)


def test_missing_column_one_class_unseen_unreadable(minilm: Path, good: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    no_label = write_rows(tmp_path / "nolabel.csv", [("a", "x")] * 4, header=("text", "category"))
    one_class = write_rows(tmp_path / "one.csv", [("a", "x"), ("b", "x"), ("c", "x")])
    unseen = write_rows(tmp_path / "unseen.csv", [("a", "x"), ("b", "z")])
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage\x80\x81")
    images = tmp_path / "images"
    for label in ("cat", "dog"):
        (images / label).mkdir(parents=True)
        (images / label / "1.png").write_bytes(b"")
    cases = [
        ((no_label,), ("no label column 'label'", "category")),
        ((one_class,), ("only one class",)),
        ((good, "--holdout", str(unseen)), ("never seen in training", "'z'")),
        ((binary,), ("not UTF-8",)),
        ((tmp_path / "absent.csv",), ("cannot read data",)),
        ((images,), ("a folder of images needs an image base",)),
    ]
    for (data, *rest), words in cases:
        one_error_line(run("adapt", str(minilm), "--data", str(data), "-o", out, *rest), str(Path(
            rest[-1] if rest else data).name), *words)
    assert not Path(out).exists()          # nothing was written for bad data


def test_base_that_is_no_encoder(good: Path, tmp_path: Path) -> None:
    one_error_line(run("adapt", str(tmp_path), "--data", str(good), "-o", str(tmp_path / "o")), "config.json")


def test_reader_rules(tmp_path: Path) -> None:
    jl = tmp_path / "d.jsonl"
    jl.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": 2}\n\n{"text": "c", "label": 1}\n')
    ex = read_examples(str(jl))
    assert ex.format == "jsonl" and ex.labels == ("1", "2", "1")
    with pytest.raises(DataError, match="class '2' has 1 example"):
        check_training(ex)
    with pytest.raises(DataError, match="row 3: empty"):
        read_examples(str(write_rows(tmp_path / "e.csv", [("a", "x"), ("", "y")])))
    check_holdout(ex, ["1", "2"])
    train, val = split(["a"] * 5 + ["b"] * 5, 0.2, seed=0)
    assert len(val) == 2 and sorted(train + val) == list(range(10))
    assert split(["a"] * 5 + ["b"] * 5, 0.2, seed=0) == (train, val)


def test_pixel_rows_must_fit_the_network(tmp_path: Path) -> None:
    from assay.adapt.data import check_pixels
    path = write_rows(tmp_path / "p.csv", [("0 1 2", "a"), ("0 1", "b")], header=("px", "label"))
    ex = read_examples(str(path), text_column="px")
    with pytest.raises(DataError, match="example 2: 2 pixel values; the network takes 3"):
        check_pixels(ex, 3)
