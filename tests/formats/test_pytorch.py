from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import numpy as np
import pytest

from assay import open_model
from assay.errors import FormatError

torch = pytest.importorskip("torch")


def raw(t: torch.Tensor) -> bytes:
    return t.detach().contiguous().view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def oracle(path: Path) -> dict:
    return torch.load(path, weights_only=True)  # unsafe-ok: oracle on a file the test wrote


def flat(obj: object, prefix: str = "") -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flat(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            out.update(flat(v, f"{prefix}.{i}" if prefix else str(i)))
    return out


def assert_matches(path: Path, expected: dict[str, torch.Tensor]) -> None:
    art = open_model(str(path))
    got = {t.name: t for t in art.tensors}
    assert set(got) == set(expected)
    for name, ref in expected.items():
        rec = got[name]
        assert rec.shape == tuple(ref.shape), name
        assert rec.canonical_bytes() == raw(ref), name
        assert rec.dtype.name == str(ref.dtype).removeprefix("torch."), name


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                               torch.nn.Linear(4, 2))


@pytest.mark.parametrize("name", ["m.pt", "m.pth", "pytorch_model.bin", "m.ckpt", "noext"])
def test_zip_checkpoint_any_name(tmp_path: Path, name: str) -> None:
    p = tmp_path / name
    torch.save(model().state_dict(), p)
    assert_matches(p, flat(oracle(p)))
    assert open_model(str(p)).format == "pytorch-zip"


def test_nested_training_state_flattens_to_dotted_names(tmp_path: Path) -> None:
    m = model()
    opt = torch.optim.Adam(m.parameters())
    m(torch.randn(2, 3, 3, 3)).sum().backward()
    opt.step()
    p = tmp_path / "ckpt.pt"
    torch.save({"state_dict": m.state_dict(), "optimizer": opt.state_dict(), "epoch": 7}, p)
    expected = flat(oracle(p))
    assert "optimizer.state.0.exp_avg" in expected and "state_dict.0.weight" in expected
    assert_matches(p, expected)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64", "int8", "uint8", "int16", "int32",
                                   "int64", "bool", "complex64", "float8_e4m3fn", "float8_e5m2"])
def test_dtypes(tmp_path: Path, dtype: str) -> None:
    dt = getattr(torch, dtype)
    base = torch.randn(5, 4) * 10
    t = base.to(dt) if dtype != "complex64" else torch.complex(base, base.flip(0))
    p = tmp_path / "t.pt"
    torch.save({"t": t}, p)
    assert_matches(p, {"t": oracle(p)["t"]})


def test_views_offsets_and_shared_storage(tmp_path: Path) -> None:
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    tensors = {"base": base, "t": base.t(), "slice": base[2:5, 3:7], "row": base[4],
               "step": base[:, ::3], "param": torch.nn.Parameter(torch.ones(3))}
    p = tmp_path / "views.pt"
    torch.save(tensors, p)
    assert_matches(p, flat(oracle(p)))
    art = open_model(str(p))
    storages = {t.attrs["storage"] for t in art.tensors if t.name != "param"}
    assert len(storages) == 1  # all views share one storage, mapped once


def test_legacy_format(tmp_path: Path) -> None:
    p = tmp_path / "legacy.pt"
    sd = model().state_dict()
    torch.save({"model": sd, "t": torch.arange(10)[2:8]}, p, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(p)
    assert_matches(p, flat(oracle(p)))
    assert open_model(str(p)).format == "pytorch-legacy"


def test_torchscript_archive(tmp_path: Path) -> None:
    m = torch.jit.script(model().eval())
    p = tmp_path / "scripted.pt"
    m.save(str(p))
    art = open_model(str(p))
    assert art.format == "torchscript"
    got = {t.name: t for t in art.tensors}
    for name, ref in m.state_dict().items():
        assert got[name].canonical_bytes() == raw(ref), name
    assert any(o.kind == "code.file" for o in art.observations)


def _silero() -> Path:
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("silero-vad is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def test_real_model_silero_vad_torchscript() -> None:
    p = _silero() / "silero_vad.jit"
    ref = torch.jit.load(str(p)).state_dict()
    art = open_model(str(p))
    got = {t.name: t for t in art.tensors}
    assert len(ref) >= 20
    for name, t in ref.items():
        assert got[name].canonical_bytes() == raw(t), name
    assert art.format == "torchscript"
    assert sum(o.kind == "code.file" for o in art.observations) > 10


def test_real_model_silero_vad_safetensors() -> None:
    from safetensors.torch import load_file
    p = _silero() / "silero_vad_16k.safetensors"
    ref = load_file(str(p))
    assert_matches(p, ref)


def test_missing_storage_member(tmp_path: Path) -> None:
    p = tmp_path / "m.pt"
    torch.save({"w": torch.ones(4)}, p)
    q = tmp_path / "broken.pt"
    with zipfile.ZipFile(p) as src, zipfile.ZipFile(q, "w") as dst:
        for info in src.infolist():
            if "/data/" not in info.filename:
                dst.writestr(info, src.read(info))
    with pytest.raises(FormatError, match="missing"):
        open_model(str(q))


def test_truncated_zip(tmp_path: Path) -> None:
    p = tmp_path / "m.pt"
    torch.save({"w": torch.ones(1000)}, p)
    data = p.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 100):
        q = tmp_path / f"cut{cut}.pt"
        q.write_bytes(data[:cut])
        with pytest.raises(FormatError):
            open_model(str(q))


def test_tensor_reaching_past_its_storage(tmp_path: Path) -> None:
    p = tmp_path / "m.pt"
    torch.save({"w": torch.ones(4)}, p)
    q = tmp_path / "evil.pt"
    with zipfile.ZipFile(p) as src, zipfile.ZipFile(q, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename.endswith("/data/0"):
                body = body[:8]  # storage now holds 2 floats, the tensor claims 4
            dst.writestr(info, body)
    with pytest.raises(FormatError, match="storage"):
        open_model(str(q))


def test_numpy_arrays_inside_a_checkpoint(tmp_path: Path) -> None:
    import pickle
    arr = np.arange(12, dtype=">i4").reshape(3, 4)
    p = tmp_path / "np.pkl"
    with open(p, "wb") as fh:
        pickle.dump({"a": torch.ones(2)}, fh)
    q = tmp_path / "withnp.pt"
    torch.save({"w": torch.ones(2), "np": arr}, q)
    art = open_model(str(q))
    got = {t.name: t for t in art.tensors}
    assert got["np"].read().tolist() == arr.tolist()
    assert got["np"].canonical_bytes() == arr.astype("<i4").tobytes()
