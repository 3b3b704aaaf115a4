"""joblib files and pickled scikit-learn estimators: tensors bit-identical to the fitted objects."""

from __future__ import annotations

import bz2
import lzma
import pickle
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assay.errors import FormatError, LimitError, UnsupportedError
from assay.formats import read_path
from assay.limits import Limits
from assay.model.artifact import ModelArtifact

sklearn = pytest.importorskip("sklearn")
joblib = pytest.importorskip("joblib")

from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


def le_bytes(ref: np.ndarray) -> bytes:
    """Little-endian, C-order bytes of an array (what assay's canonical bytes must equal)."""
    return np.ascontiguousarray(ref, dtype=ref.dtype.newbyteorder("<")).tobytes()


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(0)
    x = rng.rand(60, 4)
    return x, (x[:, 0] + x[:, 1] > 1).astype(np.int64)


def _models() -> dict[str, Any]:
    x, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "logistic": LogisticRegression(C=0.5, max_iter=200).fit(x, y),
            "forest": RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0).fit(x, y),
            "pipeline": Pipeline([("scaler", StandardScaler()), ("ridge", Ridge(alpha=2.0))]).fit(x, y),
            "mlp": MLPClassifier(hidden_layer_sizes=(6,), max_iter=30, random_state=0).fit(x, y),
        }


MODELS = _models()

# Names assay must report for each model, and hyperparameters it must record.
EXPECTED_NAMES = {
    "logistic": ["coef_", "intercept_", "classes_", "n_iter_"],
    "forest": ["classes_", "estimators_.0.tree_.nodes.threshold", "estimators_.0.tree_.nodes.left_child",
               "estimators_.2.tree_.nodes.missing_go_to_left", "estimators_.2.tree_.values"],
    "pipeline": ["steps.0.1.mean_", "steps.0.1.scale_", "steps.0.1.var_", "steps.1.1.coef_"],
    "mlp": ["coefs_.0", "coefs_.1", "intercepts_.0", "intercepts_.1"],
}
EXPECTED_ROOT = {
    "logistic": ("sklearn.linear_model._logistic.LogisticRegression", {"C": 0.5, "max_iter": 200}),
    "forest": ("sklearn.ensemble._forest.RandomForestClassifier", {"n_estimators": 3, "max_depth": 4}),
    "pipeline": ("sklearn.pipeline.Pipeline",
                 {"steps": [["scaler", "<sklearn.preprocessing._data.StandardScaler>"],
                            ["ridge", "<sklearn.linear_model._ridge.Ridge>"]]}),
    "mlp": ("sklearn.neural_network._multilayer_perceptron.MLPClassifier",
            {"hidden_layer_sizes": [6], "max_iter": 30, "activation": "relu"}),
}

JOBLIB_WAYS: dict[str, Any] = {
    "plain": None, "zlib": 3, "gzip": ("gzip", 3), "bz2": ("bz2", 3), "xz": ("xz", 3), "lzma": ("lzma", 3),
}


def resolve(obj: Any, dotted: str) -> Any:
    """Follow assay's dotted name through the in-memory object (indices, keys, state, fields)."""
    for seg in dotted.split("."):
        if isinstance(obj, list | tuple):
            obj = obj[int(seg)]
        elif isinstance(obj, dict):
            obj = obj[seg]
        elif isinstance(obj, np.ndarray) and obj.dtype.names:
            obj = obj[seg]
        else:
            state = obj.__getstate__()
            obj = state[seg] if isinstance(state, dict) and seg in state else getattr(obj, seg)
    return obj


def check_tensors(art: ModelArtifact, model: Any, kind: str) -> None:
    names = [t.name for t in art.tensors]
    for want in EXPECTED_NAMES[kind]:
        assert want in names, (want, names)
    for rec in art.tensors:
        ref = resolve(model, rec.name)
        assert isinstance(ref, np.ndarray), rec.name
        assert rec.shape == ref.shape, rec.name
        assert rec.dtype.name == ref.dtype.name, rec.name
        assert rec.canonical_bytes() == le_bytes(ref), rec.name


