"""ONNX reader: real models built with onnx.helper and saved with onnx.save_model, checked bit for
bit against onnx.numpy_helper.to_array; the silero-vad models shipped with the silero_vad package;
hostile models (external data escaping the folder, lying sizes, truncation)."""

from __future__ import annotations

import importlib.util
import os
import pickle
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import AttributeProto, TensorProto, helper, numpy_helper  # noqa: E402

from assay.errors import FormatError, LimitError, UnsupportedError  # noqa: E402
from assay.formats import detect, read_path  # noqa: E402
from assay.formats.base import Probe  # noqa: E402
from assay.formats.onnx_format import READERS, sniff  # noqa: E402
from assay.limits import DEFAULT_LIMITS, Limits  # noqa: E402
from assay.model.artifact import ModelArtifact  # noqa: E402

READ = READERS[0].read
Entry = tuple[str, str, tuple[int, ...], bytes]


# ------------------------------------------------------------------ the oracle: onnx walks itself

def _oracle(model: Any, base_dir: str = "") -> list[Entry]:
    """Every initializer, sparse initializer and Constant value, converted by onnx itself."""
    out: list[Entry] = []

    def add(name: str, arr: np.ndarray) -> None:
        out.append((name, arr.dtype.name, tuple(arr.shape), arr.tobytes()))

    def sparse(name: str, s: Any) -> None:
        add(name + ".values", numpy_helper.to_array(s.values, base_dir))
        add(name + ".indices", numpy_helper.to_array(s.indices, base_dir))

    def constant(n: Any) -> None:
        a = n.attribute[0]
        v = helper.get_attribute_value(a)
        if a.name == "value":
            add(n.output[0], numpy_helper.to_array(v))
        elif a.name == "sparse_value":
            sparse(n.output[0], v)
        elif a.name in ("value_float", "value_floats"):
            add(n.output[0], np.array(v, dtype=np.float32))
        elif a.name in ("value_int", "value_ints"):
            add(n.output[0], np.array(v, dtype=np.int64))

    def nodes(ns: Any) -> None:
        for n in ns:
            if n.op_type == "Constant" and not n.attribute[0].ref_attr_name:
                constant(n)
            for a in n.attribute:
                if a.type == AttributeProto.GRAPH:
                    graph(a.g)
                elif a.type == AttributeProto.GRAPHS:
                    for g in a.graphs:
                        graph(g)

    def graph(g: Any) -> None:
        for t in g.initializer:
            if t.data_type != TensorProto.STRING:
                add(t.name, numpy_helper.to_array(t, base_dir))
        for s in g.sparse_initializer:
            sparse(s.values.name, s)
        nodes(g.node)

    graph(model.graph)
    for f in model.functions:
        nodes(f.node)
    return sorted(out)


def _assay(art: ModelArtifact) -> list[Entry]:
    out = []
    for rec in art.tensors:
        name = rec.attrs["onnx_name"] + (f".{rec.attrs['sparse']}" if "sparse" in rec.attrs else "")
        out.append((name, rec.dtype.name, rec.shape, np.asarray(rec.read()).tobytes()))
    return sorted(out)


def _same(rec: Any, arr: np.ndarray) -> None:
    got = np.asarray(rec.read())
    assert rec.dtype.name == arr.dtype.name
    assert rec.shape == arr.shape
    assert got.tobytes() == arr.tobytes()


def _save(model: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path


def _model(nodes: list[Any], inits: list[Any], **kw: Any) -> Any:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    g = helper.make_graph(nodes, "g", [x], [y], initializer=inits,
                          sparse_initializer=kw.pop("sparse", None))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], **kw)


def _read(path: Path, limits: Limits = DEFAULT_LIMITS) -> ModelArtifact:
    return READ(Probe.of(str(path), limits))


# ------------------------------------------------------------------------- dtypes, initializers

