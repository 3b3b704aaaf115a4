"""Keras readers: HDF5 files written with h5py in the layouts Keras uses (and by Keras itself when
it is installed), Keras 3 archives built with zipfile + h5py; every tensor is compared byte for
byte with what h5py (or Keras) reads. Hostile inputs must end in FormatError."""

from __future__ import annotations

import base64
import io
import json
import marshal
import os
import types
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")
ml_dtypes = pytest.importorskip("ml_dtypes")

from assay.errors import FormatError, LimitError, UnsupportedError  # noqa: E402
from assay.formats import detect, read_file  # noqa: E402
from assay.limits import Limits  # noqa: E402
from assay.model.artifact import ModelArtifact  # noqa: E402


def _bytes(a: Any) -> bytes:
    return np.ascontiguousarray(np.asarray(a)).view(np.uint8).tobytes()


def _le_bytes(a: np.ndarray) -> bytes:
    a = np.asarray(a)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return _bytes(a)


def _check_against_h5py(art: ModelArtifact, h5: Any) -> None:
    """Every tensor equals the dataset of the same path, read by h5py, bit for bit."""
    for rec in art.tensors:
        ref = h5[rec.name][()]
        got = rec.read()
        assert rec.shape == np.shape(ref), rec.name
        assert _bytes(got) == _bytes(ref), rec.name
        assert rec.canonical_bytes() == _le_bytes(ref), rec.name


def _kinds(art: ModelArtifact, kind: str) -> list[Any]:
    return [o for o in art.observations if o.kind == kind]


def _marker_code(marker: Path) -> str:
    """Base64 marshalled code of a lambda that would create `marker` if anyone ran it."""
    module = compile(f"lambda x: open({str(marker)!r}, 'w')", "<payload>", "eval")
    code = next(c for c in module.co_consts if isinstance(c, types.CodeType))
    return base64.b64encode(marshal.dumps(code)).decode("ascii")


# ---------------------------------------------------------------- legacy full model (tf.keras 2)

def _legacy_config(code: str) -> dict[str, Any]:
    def layer(cls: str, name: str, **cfg: Any) -> dict[str, Any]:
        return {"class_name": cls, "config": {"name": name, "trainable": True, **cfg}}
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        layer("InputLayer", "input_1", batch_input_shape=[None, 4], dtype="float32"),
        layer("Dense", "dense", units=3, activation="relu"),
        layer("Lambda", "lambda", function=[code, None, None], function_type="lambda",
              module="__main__", output_shape=None, output_shape_type="raw",
              output_shape_module=None, arguments={}),
        layer("Lambda", "named", function="my_fn", function_type="function",
              module="my_pkg.fns", output_shape=None, output_shape_type="raw",
              output_shape_module=None, arguments={}),
        layer("Dense", "dense_1", units=2),
    ]}}


