"""ONNX classifiers run with onnxruntime (the audit extra), restricted to the standard operator
sets: a model using a custom operator domain, or external data, is refused rather than run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assay.errors import FormatError, UnsupportedError
from assay.runtime import require

if TYPE_CHECKING:
    import numpy as np

STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft"}   # the last: onnxruntime's own
MAX_MODEL_BYTES = 1 << 30


def _check(model: Any, path: str) -> None:
    domains = {o.domain for o in model.opset_import} | {n.domain for n in model.graph.node}
    custom = sorted(domains - STANDARD_DOMAINS)
    if custom:
        raise UnsupportedError(path, f"uses custom operator domain {custom[0]!r}; only standard "
                               "operators are run")
    for init in model.graph.initializer:
        if init.data_location == 1:   # EXTERNAL
            raise UnsupportedError(path, f"initializer {init.name!r} keeps its data in an external file")


def session(path: str) -> Any:
    """An onnxruntime session for a model that uses standard operators and no external data."""
    require("onnxruntime")
    import os

    import onnx
    import onnxruntime as ort
    if os.path.getsize(path) > MAX_MODEL_BYTES:
        raise FormatError(path, "ONNX model larger than 1 GiB")
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and kin
        raise FormatError(path, f"not a valid ONNX model ({type(exc).__name__})") from None
    _check(model, path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])


class OnnxClassifier:
    def __init__(self, path: str) -> None:
        self.session = session(path)
        self.path = path

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The first output as one label per row: integer labels as given, probabilities (or
        scores) of several classes by argmax, a single score by `> 0.5`."""
        import numpy as np

        inp = self.session.get_inputs()[0]
        dtype = np.float64 if "double" in inp.type else np.float32
        out = self.session.run(None, {inp.name: np.asarray(x, dtype=dtype)})[0]
        out = np.asarray(out)
        if out.ndim == 2 and out.shape[1] > 1:
            return out.argmax(axis=1)
        out = out.reshape(len(x))
        if out.dtype.kind == "f":
            return (out > 0.5).astype(np.int64)
        return out