def _dtype_inits(rng: np.random.Generator) -> list[Any]:
    import ml_dtypes

    bf16 = rng.standard_normal((3, 5)).astype(ml_dtypes.bfloat16)
    f8 = rng.standard_normal(6).astype(ml_dtypes.float8_e4m3fn)
    return [
        numpy_helper.from_array(rng.standard_normal((4, 4)).astype(np.float32), "w_f32"),
        numpy_helper.from_array(rng.standard_normal((2, 3)).astype(np.float16), "w_f16"),
        numpy_helper.from_array(rng.integers(-2**40, 2**40, (7,)).astype(np.int64), "w_i64"),
        numpy_helper.from_array(bf16, "w_bf16"),                      # raw_data
        helper.make_tensor("w_bf16_typed", TensorProto.BFLOAT16, [3, 5], bf16.view(np.uint16).tolist()),
        helper.make_tensor("w_f16_typed", TensorProto.FLOAT16, [2], np.array([1.5, -2], np.float16)),
        helper.make_tensor("w_f32_typed", TensorProto.FLOAT, [2, 2], [0.1, 0.2, -0.3, 1e30]),
        helper.make_tensor("w_i8_typed", TensorProto.INT8, [3], [-128, 0, 127]),
        helper.make_tensor("w_u64_typed", TensorProto.UINT64, [2], [0, 2**64 - 1]),
        helper.make_tensor("w_bool", TensorProto.BOOL, [3], [True, False, True]),
        helper.make_tensor("w_c64", TensorProto.COMPLEX64, [2], [1 + 2j, -3.5j]),
        # every typed value field, at the edges of its range (converted by assay, not by onnx)
        helper.make_tensor("w_u32_typed", TensorProto.UINT32, [2], [0, 2**32 - 1]),
        helper.make_tensor("w_i16_typed", TensorProto.INT16, [2], [-32768, 32767]),
        helper.make_tensor("w_u16_typed", TensorProto.UINT16, [2], [0, 65535]),
        helper.make_tensor("w_u8_typed", TensorProto.UINT8, [2], [0, 255]),
        helper.make_tensor("w_i32_typed", TensorProto.INT32, [3], [-2**31, -1, 2**31 - 1]),
        helper.make_tensor("w_i64_typed", TensorProto.INT64, [2], [-2**63, 2**63 - 1]),
        helper.make_tensor("w_f64_typed", TensorProto.DOUBLE, [2], [0.1, -1e300]),
        helper.make_tensor("w_c128", TensorProto.COMPLEX128, [1], [1.5 - 2j]),
        helper.make_tensor("w_f8_typed", TensorProto.FLOAT8E5M2, [2],
                           np.array([1.5, -0.25], ml_dtypes.float8_e5m2).view(np.uint8).tolist()),
        numpy_helper.from_array(f8, "w_f8"),
        numpy_helper.from_array(np.float64(2.5), "w_scalar"),
        numpy_helper.from_array(np.zeros((0, 3), np.float32), "w_empty"),
    ]


def test_initializers_bit_identical_to_onnx(tmp_path: Path) -> None:
    inits = _dtype_inits(np.random.default_rng(0))
    path = _save(_model([helper.make_node("Identity", ["x"], ["y"])], inits), tmp_path / "m.onnx")
    art = read_path(str(path))
    assert art.format == "onnx"
    assert [r.name for r in art.tensors] == [t.name for t in inits]
    for t in inits:
        _same(art.tensor(t.name), numpy_helper.to_array(t))
    assert art.tensor("w_bf16").dtype.name == "bfloat16"
    assert art.tensor("w_bf16_typed").dtype.name == "bfloat16"
    assert art.tensor("w_f8").dtype.name == "float8_e4m3fn"
    assert art.tensor("w_scalar").shape == ()
    assert _assay(art) == _oracle(onnx.load(str(path)))