def check_metadata(art: ModelArtifact, kind: str) -> None:
    meta = art.metadata["sklearn"]
    assert meta["sklearn_version"] == sklearn.__version__
    root = meta["estimators"][0]
    cls, params = EXPECTED_ROOT[kind]
    assert root["path"] == "" and root["class"] == cls
    for k, v in params.items():
        assert root["params"][k] == v, k
    assert not any(k.endswith("_") or k.startswith("_") for k in root["params"])


@pytest.mark.parametrize("way", sorted(JOBLIB_WAYS))
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_joblib_dump(tmp_path: Path, kind: str, way: str) -> None:
    p = tmp_path / "model.joblib"
    joblib.dump(MODELS[kind], p, compress=JOBLIB_WAYS[way] or 0)
    art = read_path(str(p))
    assert art.format == "joblib"
    assert art.metadata["joblib"]["compression"] == ("none" if way == "plain" else way)
    check_tensors(art, MODELS[kind], kind)
    check_metadata(art, kind)
    assert all(t.span.in_memory == (way != "plain") for t in art.tensors)


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_pickle_dump(tmp_path: Path, kind: str, protocol: int) -> None:
    p = tmp_path / "model.pkl"
    p.write_bytes(pickle.dumps(MODELS[kind], protocol=protocol))
    art = read_path(str(p))
    assert art.format == "pickle"
    check_tensors(art, MODELS[kind], kind)
    check_metadata(art, kind)


def test_forest_lists_every_tree_with_its_params(tmp_path: Path) -> None:
    p = tmp_path / "rf.joblib"
    joblib.dump(MODELS["forest"], p)
    est = read_path(str(p)).metadata["sklearn"]["estimators"]
    trees = [e for e in est if e["path"].startswith("estimators_.")]
    assert [e["path"] for e in trees] == ["estimators_.0", "estimators_.1", "estimators_.2"]
    assert all(e["class"] == "sklearn.tree._classes.DecisionTreeClassifier" for e in trees)
    assert all(e["params"]["max_depth"] == 4 for e in trees)
    assert est[0]["params"]["estimator"] == "<sklearn.tree._classes.DecisionTreeClassifier>"


def test_pipeline_steps_are_listed(tmp_path: Path) -> None:
    p = tmp_path / "pipe.pkl"
    p.write_bytes(pickle.dumps(MODELS["pipeline"], protocol=4))
    est = {e["path"]: e for e in read_path(str(p)).metadata["sklearn"]["estimators"]}
    assert set(est) == {"", "steps.0.1", "steps.1.1"}
    assert est["steps.0.1"]["class"] == "sklearn.preprocessing._data.StandardScaler"
    assert est["steps.1.1"]["class"] == "sklearn.linear_model._ridge.Ridge"
    assert est["steps.1.1"]["params"]["alpha"] == 2.0


def test_tree_fields_are_strided_views_of_the_file(tmp_path: Path) -> None:
    p = tmp_path / "rf.joblib"
    joblib.dump(MODELS["forest"], p)
    art = read_path(str(p))
    raw = p.read_bytes()
    nodes = MODELS["forest"].estimators_[0].tree_.__getstate__()["nodes"]
    thr = art.tensor("estimators_.0.tree_.nodes.threshold")
    assert thr.strides == (nodes.dtype.itemsize // 8,)
    span = thr.span
    assert raw[span.offset:span.offset + span.length] == nodes.tobytes()
    coef = read_path(str(_dump(tmp_path, MODELS["logistic"]))).tensor("coef_")
    body = (tmp_path / "m.joblib").read_bytes()
    assert body[coef.span.offset:coef.span.offset + coef.nbytes] == MODELS["logistic"].coef_.tobytes()


def _dump(tmp_path: Path, obj: Any, **kw: Any) -> Path:
    p = tmp_path / "m.joblib"
    joblib.dump(obj, p, **kw)
    return p


def test_fortran_big_endian_and_object_arrays(tmp_path: Path) -> None:
    obj = {"f": np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)),
           "be": np.arange(5, dtype=">i4"), "obj": np.array(["a", 1], dtype=object),
           "scalar": np.array(3.5), "empty": np.zeros((0, 3))}
    art = read_path(str(_dump(tmp_path, obj)))
    got = {t.name: t for t in art.tensors}
    assert set(got) == {"f", "be", "scalar", "empty"}
    for name in got:
        ref = obj[name]
        assert got[name].shape == ref.shape
        assert np.array_equal(got[name].read(), ref)
        assert got[name].canonical_bytes() == le_bytes(ref)
    assert got["be"].byteorder == ">"
    assert any(o.kind == "symbolic.object" and "'obj'" in o.detail for o in art.observations)


