"""`diff` on pairs of real files written with torch, safetensors, NumPy and gguf."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import assay
from assay.analyses.diff import diff, layer_of

torch = pytest.importorskip("torch")


def net(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Embedding(50, 32), torch.nn.Linear(32, 64), torch.nn.ReLU(),
                            torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8))
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def save(tmp: Path, name: str, sd: dict[str, torch.Tensor]) -> assay.ModelArtifact:
    p = tmp / name
    torch.save(sd, p)
    return assay.open_model(str(p))


@pytest.fixture
def base(tmp_path: Path) -> tuple[dict[str, torch.Tensor], assay.ModelArtifact]:
    sd = net()
    return sd, save(tmp_path, "base.pt", sd)


def test_identical(tmp_path: Path, base) -> None:
    sd, a = base
    r = diff(a, save(tmp_path, "copy.pt", {k: v.clone() for k, v in sd.items()}))
    assert r.relation == "same" and r.identical
    assert all(c.kind == "same" for c in r.changes)


def test_rename_only_across_formats(tmp_path: Path, base) -> None:
    from safetensors.torch import save_file
    sd, a = base
    p = tmp_path / "renamed.safetensors"
    save_file({f"model.{k}": v.contiguous() for k, v in sd.items()}, str(p))
    r = diff(a, assay.open_model(str(p)))
    assert r.relation == "converted"
    assert {c.status for c in r.changes} == {"renamed"} and {c.kind for c in r.changes} == {"same"}


def test_one_tensor_changed(tmp_path: Path, base) -> None:
    sd, a = base
    b = {k: v.clone() for k, v in sd.items()}
    b["3.bias"][5] += 0.5
    r = diff(a, save(tmp_path, "b.pt", b))
    changed = [c for c in r.changes if c.kind != "same"]
    assert [c.name for c in changed] == ["3.bias"]
    assert changed[0].stats is not None and changed[0].stats.max_abs == pytest.approx(0.5, rel=1e-5)
    assert changed[0].stats.changed == pytest.approx(1 / 64)
    assert not r.identical


def test_finetune_of_last_layers(tmp_path: Path, base) -> None:
    sd, a = base
    m = torch.nn.Sequential(torch.nn.Embedding(50, 32), torch.nn.Linear(32, 64), torch.nn.ReLU(),
                            torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8))
    m.load_state_dict(sd)
    for p in list(m.parameters())[:-4]:
        p.requires_grad_(False)
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.05)
    x, y = torch.randint(0, 50, (64,)), torch.randint(0, 8, (64,))
    for _ in range(20):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    r = diff(a, save(tmp_path, "ft.pt", m.state_dict()))
    assert r.relation == "finetuned"
    assert sorted(r.details["changed_layers"]) == ["3", "5"]
    for c in r.changes:
        if c.kind != "same":
            assert c.stats is not None and c.stats.cosine > (0.9 if c.name.endswith("weight") else 0.5)


@pytest.mark.parametrize("rank", [4, 16])
def test_low_rank_merge_reports_the_rank(tmp_path: Path, base, rank: int) -> None:
    sd, a = base
    b = {k: v.clone() for k, v in sd.items()}
    g = torch.Generator().manual_seed(rank)
    for k in ("1.weight", "3.weight"):
        out_f, in_f = b[k].shape
        lora_b = torch.randn(out_f, rank, generator=g) * 0.05
        lora_a = torch.randn(rank, in_f, generator=g) * 0.05
        b[k] = b[k] + lora_b @ lora_a
    r = diff(a, save(tmp_path, f"lora{rank}.pt", b))
    assert r.relation == "adapter"
    assert r.details["ranks"] == [rank]
    assert f"rank-{rank}" in r.summary


def test_magnitude_pruning_fraction(tmp_path: Path, base) -> None:
    sd, a = base
    b = {}
    for k, v in sd.items():
        v = v.clone()
        if v.ndim == 2:
            thr = v.abs().flatten().kthvalue(int(0.3 * v.numel())).values
            v[v.abs() <= thr] = 0
        b[k] = v
    r = diff(a, save(tmp_path, "pruned.pt", b))
    assert r.relation == "pruned"
    for c in r.changes:
        if c.kind == "pruned":
            assert c.stats is not None and c.stats.new_zeros == pytest.approx(0.3, abs=0.01)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_casts(tmp_path: Path, base, dtype: str) -> None:
    sd, a = base
    r = diff(a, save(tmp_path, f"{dtype}.pt", {k: v.to(getattr(torch, dtype)) if v.is_floating_point() else v
                                                for k, v in sd.items()}))
    assert r.relation == "cast" and f"float32 -> {dtype}" in r.summary


def test_int8_quantization(tmp_path: Path, base) -> None:
    sd, a = base
    b = {}
    for k, v in sd.items():
        scale = v.abs().max() / 127
        b[k] = torch.clamp(torch.round(v / scale), -127, 127).to(torch.int8)
    r = diff(a, save(tmp_path, "int8.pt", b))
    assert r.relation == "quantized"
    assert 0 < r.details["quantization_error"] < 0.05


def test_gguf_q8_0_quantization(tmp_path: Path, base) -> None:
    gguf = pytest.importorskip("gguf")
    sd, a = base
    p = tmp_path / "q8.gguf"
    w = gguf.GGUFWriter(str(p), "toy")
    for k, v in sd.items():
        arr = v.numpy()
        if arr.ndim == 2 and arr.shape[1] % 32 == 0:
            q = gguf.quants.quantize(arr, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(k, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(k, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    r = diff(a, assay.open_model(str(p)))
    assert r.relation == "quantized" and "gguf.q8_0" in r.summary
    assert 0 < r.details["quantization_error"] < 0.01


def test_dropped_layer(tmp_path: Path, base) -> None:
    sd, a = base
    r = diff(a, save(tmp_path, "drop.pt", {k: v for k, v in sd.items() if not k.startswith("3.")}))
    assert r.relation == "truncated"
    assert {c.name for c in r.changes if c.status == "removed"} == {"3.weight", "3.bias"}
    assert "removed 2 tensors (3)" in r.summary


def test_vocabulary_rows_appended(tmp_path: Path, base) -> None:
    sd, a = base
    b = dict(sd)
    b["0.weight"] = torch.cat([sd["0.weight"], torch.randn(10, 32)])
    r = diff(a, save(tmp_path, "vocab.pt", b))
    assert r.relation == "extended"
    (c,) = [c for c in r.changes if c.kind == "rows-added"]
    assert c.rows == 10 and c.stats is not None and c.stats.changed == 0


def test_unrelated_models_of_the_same_architecture(tmp_path: Path, base) -> None:
    _, a = base
    r = diff(a, save(tmp_path, "other.pt", net(seed=123)))
    assert r.relation == "unrelated"


def test_layer_of() -> None:
    assert layer_of("model.layers.12.self_attn.q_proj.weight") == "model.layers.12"
    assert layer_of("lm_head.weight") == "lm_head"


def test_cli_diff_json_and_exit_codes(tmp_path: Path, base) -> None:
    sd, a = base
    b = {k: v.clone() for k, v in sd.items()}
    b["5.bias"] += 1
    save(tmp_path, "b.pt", b)
    cmd = [sys.executable, "-m", "assay.cli.main", "diff"]
    a_path, b_path = str(tmp_path / "base.pt"), str(tmp_path / "b.pt")
    r = subprocess.run([*cmd, a_path, b_path, "-f", "json", "--only-changed"], capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "assay.diff/1" and [c["b"] for c in doc["changes"]] == ["5.bias"]
    r = subprocess.run([*cmd, a_path, a_path], capture_output=True, text=True)
    assert r.returncode == 0 and "same" in r.stdout
    r = subprocess.run([*cmd, a_path, str(tmp_path / "missing.pt")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