def test_detected_by_content_not_name(tmp_path: Path) -> None:
    inits = [numpy_helper.from_array(np.arange(4, dtype=np.float32), "w")]
    path = _save(_model([helper.make_node("Identity", ["x"], ["y"])], inits), tmp_path / "weights.bin")
    reader, _ = detect(str(path))
    assert reader.name == "onnx"


# --------------------------------------------------------------- Constant nodes and subgraphs

def _branch(name: str, value: np.ndarray) -> Any:
    c = helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(value, "ignored"))
    out = helper.make_tensor_value_info("c", TensorProto.FLOAT, None)
    return helper.make_graph([c], name, [], [out])


def _if_node(name: str, then: Any, other: Any) -> Any:
    node = helper.make_node("If", ["cond"], [f"{name}_out"], name=name)
    node.attribute.extend([helper.make_attribute("then_branch", then),
                           helper.make_attribute("else_branch", other)])
    return node


def _loop_body() -> Any:
    k = helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(
        np.arange(6, dtype=np.float32).reshape(2, 3), "k"))
    add = helper.make_node("Add", ["acc", "k"], ["acc_out"])
    keep = helper.make_node("Identity", ["cond_in"], ["cond_out"])
    ins = [helper.make_tensor_value_info("i", TensorProto.INT64, []),
           helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
           helper.make_tensor_value_info("acc", TensorProto.FLOAT, [2, 3])]
    outs = [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [2, 3])]
    init = numpy_helper.from_array(np.full((2,), 7, np.int32), "body_init")
    return helper.make_graph([k, add, keep], "body", ins, outs, initializer=[init])


def _control_flow_model() -> Any:
    nodes = [
        helper.make_node("Constant", [], ["cond"], value=numpy_helper.from_array(np.array(True))),
        helper.make_node("Constant", [], ["cf"], value_float=0.25),
        helper.make_node("Constant", [], ["cfs"], value_floats=[1.0, -2.5]),
        helper.make_node("Constant", [], ["ci"], value_int=-3),
        helper.make_node("Constant", [], ["cis"], value_ints=[4, 5, 2**40]),
        _if_node("if0", _branch("then", np.ones(3, np.float32)), _branch("else", np.zeros(2, np.float32))),
        helper.make_node("Loop", ["", "cond", "acc0"], ["acc_final"], name="loop0", body=_loop_body()),
        helper.make_node("Custom", [], ["z"], domain="my.domain", name="multi",
                         bodies=[_branch("b0", np.full(1, 3, np.float32)),
                                 _branch("b1", np.full(1, 4, np.float32))]),
        helper.make_node("Identity", ["x"], ["y"]),
    ]
    inits = [numpy_helper.from_array(np.zeros((2, 3), np.float32), "acc0")]
    model = _model(nodes, inits, producer_name="assay-test", producer_version="1.2")
    model.opset_import.append(helper.make_opsetid("my.domain", 1))
    helper.set_model_props(model, {"author": "someone", "license": "MIT"})
    return model


def test_constants_and_subgraphs(tmp_path: Path) -> None:
    model = _control_flow_model()
    path = _save(model, tmp_path / "cf.onnx")
    art = read_path(str(path))
    assert _assay(art) == _oracle(onnx.load(str(path)))
    names = [r.name for r in art.tensors]
    # main graph first, plain names; the first subgraph keeps "c", later ones get their path
    assert names == ["acc0", "cond", "cf", "cfs", "ci", "cis", "c", "if0.else_branch::c",
                     "body_init", "k", "multi.bodies[0]::c", "multi.bodies[1]::c"]
    assert art.tensor("cf").shape == () and art.tensor("ci").dtype.name == "int64"
    assert art.tensor("cis").read().tolist() == [4, 5, 2**40]
    assert art.tensor("if0.else_branch::c").attrs == {
        "onnx_name": "c", "graph": "if0.else_branch", "source": "constant"}
    assert art.tensor("body_init").attrs["graph"] == "loop0.body"
    assert art.tensor("body_init").attrs["source"] == "initializer"
    assert np.asarray(art.tensor("multi.bodies[1]::c").read()).tolist() == [4.0]