def test_legacy_zf_file(tmp_path: Path) -> None:
    from joblib.numpy_pickle_compat import write_zfile

    p = tmp_path / "old.pkl"
    with open(p, "wb") as fh:
        write_zfile(fh, pickle.dumps({"w": np.arange(6.0)}, protocol=2))
    art = read_path(str(p))
    assert art.format == "joblib" and art.metadata["joblib"]["compression"] == "zf"
    assert art.tensor("w").canonical_bytes() == np.arange(6.0).tobytes()


def _wrapper_pickle(shape: tuple[int, ...], body: bytes, cls: str = "NumpyArrayWrapper") -> bytes:
    """A protocol 2 joblib pickle with one wrapper of float64 data, built opcode by opcode."""
    shape_ops = b"(" + b"".join(b"J" + struct.pack("<i", d) for d in shape) + b"t"
    return (b"\x80\x02cjoblib.numpy_pickle\n" + cls.encode() + b"\n)\x81}("
            + b"X\x05\x00\x00\x00shape" + shape_ops
            + b"X\x05\x00\x00\x00orderX\x01\x00\x00\x00C"
            + b"X\x05\x00\x00\x00dtypecnumpy\ndtype\nX\x02\x00\x00\x00f8\x89\x88\x87R"
            + b"(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
            + b"ub" + body + b".")


def test_handmade_wrapper_reads(tmp_path: Path) -> None:
    p = tmp_path / "w.joblib"
    p.write_bytes(_wrapper_pickle((2,), struct.pack("<2d", 1.5, -2.0)))
    art = read_path(str(p))
    assert art.format == "joblib"
    assert art.tensors[0].read().tolist() == [1.5, -2.0]


def test_wrapper_claiming_more_bytes_than_remain(tmp_path: Path) -> None:
    p = tmp_path / "w.joblib"
    p.write_bytes(_wrapper_pickle((1 << 20, 1 << 10), b"\x00" * 16))
    with pytest.raises(LimitError, match="joblib array data needs"):
        read_path(str(p))


def test_wrapper_with_negative_shape(tmp_path: Path) -> None:
    p = tmp_path / "w.joblib"
    p.write_bytes(_wrapper_pickle((-1,), b""))
    with pytest.raises(FormatError, match="not a non-negative integer"):
        read_path(str(p))


def test_old_side_file_wrapper_is_unsupported(tmp_path: Path) -> None:
    p = tmp_path / "w.joblib"
    p.write_bytes(_wrapper_pickle((2,), b"", cls="NDArrayWrapper"))
    with pytest.raises(UnsupportedError, match="side files"):
        read_path(str(p))


def test_truncated_joblib_array(tmp_path: Path) -> None:
    p = _dump(tmp_path, {"w": np.arange(1000.0)})
    p.write_bytes(p.read_bytes()[:-3000])
    with pytest.raises(FormatError):
        read_path(str(p))


@pytest.mark.parametrize("way", ["zlib", "gzip", "bz2", "xz"])
def test_truncated_compressed_stream(tmp_path: Path, way: str) -> None:
    p = _dump(tmp_path, {"w": np.random.RandomState(1).rand(5000)}, compress=JOBLIB_WAYS[way])
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(FormatError):
        read_path(str(p))