def _legacy_full(path: Path, code: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    weights = {
        "model_weights/dense/dense/kernel:0": rng.standard_normal((4, 3)).astype(np.float32),
        "model_weights/dense/dense/bias:0": rng.standard_normal(3).astype(np.float32),
        "model_weights/dense_1/dense_1/kernel:0": rng.standard_normal((3, 2)).astype(">f4"),
        "model_weights/dense_1/dense_1/bias:0": rng.standard_normal(2).astype(np.float16),
        "optimizer_weights/Adam/iter:0": np.array(7, np.int64),
        "optimizer_weights/Adam/dense/kernel/m:0": rng.standard_normal((4, 3)).astype(np.float64),
    }
    training = {"loss": "mse", "optimizer_config": {"class_name": "Adam", "config": {"lr": 0.1}}}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.4.0"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(_legacy_config(code)).encode("utf-8")
        f.attrs["training_config"] = json.dumps(training)
        mw = f.create_group("model_weights")
        mw.attrs["layer_names"] = np.array([b"input_1", b"dense", b"lambda", b"named", b"dense_1"])
        for layer in ("input_1", "lambda", "named"):
            mw.create_group(layer).attrs["weight_names"] = np.array([], dtype="S1")
        for name, value in weights.items():
            if name.endswith("m:0"):       # chunked and compressed: read through h5py
                f.create_dataset(name, data=value, chunks=(2, 3), compression="gzip")
            else:
                f[name] = value
        for layer in ("dense", "dense_1"):
            mw[layer].attrs["weight_names"] = np.array([f"{layer}/kernel:0".encode(),
                                                        f"{layer}/bias:0".encode()])
    return weights


def test_legacy_full_model(tmp_path: Path, marker: Path) -> None:
    p = tmp_path / "model.bin"
    code = _marker_code(marker)
    weights = _legacy_full(p, code)
    reader, _ = detect(str(p))
    assert reader.name == "hdf5-keras"
    art = read_file(str(p))
    assert art.format == "hdf5-keras"
    assert sorted(t.name for t in art.tensors) == sorted(weights)
    with h5py.File(p, "r") as f:
        _check_against_h5py(art, f)
    got = {t.name: t for t in art.tensors}
    for name, value in weights.items():
        assert _le_bytes(value) == got[name].canonical_bytes()
    assert got["model_weights/dense/dense/kernel:0"].dtype.name == "float32"
    assert got["model_weights/dense_1/dense_1/kernel:0"].byteorder == ">"
    assert got["model_weights/dense_1/dense_1/bias:0"].dtype.name == "float16"
    assert got["optimizer_weights/Adam/iter:0"].shape == ()
    assert got["optimizer_weights/Adam/iter:0"].dtype.name == "int64"
    # contiguous datasets are mapped from the file; the compressed one was read into memory
    assert not got["model_weights/dense/dense/kernel:0"].span.in_memory
    assert got["optimizer_weights/Adam/dense/kernel/m:0"].span.in_memory
    assert got["model_weights/dense/dense/kernel:0"].attrs["layer"] == "dense"

    meta = art.metadata["keras"]
    assert meta["keras_version"] == "2.4.0" and meta["backend"] == "tensorflow"
    assert meta["model_config"] == _legacy_config(code)
    assert meta["training_config"]["optimizer_config"]["class_name"] == "Adam"
    assert meta["layer_names"] == ["input_1", "dense", "lambda", "named", "dense_1"]

    layers = [(o.data["class_name"], o.data["name"]) for o in _kinds(art, "keras.layer")]
    assert layers == [("Sequential", "sequential"), ("InputLayer", "input_1"), ("Dense", "dense"),
                      ("Lambda", "lambda"), ("Lambda", "named"), ("Dense", "dense_1")]
    lambdas = {o.data["layer"]: o.data for o in _kinds(art, "keras.lambda")}
    assert lambdas["lambda"]["code"] == code and lambdas["lambda"]["function_type"] == "lambda"
    assert lambdas["lambda"]["module"] == "__main__"
    assert lambdas["named"]["code"] is None and lambdas["named"]["function_name"] == "my_fn"
    assert lambdas["named"]["module"] == "my_pkg.fns"
    assert not marker.exists()


# ---------------------------------------------------------------- legacy save_weights layout

@pytest.mark.parametrize("chunked_names", [False, True])
def test_legacy_save_weights(tmp_path: Path, chunked_names: bool) -> None:
    p = tmp_path / "w.h5"
    rng = np.random.default_rng(2)
    layer_names = [b"conv", b"bn", b"flatten"]
    with h5py.File(p, "w") as f:
        if chunked_names:      # how Keras splits attributes over 64 KiB
            f.attrs["layer_names0"] = np.array(layer_names[:2])
            f.attrs["layer_names1"] = np.array(layer_names[2:])
        else:
            f.attrs["layer_names"] = np.array(layer_names)
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        f["conv/conv/kernel:0"] = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)
        f["conv/conv/bias:0"] = np.zeros(4, np.float32)
        for v in ("gamma", "beta", "moving_mean", "moving_variance"):
            f[f"bn/bn/{v}:0"] = rng.standard_normal(4).astype(np.float32)
        f["bn/bn/mask:0"] = np.array([True, False, True, True])
        f["conv"].attrs["weight_names"] = np.array([b"conv/kernel:0", b"conv/bias:0"])
        f.create_group("flatten").attrs["weight_names"] = np.array([], dtype="S1")
    art = read_file(str(p))
    assert art.format == "hdf5-keras"
    assert art.metadata["keras"]["layer_names"] == ["conv", "bn", "flatten"]
    assert art.metadata["keras"]["keras_version"] == "2.2.4"
    assert len(art.tensors) == 7
    with h5py.File(p, "r") as f:
        _check_against_h5py(art, f)
    got = {t.name: t for t in art.tensors}
    assert got["conv/conv/kernel:0"].attrs["layer"] == "conv"
    assert got["bn/bn/mask:0"].dtype.name == "bool"
    assert got["bn/bn/gamma:0"].attrs["layer"] == "bn"