def test_metadata_summary(tmp_path: Path) -> None:
    model = _control_flow_model()
    path = _save(model, tmp_path / "cf.onnx")
    meta = read_path(str(path)).metadata["onnx"]
    assert meta["ir_version"] == model.ir_version
    assert meta["producer_name"] == "assay-test" and meta["producer_version"] == "1.2"
    assert meta["opset_import"] == [{"domain": "", "version": 17}, {"domain": "my.domain", "version": 1}]
    assert meta["metadata_props"] == {"author": "someone", "license": "MIT"}
    g = meta["graph"]
    ops: Counter[str] = Counter()

    def walk(graph: Any) -> int:
        subs = 0
        for n in graph.node:
            ops[f"{n.domain}:{n.op_type}" if n.domain else n.op_type] += 1
            for a in n.attribute:
                for sub in ([a.g] if a.type == AttributeProto.GRAPH else list(a.graphs)):
                    subs += 1 + walk(sub)
        return subs

    assert g["subgraphs"] == walk(model.graph) == 5
    assert g["op_types"] == dict(sorted(ops.items()))
    assert g["nodes"] == len(model.graph.node)
    assert g["nodes_total"] == sum(ops.values())
    assert g["constants"] == ops["Constant"]
    assert g["initializers"] == 1 and g["initializers_total"] == 2
    assert g["inputs"] == [{"name": "x", "type": "float32", "shape": ["batch", 4]}]
    assert g["outputs"] == [{"name": "y", "type": "float32", "shape": ["batch", 4]}]


def test_sparse_initializer_and_sparse_constant(tmp_path: Path) -> None:
    values = numpy_helper.from_array(np.array([1.5, -2.0, 3.25], np.float32), "sp")
    indices = numpy_helper.from_array(np.array([1, 4, 10], np.int64), "sp_idx")
    sp = helper.make_sparse_tensor(values, indices, [3, 4])
    v2 = numpy_helper.from_array(np.array([7, 8], np.int32), "ignored")
    i2 = numpy_helper.from_array(np.array([[0, 1], [2, 0]], np.int64), "ignored_idx")
    const = helper.make_node("Constant", [], ["csp"], sparse_value=helper.make_sparse_tensor(v2, i2, [3, 2]))
    path = _save(_model([const, helper.make_node("Identity", ["x"], ["y"])], [], sparse=[sp]),
                 tmp_path / "sp.onnx")
    art = read_path(str(path))
    assert _assay(art) == _oracle(onnx.load(str(path)))
    _same(art.tensor("sp.values"), numpy_helper.to_array(values))
    _same(art.tensor("sp.indices"), numpy_helper.to_array(indices))
    assert art.tensor("sp.values").attrs["dense_shape"] == [3, 4]
    assert art.tensor("csp.indices").shape == (2, 2)
    assert art.tensor("csp.values").attrs["source"] == "constant"
    assert art.metadata["onnx"]["graph"]["sparse_initializers"] == 1


