"""`assay lineage` end to end, on small models written in code (safetensors and PyTorch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

pytest.importorskip("assay.analyses.lineage.relation", reason="relation tests not in this tree yet")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assay.cli.main", "lineage", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"layers.{i}.weight": rng.normal(0, 0.05, (96, 64)).astype(np.float32) for i in range(4)} | {
        f"layers.{i}.bias": rng.normal(0, 0.01, 96).astype(np.float32) for i in range(4)}


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("family")
    base = weights(1)
    rng = np.random.default_rng(7)
    tuned = {k: (v + rng.normal(0, 0.01, v.shape)).astype(np.float32) for k, v in base.items()}
    models = {"base": base, "tuned": tuned, "half": {k: v.astype(np.float16) for k, v in base.items()},
              "other": weights(2), "copy": dict(base)}
    out = {}
    for name, ws in models.items():
        p = root / f"{name}.safetensors"
        save_file(ws, str(p))
        out[name] = p
    return out


def test_pair_text_and_exit_codes(family: dict[str, Path]) -> None:
    r = run(str(family["base"]), str(family["tuned"]))
    assert r.returncode == 1, r.stderr
    assert f"{family['base']} -> {family['tuned']}: finetuned" in r.stdout
    assert "confidence" in r.stdout and "evidence" in r.stdout
    r = run(str(family["base"]), str(family["copy"]))
    assert r.returncode == 0, r.stderr
    assert ": same" in r.stdout


def test_pair_json(family: dict[str, Path]) -> None:
    r = run(str(family["half"]), str(family["base"]), "--format", "json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "assay.lineage/1" and doc["kind"] == "pair"
    assert doc["relation"] == "cast"
    assert doc["parent"] == str(family["base"]) and doc["child"] == str(family["half"])
    assert 0.0 <= doc["confidence"] <= 1.0 and doc["evidence"]
    r = run(str(family["base"]), str(family["other"]), "-f", "json")
    assert r.returncode == 1 and json.loads(r.stdout)["relation"] == "unrelated"


def test_forest_formats(family: dict[str, Path], tmp_path: Path) -> None:
    paths = [str(family[n]) for n in ("half", "base", "tuned", "other")]
    r = run(*paths, "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "assay.lineage/1" and doc["kind"] == "forest"
    parents = {n["label"]: n["parents"] for n in doc["nodes"]}
    assert parents[str(family["half"])] == [str(family["base"])]     # cast down: the weights say so
    # a fine-tune leaves no direction in the weights: the first named of the two is the origin
    assert parents[str(family["tuned"])] == [str(family["base"])]
    assert set(doc["roots"]) == {str(family["base"]), str(family["other"])}
    edge = next(e for e in doc["edges"] if e["child"] == str(family["tuned"]))
    assert edge["relation"] == "finetuned" and edge["directed"] is False

    r = run(*paths)
    assert r.returncode == 0 and "lineage of 4 models: 2 edges, 2 roots" in r.stdout
    r = run(*paths, "--format", "dot")
    assert r.returncode == 0 and r.stdout.startswith("digraph lineage {") and r.stdout.count(" -> ") == 2
    out = tmp_path / "graph.html"
    r = run(*paths, "--format", "html", "-o", str(out))
    assert r.returncode == 0 and r.stdout == "", r.stderr
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "lineage-data" in page


def test_two_models_as_a_forest(family: dict[str, Path]) -> None:
    r = run(str(family["base"]), str(family["tuned"]), "--forest", "-f", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["kind"] == "forest"


def test_folder_of_model_folders(family: dict[str, Path], tmp_path: Path) -> None:
    zoo = tmp_path / "zoo"
    for name in ("base", "tuned", "other"):
        d = zoo / name
        d.mkdir(parents=True)
        os.link(family[name], d / "model.safetensors")
        (d / "config.json").write_text('{"model_type": "toy"}')
    r = run(str(zoo), "-f", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [n["label"] for n in doc["nodes"]] == [str(zoo / n) for n in ("base", "other", "tuned")]
    assert next(n for n in doc["nodes"] if n["label"].endswith("tuned"))["parents"] == [str(zoo / "base")]


def test_errors_are_one_line_exit_2(family: dict[str, Path], tmp_path: Path) -> None:
    for args in ([str(family["base"])], [str(family["base"]), str(tmp_path / "missing")],
                 [str(tmp_path)]):
        r = run(*args)
        assert r.returncode == 2, (args, r.stdout)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("assay: error: "), r.stderr
        assert r.stdout == ""


def test_declared_metadata_shown_and_contradiction_flagged(family: dict[str, Path], tmp_path: Path) -> None:
    zoo = tmp_path / "declared"
    for name in ("base", "other"):
        d = zoo / name
        d.mkdir(parents=True)
        os.link(family[name], d / "model.safetensors")
        (d / "config.json").write_text('{"model_type": "toy"}')
    (zoo / "other" / "README.md").write_text("---\nbase_model: base\nbase_model_relation: finetune\n---\n")
    r = run(str(zoo / "base"), str(zoo / "other"))
    assert r.returncode == 1, r.stderr
    assert "unrelated" in r.stdout and "declared metadata" in r.stdout and "base_model" in r.stdout
    assert "contradicts the weights" in r.stdout
    r = run(str(zoo / "base"), str(zoo / "other"), "-f", "json")
    assert "unrelated" in json.loads(r.stdout)["contradiction"]
    r = run(str(zoo), "-f", "json")
    doc = json.loads(r.stdout)
    assert doc["roots"] == [str(zoo / "base"), str(zoo / "other")]
    assert "do not place" in doc["contradictions"][str(zoo / "other")]
    r = run(str(zoo))
    assert "declared base contradicts the weights" in " ".join(r.stdout.split())


def test_folder_of_weight_files_and_single_file_folders(family: dict[str, Path], tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    for name in ("base", "half", "other"):
        os.link(family[name], loose / f"{name}.bin")          # recognised by content, not by name
    (loose / "notes.txt").write_text("not a model")
    one = loose / "tuned-folder"
    one.mkdir()
    os.link(family["tuned"], one / "weights.safetensors")      # one weight file: one model
    r = run(str(loose), "-f", "json")
    assert r.returncode == 0, r.stderr
    labels = [n["label"] for n in json.loads(r.stdout)["nodes"]]
    assert labels == [str(loose / "base.bin"), str(loose / "half.bin"), str(loose / "other.bin"), str(one)]