def test_userblock_and_skipped_datasets(tmp_path: Path) -> None:
    p = tmp_path / "ub.weights"
    with h5py.File(p, "w", userblock_size=512) as f:
        f["a"] = np.arange(6, dtype=np.int16).reshape(2, 3)
        f["c"] = np.array([1 + 2j, 3 - 4j], np.complex64)
        f["text"] = "not a tensor"
        f["nothing"] = h5py.Empty("f4")
        f.create_dataset("compact", data=np.arange(3, dtype="<u4"),
                         dcpl=_compact_dcpl())
        f["raw"] = np.frombuffer(b"\x01\x02\x03\x04", dtype="V2")   # opaque, untagged
    with open(p, "r+b") as fh:
        fh.write(b"user block text, not HDF5")
    reader, _ = detect(str(p))
    assert reader.name == "hdf5-keras"
    art = read_file(str(p))
    with h5py.File(p, "r") as f:
        _check_against_h5py(art, f)
    assert sorted(t.name for t in art.tensors) == ["a", "c", "compact"]
    assert art.tensor("a").span.offset >= 512 and not art.tensor("a").span.in_memory
    skipped = art.metadata["keras"]["skipped_datasets"]
    assert set(skipped) == {"text", "nothing", "raw"}
    assert "opaque" in skipped["raw"]


def _compact_dcpl() -> Any:
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    return dcpl


def test_links_are_recorded_not_followed(tmp_path: Path) -> None:
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["secret"] = np.arange(4, dtype=np.float32)
    raw_file = tmp_path / "raw.bin"
    raw_file.write_bytes(np.arange(4, dtype=np.float32).tobytes())
    p = tmp_path / "links.h5"
    with h5py.File(p, "w") as f:
        f["g/w"] = np.ones(3, np.float32)
        f["g/loop"] = f["g"]                         # hard link cycle
        f["alias"] = h5py.SoftLink("/g/w")
        f["ext"] = h5py.ExternalLink(str(other), "/secret")
        f.create_dataset("outside", shape=(4,), dtype="f4", external=[(str(raw_file), 0, 16)])
    art = read_file(str(p))
    assert [t.name for t in art.tensors] == ["g/w"]
    ext = _kinds(art, "external.data")
    assert {o.data["name"] for o in ext} == {"ext", "outside"}
    assert any(o.data.get("target_file") == str(other) for o in ext)


# ---------------------------------------------------------------- Keras 3 archive