def test_functions_training_info_and_skipped(tmp_path: Path) -> None:
    fconst = helper.make_node("Constant", [], ["fk"], value_floats=[9.0, 8.0])
    fref = helper.make_node("Constant", [], ["fr"])
    fref.attribute.append(helper.make_attribute_ref("value", AttributeProto.TENSOR))
    fadd = helper.make_node("Add", ["a", "fk"], ["b"])
    func = helper.make_function("custom", "F", ["a"], ["b"], [fconst, fref, fadd],
                                [helper.make_opsetid("", 17)], attributes=["value"])
    strings = helper.make_tensor("labels", TensorProto.STRING, [2], [b"cat", b"dog"])
    model = _model([helper.make_node("Identity", ["x"], ["y"])],
                   [strings, numpy_helper.from_array(np.ones(2, np.float32), "w")],
                   functions=[func])
    init_graph = helper.make_graph([], "init", [], [], initializer=[
        numpy_helper.from_array(np.arange(3, dtype=np.int16), "w")])
    model.training_info.append(onnx.TrainingInfoProto(initialization=init_graph))
    path = _save(model, tmp_path / "fn.onnx")
    art = read_path(str(path))
    meta = art.metadata["onnx"]
    assert [r.name for r in art.tensors] == ["w", "fk", "training_info[0].initialization::w"]
    assert art.tensor("fk").attrs["graph"] == "function:custom:F"
    _same(art.tensor("training_info[0].initialization::w"), np.arange(3, dtype=np.int16))
    assert meta["functions"] == ["custom:F"] and meta["training_info"] == 1
    assert [s["name"] for s in meta["skipped_tensors"]] == ["labels", "fr"]
    assert meta["graph"]["nodes_total"] == 1      # functions are not part of the graph summary


# -------------------------------------------------------------------------------- external data

def _external_model(rng: np.random.Generator) -> Any:
    import ml_dtypes

    inits = [
        numpy_helper.from_array(rng.standard_normal((64, 32)).astype(np.float32), "big"),
        numpy_helper.from_array(rng.standard_normal(5).astype(np.float16), "half"),
        numpy_helper.from_array(rng.standard_normal((3, 3)).astype(ml_dtypes.bfloat16), "bf"),
        numpy_helper.from_array(np.arange(9, dtype=np.int64), "idx"),
    ]
    eye = numpy_helper.from_array(np.eye(2, dtype=np.float32))
    const = helper.make_node("Constant", [], ["k"], value=eye)
    return _model([const, helper.make_node("Identity", ["x"], ["y"])], inits)


def test_external_data_memory_mapped(tmp_path: Path) -> None:
    path = tmp_path / "m" / "model.onnx"
    path.parent.mkdir()
    onnx.save_model(_external_model(np.random.default_rng(1)), str(path), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="w.bin", size_threshold=0)
    art = read_path(str(path))
    oracle = onnx.load(str(path), load_external_data=True)
    assert _assay(art) == _oracle(oracle)
    weights = str(tmp_path / "m" / "w.bin")
    for name in ("big", "half", "bf", "idx"):
        span = art.tensor(name).span
        assert span is not None and span.file == os.path.realpath(weights) and not span.in_memory
    # a tensor whose raw_data is in the model file itself is a range of that file, not a copy
    k = art.tensor("k").span
    assert k is not None and k.file == str(path) and not k.in_memory
    assert path.read_bytes()[k.offset:k.offset + k.length] == numpy_helper.to_array(
        next(a.t for n in oracle.graph.node if n.op_type == "Constant" for a in n.attribute)).tobytes()
    obs = [o for o in art.observations if o.kind == "external.data"]
    assert sorted(o.data["tensor"] for o in obs) == ["bf", "big", "half", "idx"]
    assert {o.detail for o in obs} == {"w.bin"}
    assert os.path.realpath(weights) in art.files


def _write_external(folder: Path, entries: dict[str, str], n: int = 4) -> Path:
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[n])
    t.data_location = TensorProto.EXTERNAL
    for k, v in entries.items():
        e = t.external_data.add()
        e.key, e.value = k, v
    return _save(_model([helper.make_node("Identity", ["x"], ["y"])], [t]), folder / "model.onnx")


