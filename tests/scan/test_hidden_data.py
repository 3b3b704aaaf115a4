"""Data hidden where a loader never looks: after a zip's end record, in its comment, after an
ONNX message, after an HDF5 file's end address, after a JSON document; and layer classes a legacy
Keras HDF5 config names without a module. Ordinary files of each kind stay clean."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from assay.api import open_model, scan_file
from tests.factories import pickles

torch = pytest.importorskip("torch")


def rules_of(path: Path) -> set[str]:
    res = scan_file(str(path))
    assert res.status != "error", res.error
    return {f.rule for f in res.findings}


def _checkpoint(path: Path) -> Path:
    torch.save({"w": torch.arange(4.0)}, path)
    return path


def test_zip_comment_and_data_after_the_end_record(tmp_path: Path, marker: Path) -> None:
    payload = pickles.ALL[0](str(marker))
    ckpt = _checkpoint(tmp_path / "a.pt")
    assert rules_of(ckpt) == set()
    after = tmp_path / "after.pt"
    after.write_bytes(ckpt.read_bytes() + payload)
    assert {"PICKLE008", "PICKLE001"} <= rules_of(after)      # and what the hidden pickle would call
    commented = tmp_path / "commented.pt"
    with zipfile.ZipFile(ckpt) as src, zipfile.ZipFile(commented, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.comment = payload
    assert {"PICKLE008", "PICKLE001"} <= rules_of(commented)
    plain = tmp_path / "plain-comment.pt"
    with zipfile.ZipFile(ckpt) as src, zipfile.ZipFile(plain, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.comment = b"written by a test"
    assert rules_of(plain) == set()
    kinds = {o.kind for o in open_model(str(plain)).observations}
    assert "archive.comment" in kinds and "trailing.bytes" not in kinds
    assert not marker.exists()


def test_small_stored_member_with_a_bad_crc(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "a.pt")
    bad = tmp_path / "bad.pt"
    with zipfile.ZipFile(ckpt) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("a/notes.txt", b"hello")
    data = bytearray(bad.read_bytes())
    at = data.index(b"hello")
    data[at] = ord("j")          # content changes, the recorded CRC-32 does not
    bad.write_bytes(bytes(data))
    assert "ARCHIVE005" in rules_of(bad)


def test_json_document_with_data_after_it(tmp_path: Path, marker: Path) -> None:
    ok = tmp_path / "config.json"
    ok.write_text(json.dumps({"model_type": "bert"}) + "\n\n")
    assert rules_of(ok) == set()
    bad = tmp_path / "bad.json"
    bad.write_bytes(ok.read_bytes() + pickles.ALL[0](str(marker)))
    assert "PICKLE008" in rules_of(bad)
    junk = tmp_path / "junk.json"
    junk.write_bytes(b'{"a": 1} trailing words')
    assert "FORMAT002" in rules_of(junk)


@pytest.mark.parametrize("kwargs", [{}, {"libver": "latest"}, {"userblock_size": 512}])
def test_hdf5_end_address(tmp_path: Path, marker: Path, kwargs: dict) -> None:
    h5py = pytest.importorskip("h5py")
    ok = tmp_path / "w.h5"
    with h5py.File(ok, "w", **kwargs) as f:
        f.create_dataset("w", data=np.arange(10.0))
    assert rules_of(ok) == set()
    bad = tmp_path / "bad.h5"
    bad.write_bytes(ok.read_bytes() + pickles.ALL[0](str(marker)))
    assert "PICKLE008" in rules_of(bad)


def test_onnx_with_data_after_the_message(tmp_path: Path, marker: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((2, 2), np.float32), "w")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [w])
    ok = tmp_path / "m.onnx"
    onnx.save(helper.make_model(g), ok)
    assert rules_of(ok) == set()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(ok.read_bytes() + pickles.ALL[0](str(marker)))
    assert "PICKLE008" in rules_of(bad)
    art = open_model(str(bad))
    assert [t.name for t in art.tensors] == ["w"]


def _legacy_h5(path: Path, layers: list[dict]) -> None:
    h5py = pytest.importorskip("h5py")
    cfg = {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(cfg)
        f.attrs["keras_version"] = "2.15.0"
        f.create_group("model_weights")


def test_legacy_keras_layer_classes(tmp_path: Path) -> None:
    known = [{"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [None, 4]}},
             {"class_name": "Dense", "config": {"name": "d", "units": 2}}]
    ok = tmp_path / "ok.h5"
    _legacy_h5(ok, known)
    assert rules_of(ok) == set()
    custom = tmp_path / "custom.h5"
    _legacy_h5(custom, [*known, {"class_name": "Backdoor", "config": {"name": "b"}}])
    assert "KERAS002" in rules_of(custom)
    saved = tmp_path / "saved.h5"
    _legacy_h5(saved, [*known, {"class_name": "TFSMLayer", "config": {"name": "t", "filepath": "/x"}}])
    assert "KERAS003" in rules_of(saved)


def test_thousands_of_member_oddities_are_listed_once_per_rule(tmp_path: Path) -> None:
    bad = tmp_path / "many.zip"
    with zipfile.ZipFile(bad, "w") as z:
        for i in range(60):
            z.writestr(f"../escape/{i}", b"x")
    res = scan_file(str(bad))
    traversal = [f for f in res.findings if f.rule == "ARCHIVE001"]
    assert len(traversal) == 21
    assert traversal[-1].message.startswith("40 more findings of ARCHIVE001") and traversal[-1].count == 40