def _keras3_config(code: str) -> dict[str, Any]:
    def obj(module: str | None, cls: str, config: Any, registered: str | None = None,
            **extra: Any) -> dict[str, Any]:
        return {"module": module, "class_name": cls, "config": config,
                "registered_name": registered, **extra}
    dense = obj("keras.layers", "Dense", {"name": "d1", "units": 3, "kernel_initializer": obj(
        "keras.initializers", "GlorotUniform", {"seed": None})})
    inner = obj("keras", "Sequential", {"name": "inner", "layers": [
        obj("keras.layers", "Dense", {"name": "inner_d", "units": 3,
                                      "activation": obj("builtins", "function", "my_act",
                                                        "function")})]})
    lam = obj("keras.layers", "Lambda", {"name": "lam", "function": obj(
        "builtins", "__lambda__", {"code": code, "defaults": None, "closure": None}),
        "arguments": {}})
    custom = obj("my_pkg.layers", "Scale", {"name": "sc"}, "MyPkg>Scale")
    return obj("keras.src.models.functional", "Functional",
               {"name": "functional", "layers": [dense, inner, lam, custom]}, "Functional",
               compile_config={"loss": obj("my_pkg.losses", "MyLoss", {}, "MyPkg>MyLoss")})


def _keras3_weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "layers/dense/vars/0": rng.standard_normal((4, 3)).astype(np.float32),
        "layers/dense/vars/1": rng.standard_normal(3).astype(np.float32),
        "layers/sequential/layers/dense/vars/0": rng.standard_normal((3, 3)).astype(
            ml_dtypes.bfloat16),
        "layers/sequential/layers/dense/vars/1": rng.standard_normal(3).astype(np.float16),
        "layers/scale/vars/0": rng.standard_normal(1).astype(np.float32),
        "optimizer/vars/0": np.array(5, np.int64),
    }


def _keras3_h5(weights: dict[str, np.ndarray], chunked: bool = False) -> bytes:
    buf = io.BytesIO()
    names = {"layers/dense/vars": "d1", "layers/sequential/layers/dense/vars": "inner_d",
             "layers/scale/vars": "sc", "optimizer/vars": "adam"}
    with h5py.File(buf, "w") as f:
        for group, layer in names.items():
            f.require_group(group).attrs["name"] = layer
        f.create_group("layers/lambda/vars").attrs["name"] = "lam"
        f.create_group("vars").attrs["name"] = "functional"
        for name, value in weights.items():
            opts = {"chunks": True, "compression": "gzip"} if chunked and value.ndim else {}
            ds = f.create_dataset(name, data=value, **opts)
            if value.dtype == ml_dtypes.bfloat16:     # what Keras 3 does for bfloat16
                ds.attrs["dtype"] = "bfloat16"
    return buf.getvalue()