def test_external_data_inside_folder_via_subfolder_and_symlink(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    (folder / "sub").mkdir(parents=True)
    data = np.arange(8, dtype=np.float32)
    (folder / "sub" / "d.bin").write_bytes(data.tobytes())
    os.symlink("sub/d.bin", folder / "link.bin")
    art = read_path(str(_write_external(folder, {"location": "link.bin", "offset": "16", "length": "16"})))
    _same(art.tensor("w"), data[4:])
    _write_external(folder, {"location": "sub/d.bin"})
    _same(read_path(str(folder / "model.onnx")).tensor("w"), data[:4])


@pytest.mark.parametrize(("entries", "rule"), [
    ({"location": "../secret"}, "escapes the model's folder"),
    ({"location": "sub/../../secret"}, "escapes the model's folder"),
    ({"location": "ABS"}, "absolute path"),
    ({"location": "outside.bin"}, "symlink leaving"),
    ({"location": "missing.bin"}, "does not exist"),
    ({"location": "w.bin", "offset": "100"}, "run past the end"),
    ({"location": "w.bin", "offset": "8"}, "run past the end"),
    ({"location": "w.bin", "length": "12"}, "length 12 but float32"),
    ({"location": "w.bin", "offset": "-4"}, "not a non-negative integer"),
    ({"offset": "0"}, "location is empty"),
])
def test_external_data_rejected(tmp_path: Path, entries: dict[str, str], rule: str) -> None:
    (tmp_path / "secret").write_bytes(b"s" * 64)
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "w.bin").write_bytes(bytes(16))
    os.symlink(tmp_path / "secret", folder / "outside.bin")
    entries = {k: (str(tmp_path / "secret") if v == "ABS" else v) for k, v in entries.items()}
    with pytest.raises(FormatError, match=rule):
        read_path(str(_write_external(folder, entries)))


# --------------------------------------------------------------------------- silero-vad models

def _silero_models() -> list[Path]:
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or spec.origin is None:
        return []
    return sorted((Path(spec.origin).parent / "data").glob("*.onnx"))


@pytest.mark.skipif(not _silero_models(), reason="silero_vad package not installed")
@pytest.mark.parametrize("path", _silero_models(), ids=lambda p: p.name)
def test_silero_vad_models(path: Path) -> None:
    art = read_path(str(path))
    model = onnx.load(str(path), load_external_data=False)
    assert art.format == "onnx"
    assert _assay(art) == _oracle(model)
    assert len({r.name for r in art.tensors}) == len(art.tensors)
    meta = art.metadata["onnx"]
    assert meta["ir_version"] == model.ir_version
    assert meta["producer_name"] == model.producer_name
    assert meta["opset_import"] == [{"domain": o.domain, "version": o.version} for o in model.opset_import]
    assert meta["graph"]["nodes"] == len(model.graph.node)
    assert sniff(Probe.of(str(path), DEFAULT_LIMITS))


# ------------------------------------------------------------------------------------- sniffing