def test_corrupt_compressed_stream(tmp_path: Path) -> None:
    p = _dump(tmp_path, {"w": np.random.RandomState(1).rand(5000)}, compress=3)
    raw = bytearray(p.read_bytes())
    raw[200:260] = b"\xff" * 60
    p.write_bytes(bytes(raw))
    with pytest.raises(FormatError):
        read_path(str(p))


def test_ratio_bomb_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "bomb.joblib"
    p.write_bytes(lzma.compress(b"\x80\x04" + b"\x00" * (40 << 20), format=lzma.FORMAT_XZ))
    with pytest.raises(LimitError, match="compression bomb"):
        read_path(str(p))


def test_decompressed_size_limit(tmp_path: Path) -> None:
    p = tmp_path / "big.joblib"
    p.write_bytes(bz2.compress(pickle.dumps(np.random.RandomState(0).rand(300_000), protocol=4)))
    with pytest.raises(LimitError, match="inflates past the limit"):
        read_path(str(p), Limits(max_decompressed_bytes=1 << 20))


def test_hostile_compressed_pickle_is_recorded_not_run(tmp_path: Path, marker: Path) -> None:
    cmd = f"touch {marker}".encode()
    p = tmp_path / "evil.joblib"
    p.write_bytes(zlib.compress(b"\x80\x02cos\nsystem\nX" + struct.pack("<I", len(cmd)) + cmd + b"\x85R."))
    art = read_path(str(p))
    assert art.format == "joblib"
    assert not marker.exists()
    assert [o.detail for o in art.observations if o.kind == "pickle.import"] == ["os.system"]
    assert [o.detail for o in art.observations if o.kind == "pickle.call"] == ["os.system"]


def test_trailing_bytes_after_the_pickle(tmp_path: Path) -> None:
    p = _dump(tmp_path, {"w": np.arange(3.0)})
    p.write_bytes(p.read_bytes() + b"JUNK")
    art = read_path(str(p))
    trailing = [o for o in art.observations if o.kind == "trailing.bytes"]
    assert len(trailing) == 1 and trailing[0].data["length"] == 4


def test_first_array_past_the_sniffed_head_still_reads(tmp_path: Path) -> None:
    obj = {"notes": "x" * 10_000, "w": np.arange(7.0)}
    p = _dump(tmp_path, obj)
    assert b"joblib.numpy_pickle" not in p.read_bytes()[:4096]
    art = read_path(str(p))
    assert art.format == "pickle" and art.metadata["pickle"]["joblib_arrays"] == 1
    assert art.tensor("w").canonical_bytes() == obj["w"].tobytes()


def test_lz4(tmp_path: Path) -> None:
    from importlib.util import find_spec

    from assay.errors import MissingDependencyError

    if find_spec("lz4") is None:
        p = tmp_path / "m.joblib"
        p.write_bytes(b"\x04\x22\x4d\x18" + b"\x00" * 32)
        with pytest.raises(MissingDependencyError, match="lz4"):
            read_path(str(p))
        return
    p = _dump(tmp_path, {"w": np.arange(9.0)}, compress="lz4")
    art = read_path(str(p))
    assert art.metadata["joblib"]["compression"] == "lz4"
    assert art.tensor("w").canonical_bytes() == np.arange(9.0).tobytes()


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_joblib_and_pickle_give_the_same_tensors(tmp_path: Path, kind: str) -> None:
    a = _dump(tmp_path, MODELS[kind], compress=("gzip", 1))
    b = tmp_path / "m.pkl"
    b.write_bytes(pickle.dumps(MODELS[kind], protocol=5))
    ta = {t.name: t.canonical_bytes() for t in read_path(str(a)).tensors}
    tb = {t.name: t.canonical_bytes() for t in read_path(str(b)).tensors}
    assert ta == tb and ta