def _write_keras(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in members.items():
            z.writestr(name, data)


def _keras3_members(code: str, weights_h5: bytes) -> dict[str, bytes]:
    return {"metadata.json": json.dumps({"keras_version": "3.4.1",
                                         "date_saved": "2024-07-01@00:00:00"}).encode(),
            "config.json": json.dumps(_keras3_config(code)).encode(),
            "model.weights.h5": weights_h5}


@pytest.mark.parametrize(("compression", "chunked"), [
    (zipfile.ZIP_STORED, False), (zipfile.ZIP_DEFLATED, False), (zipfile.ZIP_STORED, True)])
def test_keras3_archive(tmp_path: Path, marker: Path, compression: int, chunked: bool) -> None:
    code = _marker_code(marker)
    weights = _keras3_weights()
    h5 = _keras3_h5(weights, chunked)
    members = _keras3_members(code, h5)
    members["assets/helper.py"] = b"import os\nos.system('true')\n"
    p = tmp_path / "model.zip"
    _write_keras(p, members, compression)
    reader, _ = detect(str(p))
    assert reader.name == "keras"
    art = read_file(str(p))
    assert art.format == "keras"
    assert sorted(t.name for t in art.tensors) == sorted(weights)
    with h5py.File(io.BytesIO(h5), "r") as f:
        _check_against_h5py(art, f)
    got = {t.name: t for t in art.tensors}
    for name, value in weights.items():
        assert got[name].canonical_bytes() == _bytes(value), name
        assert got[name].span.member == "model.weights.h5"
    bf = got["layers/sequential/layers/dense/vars/0"]
    assert bf.dtype.name == "bfloat16" and bf.shape == (3, 3)
    assert np.array_equal(bf.read().astype(np.float32), weights[bf.name].astype(np.float32))
    assert bf.attrs["layer"] == "inner_d" and got["layers/dense/vars/0"].attrs["layer"] == "d1"
    raw = p.read_bytes()
    for t in art.tensors:
        mapped = compression == zipfile.ZIP_STORED and (not chunked or not t.shape)
        assert t.span.in_memory is not mapped, t.name
        if mapped:       # spans are absolute offsets into the archive file itself
            assert raw[t.span.offset:t.span.offset + t.nbytes] == _bytes(weights[t.name])

    meta = art.metadata["keras"]
    assert meta["keras_version"] == "3.4.1" and meta["metadata"]["date_saved"].startswith("2024")
    assert meta["model_config"] == _keras3_config(code)
    layers = [o.data["name"] for o in _kinds(art, "keras.layer")]
    assert layers == ["functional", "d1", "inner", "inner_d", "lam", "sc"]
    sc = next(o for o in _kinds(art, "keras.layer") if o.data["name"] == "sc")
    assert sc.data["module"] == "my_pkg.layers" and sc.data["registered_name"] == "MyPkg>Scale"
    assert sc.location.member == "config.json"
    lambdas = _kinds(art, "keras.lambda")
    assert len(lambdas) == 1 and lambdas[0].data["code"] == code
    objects = {(o.data["module"], o.data["class_name"]) for o in _kinds(art, "symbolic.object")}
    assert objects == {("builtins", "function"), ("my_pkg.losses", "MyLoss")}
    members = {o.location.member: o.data for o in _kinds(art, "archive.member")}
    assert set(members) == {"config.json", "metadata.json", "model.weights.h5", "assets/helper.py"}
    assert members["model.weights.h5"]["looks_like"] == "hdf5"
    assert not marker.exists()


def test_keras3_lambda_outside_lambda_layer(tmp_path: Path) -> None:
    cfg = {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [
        {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "activation": {
            "module": "builtins", "class_name": "__lambda__", "config": {"code": "QUJD"},
            "registered_name": None}}, "registered_name": None}]}, "registered_name": None}
    p = tmp_path / "m.keras"
    _write_keras(p, {"config.json": json.dumps(cfg).encode(), "metadata.json": b"{}",
                     "model.weights.h5": _keras3_h5({})})
    art = read_file(str(p))
    (lam,) = _kinds(art, "keras.lambda")
    assert lam.data["code"] == "QUJD" and lam.data["location"] == "$.config.layers[0].config.activation"


def test_zip_oddities_recorded(tmp_path: Path) -> None:
    p = tmp_path / "odd.keras"
    members = _keras3_members("QUJD", _keras3_h5(_keras3_weights()))
    with zipfile.ZipFile(p, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
        z.writestr("../escape.txt", b"x")
    art = read_file(str(p))
    assert any(o.location.member == "../escape.txt" for o in _kinds(art, "archive.oddity"))
    assert any(o.location.member == "../escape.txt" for o in _kinds(art, "archive.member"))


# ---------------------------------------------------------------- real Keras, when installed

def _keras_model(keras: Any) -> Any:
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(5, name="d1"),
        keras.layers.Lambda(lambda x: x * 2, name="lam"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.Dense(2, name="half", dtype="bfloat16"),
    ], name="seq")