def _other_formats(tmp_path: Path) -> dict[str, bytes]:
    from safetensors.numpy import save_file

    save_file({"w": np.ones((2, 2), np.float32)}, str(tmp_path / "st"))
    np.save(tmp_path / "a.npy", np.arange(10))
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"a": 1}))
    out = {
        "safetensors": (tmp_path / "st").read_bytes(),
        "npy": (tmp_path / "a.npy").read_bytes(),
        "zip": (tmp_path / "z.zip").read_bytes(),
        "pickle": pickle.dumps({"w": list(range(50))}, protocol=2),
        "pickle5": pickle.dumps({"w": list(range(50))}, protocol=5),
        "text": b"# README\nsome text about a model\n",
        "json": b'{"architectures": ["Bert"]}',
        "hdf5": b"\x89HDF\r\n\x1a\n" + bytes(100),
        "gguf": b"GGUF\x03\x00\x00\x00" + bytes(24),
        "saved_model_like": b"\x08\x01\x12\x90\x4e\x0a\x8a\x4e\x0a\x05serve" + bytes(200),
        "ir_version_0": b"\x08\x00\x12\x04spox:\x00",
        "ir_version_99": b"\x08\x63\x12\x04spox:\x00",
        "only_ir_version": b"\x08\x08",
        "bad_second_field": b"\x08\x08\x7a\x01",
        "wrong_wire_type": b"\x08\x08\x10\x04spox",
        "producer_not_utf8": b"\x08\x08\x12\x02\xff\xfe:\x00",
        "graph_bad_first_key": b"\x08\x08:\x04\x08\x01\x10\x02",
    }
    try:
        from gguf import GGUFWriter
        w = GGUFWriter(str(tmp_path / "g.gguf"), "llama")
        w.add_tensor("t", np.ones(4, np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        out["gguf_real"] = (tmp_path / "g.gguf").read_bytes()
    except ImportError:
        pass
    return out


def test_sniff_rejects_other_formats(tmp_path: Path) -> None:
    for name, data in _other_formats(tmp_path).items():
        probe = Probe(str(tmp_path / name), data[:4096], len(data))
        assert not sniff(probe), name


def test_sniff_accepts_generated_models(tmp_path: Path) -> None:
    for model in (_control_flow_model(), _external_model(np.random.default_rng(2))):
        data = model.SerializeToString()
        assert sniff(Probe("m", data[:4096], len(data)))
    minimal = helper.make_model(helper.make_graph([], "g", [], []))
    assert sniff(Probe("m", minimal.SerializeToString(), minimal.ByteSize()))


# ------------------------------------------------------------------------------------ bad input

def _one_init_model(t: Any, tmp_path: Path) -> Path:
    return _save(_model([helper.make_node("Identity", ["x"], ["y"])], [t]), tmp_path / "bad.onnx")


def test_truncated_file(tmp_path: Path) -> None:
    data = _control_flow_model().SerializeToString()
    for cut in (3, 40, len(data) // 2, len(data) - 1):
        path = tmp_path / f"cut{cut}.onnx"
        path.write_bytes(data[:cut])
        with pytest.raises(FormatError, match="truncated or corrupt"):
            read_path(str(path))


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_after_valid_first_field(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    path = tmp_path / "r.onnx"
    path.write_bytes(b"\x08\x08" + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(FormatError, match="onnx: "):
        _read(path)
    # the same behind a valid header and a graph of 8000 bytes: the sniff accepts, the parse fails
    noise = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    path.write_bytes(b"\x08\x08\x12\x04spox:\xc0\x3e\x0a" + noise)
    assert detect(str(path))[0].name == "onnx"
    with pytest.raises(FormatError, match="truncated or corrupt"):
        read_path(str(path))


def test_model_without_graph(tmp_path: Path) -> None:
    path = tmp_path / "ng.onnx"
    path.write_bytes(onnx.ModelProto(ir_version=8, producer_name="x").SerializeToString())
    with pytest.raises(FormatError, match="no graph"):
        read_path(str(path))


def test_raw_data_length_lies(tmp_path: Path) -> None:
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[10], raw_data=bytes(8))
    with pytest.raises(FormatError, match="raw_data holds 8 bytes but float32\\[10\\] needs 40"):
        read_path(str(_one_init_model(t, tmp_path)))


def test_typed_values_count_lies(tmp_path: Path) -> None:
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[10], float_data=[1.0, 2.0, 3.0])
    with pytest.raises(FormatError, match="float_data holds 3 values but float32\\[10\\] needs 10"):
        read_path(str(_one_init_model(t, tmp_path)))


def test_hostile_dims(tmp_path: Path) -> None:
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2**40, 2**40], raw_data=b"")
    with pytest.raises(LimitError, match="too many elements"):
        read_path(str(_one_init_model(t, tmp_path)))
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1] * 40, raw_data=bytes(4))
    with pytest.raises(FormatError, match="at most 16 sizes"):
        read_path(str(_one_init_model(t, tmp_path)))
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[-1], raw_data=bytes(4))
    with pytest.raises(FormatError, match="not a non-negative integer"):
        read_path(str(_one_init_model(t, tmp_path)))


