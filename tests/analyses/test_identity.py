"""One content identity for the same weights in any format; golden values pin the canonical form."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import assay
from assay.analyses.identity import identify, tensor_digest
from assay.api import identify as identify_path

torch = pytest.importorskip("torch")


def weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(42)
    return {
        "embed.weight": rng.standard_normal((10, 6)).astype(np.float32),
        "layer.0.weight": rng.standard_normal((6, 6)).astype(np.float32),
        "layer.0.bias": rng.standard_normal(6).astype(np.float32),
        "head.weight": rng.standard_normal((3, 6)).astype(np.float32),
    }


def write_all(tmp: Path, w: dict[str, np.ndarray]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    out["safetensors"] = tmp / "m.safetensors"
    save_file(w, str(out["safetensors"]))
    out["torch"] = tmp / "m.pt"
    torch.save({k: torch.from_numpy(v.copy()) for k, v in w.items()}, out["torch"])
    out["torch-legacy"] = tmp / "legacy.pt"
    torch.save({k: torch.from_numpy(v.copy()) for k, v in w.items()}, out["torch-legacy"],
               _use_new_zipfile_serialization=False)
    out["npz"] = tmp / "m.npz"
    np.savez(out["npz"], **{k.replace(".", "_"): v for k, v in w.items()})
    out["npz-fortran-bigendian"] = tmp / "f.npz"
    np.savez(out["npz-fortran-bigendian"],
             **{k: np.asfortranarray(v).astype(">f4") for k, v in w.items()})
    # torch views: the same values stored transposed (non-contiguous storage)
    out["torch-views"] = tmp / "views.pt"
    torch.save({k: torch.from_numpy(v.T.copy()).t() if v.ndim == 2 else torch.from_numpy(v.copy())
                for k, v in w.items()}, out["torch-views"])
    # re-sharded and renamed, in reverse order
    shard = tmp / "sharded"
    shard.mkdir()
    names = list(w)[::-1]
    wm = {}
    for i, chunk in enumerate((names[:2], names[2:])):
        fname = f"model-{i + 1:05d}-of-00002.safetensors"
        save_file({f"renamed.{n}": w[n] for n in chunk}, str(shard / fname))
        wm.update({f"renamed.{n}": fname for n in chunk})
    (shard / "model.safetensors.index.json").write_text(json.dumps({"weight_map": wm}))
    out["sharded-renamed"] = shard
    gguf = pytest.importorskip("gguf")
    out["gguf"] = tmp / "m.gguf"
    writer = gguf.GGUFWriter(str(out["gguf"]), "toy")
    for k, v in w.items():
        writer.add_tensor(k, v)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper
    inits = [numpy_helper.from_array(v, k) for k, v in w.items()]
    graph = helper.make_graph([], "g", [], [], initializer=inits)
    out["onnx"] = tmp / "m.onnx"
    onnx.save(helper.make_model(graph), str(out["onnx"]))
    return out


def test_same_weights_same_content_identity_in_every_format(tmp_path: Path) -> None:
    w = weights()
    paths = write_all(tmp_path, w)
    ids = {}
    for kind, p in paths.items():
        try:
            ids[kind] = identify_path(str(p))
        except assay.UnknownFormatError:
            if kind == "onnx":
                pytest.skip("onnx reader not available")
            raise
    contents = {k: v.content for k, v in ids.items()}
    assert len(set(contents.values())) == 1, contents
    assert ids["safetensors"].named == ids["torch"].named == ids["gguf"].named
    assert ids["sharded-renamed"].named != ids["safetensors"].named
    assert ids["npz"].named != ids["safetensors"].named  # names differ (underscores)


def test_one_flipped_bit_changes_the_identity(tmp_path: Path) -> None:
    w = weights()
    a = tmp_path / "a.safetensors"
    save_file(w, str(a))
    w2 = {k: v.copy() for k, v in w.items()}
    w2["layer.0.bias"].view(np.uint32)[3] ^= 1
    b = tmp_path / "b.safetensors"
    save_file(w2, str(b))
    ia, ib = identify_path(str(a)), identify_path(str(b))
    assert ia.content != ib.content and ia.named != ib.named
    diff = [x.name for x, y in zip(ia.tensors, ib.tensors, strict=True) if x.digest != y.digest]
    assert diff == ["layer.0.bias"] or set(diff) == {"layer.0.bias"}


def test_dtype_and_shape_are_part_of_the_digest(tmp_path: Path) -> None:
    v = np.arange(12, dtype=np.int32)
    save_file({"a": v, "b": v.reshape(3, 4), "c": v.view(np.float32)}, str(tmp_path / "m.safetensors"))
    art = assay.open_model(str(tmp_path / "m.safetensors"))
    digests = {t.name: tensor_digest(t).digest for t in art.tensors}
    assert len(set(digests.values())) == 3


# Golden values: if the canonical form changes, these fail and the version tag must be bumped.
GOLDEN_TENSORS = {
    "b": "assay-tensor-v1:0cd244b744643de1605851eb2c9f282dceb24f41e9861e3f029d43108d1eda08",
    "w": "assay-tensor-v1:8d3d455782dbad5c5f3a40b6079d5a7cfc4fa22c92a3cedb797823479c29e25d",
    "h": "assay-tensor-v1:ccb1b9b999e1dd72c31a6d11fb9e05913a27caa95a598a8b366a1c601e931af8",
}
GOLDEN_CONTENT = "assay-model-v1:4c515c7455fb1a13b6de312ebd7508fec50d1b5b6db5a06fbcbc50c9e5047c30"
GOLDEN_NAMED = "assay-model-v1:b66240898e66d90379a2125440555b0d83ed597911da6a7743194bae8318153e"


def test_golden_tensor_digest_follows_the_documented_form() -> None:
    import struct

    import blake3
    body = b"assay-tensor-v1\0float32\0" + struct.pack("<QQQ", 2, 3, 4) + np.arange(12, dtype="<f4").tobytes()
    assert "assay-tensor-v1:" + blake3.blake3(body).hexdigest() == GOLDEN_TENSORS["w"]


def golden_model(tmp: Path) -> Path:
    p = tmp / "golden.safetensors"
    save_file({"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.array([1, -2], np.int64),
               "h": np.array([0.5, 1.5, -2.0], np.float16)}, str(p))
    return p


def test_golden_identities(tmp_path: Path) -> None:
    ident = identify(assay.open_model(str(golden_model(tmp_path))))
    got = {t.name: t.text for t in ident.tensors}
    assert got == GOLDEN_TENSORS
    assert ident.content == GOLDEN_CONTENT
    assert ident.named == GOLDEN_NAMED


def test_manifest_and_verify_cli(tmp_path: Path) -> None:
    w = weights()
    a = tmp_path / "a.safetensors"
    save_file(w, str(a))
    man = tmp_path / "pin.json"
    run = [sys.executable, "-m", "assay.cli.main", "id"]
    r = subprocess.run([*run, str(a), "--manifest", str(man)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    doc = json.loads(man.read_text())
    assert doc["schema"] == "assay.manifest/1" and len(doc["tensors"]) == 4
    # a lossless re-encoding (torch zip) verifies
    pt = tmp_path / "b.pt"
    torch.save({k: torch.from_numpy(v.copy()) for k, v in w.items()}, pt)
    r = subprocess.run([*run, "--verify", str(man), str(pt)], capture_output=True, text=True)
    assert r.returncode == 0 and "verified" in r.stdout, r.stdout + r.stderr
    # a changed tensor does not, and is named
    w["head.weight"][0, 0] += 1
    c = tmp_path / "c.safetensors"
    save_file(w, str(c))
    r = subprocess.run([*run, "--verify", str(man), str(c), "-f", "json"], capture_output=True, text=True)
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["status"] == "different" and out["changed"] == ["head.weight"]
    # a broken manifest is an error
    man.write_text("{}")
    r = subprocess.run([*run, "--verify", str(man), str(c)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("assay: error:")
    # the manifest is never overwritten
    r = subprocess.run([*run, str(a), "--manifest", str(man)], capture_output=True, text=True)
    assert r.returncode == 2 and man.read_text() == "{}"