@pytest.fixture(scope="module")
def keras() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_real_keras_archive(tmp_path: Path, keras: Any) -> None:
    model = _keras_model(keras)
    p = tmp_path / "model.keras"
    model.save(p)
    art = read_file(str(p))
    assert art.format == "keras"
    by_layer: dict[str, list[Any]] = {}
    for t in art.tensors:
        by_layer.setdefault(str(t.attrs.get("layer")), []).append(t)
    for layer in model.layers:
        ref = layer.get_weights()
        got = sorted(by_layer.get(layer.name, []), key=lambda t: int(t.name.rsplit("/", 1)[1]))
        assert len(got) == len(ref), layer.name
        for rec, w in zip(got, ref):
            assert rec.shape == w.shape and rec.dtype.name == str(w.dtype), rec.name
            assert rec.canonical_bytes() == _bytes(w), rec.name
    assert art.metadata["keras"]["keras_version"] == keras.__version__
    (lam,) = _kinds(art, "keras.lambda")
    assert lam.data["layer"] == "lam" and lam.data["code"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_real_keras_legacy_h5(tmp_path: Path, keras: Any) -> None:
    model = _keras_model(keras)
    p = tmp_path / "model.h5"
    model.save(p)
    art = read_file(str(p))
    assert art.format == "hdf5-keras"
    with h5py.File(p, "r") as f:
        _check_against_h5py(art, f)
    for layer in model.layers:
        if layer.name == "half":
            continue
        got = sorted(_bytes(t.read()) for t in art.tensors if t.attrs.get("layer") == layer.name)
        assert got == sorted(_bytes(w) for w in layer.get_weights()), layer.name
    meta = art.metadata["keras"]
    assert meta["keras_version"] == keras.__version__ and meta["backend"] == "torch"
    assert meta["layer_names"] == [layer.name for layer in model.layers]
    # legacy HDF5 writes bfloat16 as an untagged opaque type: listed, not guessed
    assert sorted(n.rsplit("/", 1)[1] for n in meta["skipped_datasets"]) == ["bias", "kernel"]
    assert all("/half/" in n for n in meta["skipped_datasets"])
    assert [o.data["layer"] for o in _kinds(art, "keras.lambda")] == ["lam"]


# ---------------------------------------------------------------- own HDF5 reading vs h5py

def _summary(art: ModelArtifact) -> Any:
    tensors = [(t.name, t.dtype.name, t.shape, t.span, t.byteorder, t.attrs, t.canonical_bytes())
               for t in art.tensors]
    obs = [(o.kind, o.detail, o.location, o.data) for o in art.observations]
    return tensors, obs, art.metadata


def _read_both(p: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any, list[str]]:
    """The artifact read the usual way (assay's own HDF5 reading when it can) and with the
    own reading switched off (h5py only), and which files the usual way read with h5py."""
    from assay.formats import keras as keras_reader

    used: list[str] = []
    real = keras_reader._read_with_h5py

    def spy(walk: Any, on_root: Any) -> None:
        used.append(walk.path)
        real(walk, on_root)
    with monkeypatch.context() as m:
        m.setattr(keras_reader, "_read_with_h5py", spy)
        own = _summary(read_file(str(p)))

    def refuse(buf: Any) -> Any:
        raise keras_reader.hdf5.NotRead("switched off")
    with monkeypatch.context() as m:
        m.setattr(keras_reader.hdf5, "Hdf5File", refuse)
        lib = _summary(read_file(str(p)))
    return own, lib, used


def _unchunked_legacy(path: Path, code: str) -> None:
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.4.0"
        f.attrs["model_config"] = json.dumps(_legacy_config(code))
        mw = f.create_group("model_weights")
        mw.attrs["layer_names"] = np.array([b"dense", b"dense_1"])
        mw["dense/dense/kernel:0"] = np.arange(12, dtype=">f4").reshape(4, 3)
        mw["dense/dense/bias:0"] = np.arange(3, dtype=np.float16)
        mw["dense_1/dense_1/kernel:0"] = np.ones((3, 2), np.float64)
        mw["dense/weights_are_text"] = "x"
        f["optimizer_weights/iter:0"] = np.array(7, np.int64)
        f["flags"] = np.array([True, False])
        f["ext"] = h5py.ExternalLink("elsewhere.h5", "/w")
        f["alias"] = h5py.SoftLink("/model_weights")


@pytest.mark.parametrize("kind", ["legacy", "keras3", "userblock", "links", "latest-dense"])
def test_own_hdf5_reading_equals_h5py(tmp_path: Path, marker: Path, kind: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    code = _marker_code(marker)
    p = tmp_path / "m.h5"
    if kind == "legacy":
        _unchunked_legacy(p, code)
    elif kind == "keras3":
        p = tmp_path / "m.keras"
        _write_keras(p, _keras3_members(code, _keras3_h5(_keras3_weights())))
    elif kind == "userblock":
        with h5py.File(p, "w", userblock_size=1024) as f:
            f["a/b"] = np.arange(6, dtype=np.int16).reshape(2, 3)
            f["a"].attrs["layer_names"] = np.array([b"b"])
    elif kind == "links":
        with h5py.File(p, "w") as f:
            f["g/w"] = np.ones(3, np.float32)
            f["g/loop"] = f["g"]
            f.create_dataset("outside", shape=(4,), dtype="f4", external=[("raw.bin", 0, 16)])
    else:                   # more than 8 links per group under libver="latest": dense storage
        with h5py.File(p, "w", libver="latest") as f:
            for i in range(12):
                f[f"w{i}"] = np.full(2, i, np.float32)
    own, lib, used = _read_both(p, monkeypatch)
    assert own == lib
    assert used == ([str(p)] if kind == "latest-dense" else [])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_own_hdf5_reading_of_real_keras_files(tmp_path: Path, keras: Any, suffix: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / f"model{suffix}"
    _keras_model(keras).save(p)
    own, lib, used = _read_both(p, monkeypatch)
    assert own == lib and used == []


def test_scanning_keras_files_imports_neither_h5py_nor_numpy(tmp_path: Path, marker: Path) -> None:
    import subprocess
    import sys

    code = _marker_code(marker)
    legacy, k3 = tmp_path / "m.h5", tmp_path / "m.keras"
    _unchunked_legacy(legacy, code)
    _write_keras(k3, _keras3_members(code, _keras3_h5(_keras3_weights())))
    probe = ("import sys; from assay.api import scan_file; "
             f"rules = [f.rule for p in {[str(legacy), str(k3)]!r} for f in scan_file(p).findings]; "
             "print(sorted(set(rules)), [m for m in ('h5py', 'numpy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("[]"), out.stdout + out.stderr
    assert "KERAS001" in out.stdout
    assert not marker.exists()


# ---------------------------------------------------------------- bad input

def _small_h5(path: Path) -> None:
    with h5py.File(path, "w") as f:
        f["w"] = np.arange(4096, dtype=np.float32)
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {}})


def test_truncated_hdf5(tmp_path: Path) -> None:
    p = tmp_path / "t.h5"
    _small_h5(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=r"hdf5: cannot read .*truncated"):
        read_file(str(p))


@pytest.mark.parametrize("seed", range(6))
def test_garbage_after_signature(tmp_path: Path, seed: int) -> None:
    p = tmp_path / "g.h5"
    rng = np.random.default_rng(seed)
    p.write_bytes(b"\x89HDF\r\n\x1a\n" + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(FormatError, match="hdf5: cannot read"):
        read_file(str(p))


def test_corrupted_metadata_bytes(tmp_path: Path) -> None:
    """Flip bytes inside the object headers of a real file: FormatError or a clean read."""
    p = tmp_path / "c.h5"
    _small_h5(p)
    good = p.read_bytes()
    rng = np.random.default_rng(7)
    errors = 0
    for _ in range(20):
        bad = bytearray(good)
        for at in rng.integers(8, 2048, 8):
            bad[at] ^= 0xFF
        p.write_bytes(bytes(bad))
        try:
            read_file(str(p))
        except FormatError:
            errors += 1
    assert errors > 0


def test_model_config_not_json(tmp_path: Path) -> None:
    p = tmp_path / "m.h5"
    with h5py.File(p, "w") as f:
        f.attrs["model_config"] = "{'class_name': 'Sequential'"
    with pytest.raises(FormatError, match="attribute 'model_config' is not valid JSON"):
        read_file(str(p))


def test_keras3_missing_weights(tmp_path: Path) -> None:
    p = tmp_path / "m.keras"
    _write_keras(p, {"config.json": b"{}", "metadata.json": b"{}"})
    with pytest.raises(FormatError, match=r"no model\.weights\.h5"):
        read_file(str(p))


def test_keras3_npz_weights_unsupported(tmp_path: Path) -> None:
    p = tmp_path / "m.keras"
    _write_keras(p, {"config.json": b"{}", "metadata.json": b"{}", "model.weights.npz": b"PK"})
    with pytest.raises(UnsupportedError, match=r"model\.weights\.npz"):
        read_file(str(p))


@pytest.mark.parametrize(("config", "rule"), [
    (b"{not json", "config.json is not valid JSON"),
    (b"\xff\xfe{}", "config.json is not valid UTF-8"),
    (b"[1, 2]", "config.json is not a JSON object"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
])
def test_keras3_bad_config(tmp_path: Path, config: bytes, rule: str) -> None:
    p = tmp_path / "m.keras"
    _write_keras(p, {"config.json": config, "metadata.json": b"{}",
                     "model.weights.h5": _keras3_h5({})})
    with pytest.raises(FormatError, match=rule):
        read_file(str(p))


def test_keras3_weights_not_hdf5(tmp_path: Path) -> None:
    p = tmp_path / "m.keras"
    _write_keras(p, {"config.json": b"{}", "metadata.json": b"{}",
                     "model.weights.h5": b"\x89HDF\r\n\x1a\n" + b"\0" * 600})
    with pytest.raises(FormatError, match="keras: cannot read") as exc:
        read_file(str(p))
    assert exc.value.member == "model.weights.h5"


def test_config_depth_limit(tmp_path: Path) -> None:
    node: dict[str, Any] = {"class_name": "Dense", "config": {"name": "leaf"}}
    for i in range(15):       # three JSON levels per nested model
        node = {"class_name": "Sequential", "config": {"name": f"s{i}", "layers": [node]}}
    p = tmp_path / "m.keras"
    _write_keras(p, {"config.json": json.dumps(node).encode(), "metadata.json": b"{}",
                     "model.weights.h5": _keras3_h5({})})
    assert len(_kinds(read_file(str(p)), "keras.layer")) == 16
    with pytest.raises(LimitError, match=r"config\.json is nested deeper than 30 levels"):
        read_file(str(p), Limits(max_json_depth=30))


def test_group_limits(tmp_path: Path) -> None:
    p = tmp_path / "many.h5"
    with h5py.File(p, "w") as f:
        for i in range(20):
            f[f"w{i}"] = np.zeros(2, np.float32)
        g = f
        for i in range(10):
            g = g.create_group(f"level{i}")
    assert len(read_file(str(p)).tensors) == 20
    with pytest.raises(LimitError, match="more than 10 HDF5 links"):
        read_file(str(p), Limits(max_tensors=10))
    with pytest.raises(LimitError, match="groups nested deeper than 5"):
        read_file(str(p), Limits(max_json_depth=5))


def test_huge_unallocated_dataset_is_not_allocated(tmp_path: Path) -> None:
    p = tmp_path / "huge.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("huge", shape=(1 << 40,), dtype="f4")     # never written: no storage
    assert p.stat().st_size < 100_000
    with pytest.raises(LimitError, match=r"read into memory exceed .* at 'huge'"):
        read_file(str(p))


def test_compressed_dataset_budget(tmp_path: Path) -> None:
    p = tmp_path / "zipped.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("small", data=np.zeros(100, np.float32), compression="gzip")
        f.create_dataset("zipped", data=np.zeros(4096, np.float32), compression="gzip")
    assert len(read_file(str(p)).tensors) == 2
    with pytest.raises(LimitError, match="'zipped'"):
        read_file(str(p), Limits(max_decompressed_bytes=1000))


def test_huge_layer_names(tmp_path: Path) -> None:
    p = tmp_path / "names.h5"
    with h5py.File(p, "w") as f:
        f.attrs["layer_names"] = np.array([f"l{i}".encode() for i in range(50)])
    with pytest.raises(LimitError, match="layer_names"):
        read_file(str(p), Limits(max_metadata_entries=10))