def test_unknown_and_packed_types(tmp_path: Path) -> None:
    t = TensorProto(name="w", data_type=TensorProto.INT4, dims=[2], raw_data=b"\x21")
    with pytest.raises(UnsupportedError, match="packed type INT4"):
        read_path(str(_one_init_model(t, tmp_path)))
    t = TensorProto(name="w", data_type=99, dims=[1], raw_data=b"\x00")
    with pytest.raises(FormatError, match="unknown data_type 99"):
        read_path(str(_one_init_model(t, tmp_path)))


def test_constant_with_two_values(tmp_path: Path) -> None:
    node = helper.make_node("Constant", [], ["c"], value_float=1.0, value_int=2)
    path = _save(_model([node, helper.make_node("Identity", ["x"], ["y"])], []), tmp_path / "c.onnx")
    with pytest.raises(FormatError, match="exactly one value attribute \\(has 2\\)"):
        read_path(str(path))


def test_bad_sparse_indices(tmp_path: Path) -> None:
    values = numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "sp")
    indices = numpy_helper.from_array(np.array([1, 2, 3], np.int64), "sp_idx")
    model = _model([helper.make_node("Identity", ["x"], ["y"])], [],
                   sparse=[helper.make_sparse_tensor(values, indices, [4])])
    with pytest.raises(FormatError, match="indices shape \\[3\\] fits neither"):
        read_path(str(_save(model, tmp_path / "sp.onnx")))


def test_limits(tmp_path: Path) -> None:
    path = _save(_control_flow_model(), tmp_path / "cf.onnx")
    with pytest.raises(LimitError, match="more than 3 tensors"):
        _read(path, Limits(max_tensors=3))
    inner = helper.make_graph([_if_node("inner", _branch("t", np.ones(1, np.float32)),
                                        _branch("e", np.ones(1, np.float32)))], "mid", [], [])
    nested = _model([_if_node("outer", inner, inner), helper.make_node("Identity", ["x"], ["y"])], [])
    path = _save(nested, tmp_path / "nested.onnx")
    assert len(_read(path).tensors) == 4
    with pytest.raises(LimitError, match="nested deeper than 1 levels"):
        _read(path, Limits(max_json_depth=1))


def test_wire_rules_as_protobuf_parses_them(tmp_path: Path) -> None:
    """A message given twice is merged, the last scalar wins, unknown fields (a group too) are
    skipped: what protobuf's own parser does with the same bytes, assay does."""
    rng = np.random.default_rng(3)
    a = _model([helper.make_node("Identity", ["x"], ["y"])],
               [numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "a")])
    g = onnx.GraphProto()
    g.initializer.append(numpy_helper.from_array(np.arange(4, dtype=np.int64), "b"))
    unknown_group = b"\xfb\x06" + b"\x08\x01" + b"\xfc\x06"     # field 111: start group, a varint, end
    graph = g.SerializeToString() + unknown_group
    b = onnx.ModelProto(ir_version=9, producer_name="second").SerializeToString()
    data = a.SerializeToString() + b + b"\x3a" + bytes([len(graph)]) + graph    # field 7: a second graph
    path = tmp_path / "merged.onnx"
    path.write_bytes(data)
    oracle = onnx.ModelProto()
    oracle.ParseFromString(data)
    assert [t.name for t in oracle.graph.initializer] == ["a", "b"]
    art = read_path(str(path))
    assert _assay(art) == _oracle(oracle)
    meta = art.metadata["onnx"]
    assert meta["ir_version"] == 9 and meta["producer_name"] == "second"
    assert not [o for o in art.observations if o.kind == "trailing.bytes"]


@pytest.mark.parametrize("bad", [b"\x3a\x05\x0a\x01", b"\x3a\x0b" + b"\x80" * 11,
                                 b"\x3a\x04\x0a\x00\x0f\x00"])
def test_malformed_wire_inside_the_graph(tmp_path: Path, bad: bytes) -> None:
    """Truncated nested field, an 11-byte varint, an invalid wire type (7) inside the graph."""
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x08\x08" + bad)
    with pytest.raises(FormatError, match="onnx: "):
        read_path(str(path))
