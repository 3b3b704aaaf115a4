"""ONNX classifiers run with onnxruntime (the audit extra), restricted to the standard operator
sets: a model using a custom operator domain, or external data, is refused rather than run."""

from __future__ import annotations

import math
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


class OnnxFeatures:
    """Features for `adapt` and `predict`: one named output of an ONNX model with one input,
    flattened to a row per example. The input is an image (batch, channels, side, side: each
    example is pixel values or an image file, as for the CNN bases) or a vector (batch, n: each
    example is n space-separated numbers); all but the batch dimension must be fixed."""

    def __init__(self, path: str, output: str | None) -> None:
        from assay.errors import UsageError
        self.session = session(path)
        self.path, self.name = path, path
        outs = [o.name for o in self.session.get_outputs()]
        if not output or output not in outs:
            what = f"no output {output!r}" if output else "name the output that gives the features"
            raise UsageError(path, f"{what} (--onnx-output; the model's outputs: {', '.join(outs)})")
        self.output = output
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise UnsupportedError(path, f"features come from models with one input; this one has "
                                         f"{len(inputs)}")
        inp = inputs[0]
        self.input = inp.name
        dims = list(inp.shape[1:])
        if not all(isinstance(d, int) and d > 0 for d in dims) or len(dims) not in (1, 3) or \
                (len(dims) == 3 and dims[1] != dims[2]):
            raise UnsupportedError(path, f"input {inp.name!r} has shape {inp.shape}: features are taken "
                                         "from a fixed (batch, n) vector or (batch, channels, side, side) "
                                         "image input")
        self.dims = tuple(int(d) for d in dims)
        self.channels, self.side = (self.dims[0], self.dims[1]) if len(dims) == 3 else (0, 0)
        self.batch = inp.shape[0] if isinstance(inp.shape[0], int) else 0     # 0: any
        self.dtype = "float64" if "double" in inp.type else "float32"
        self.dim = int(self.encode(["0 " * math.prod(self.dims)]).shape[1])

    def check(self, ex: Any) -> None:
        from assay.adapt.data import DataError, check_images, is_pixels
        if self.side:
            check_images(ex, self.channels, self.side)
            return
        for i, t in enumerate(ex.texts):
            if not is_pixels(t) or len(t.split()) != self.dims[0]:
                raise DataError(ex.path, f"example {i + 1}: the model's input takes {self.dims[0]} "
                                         "space-separated numbers")

    def _inputs(self, texts: Any) -> np.ndarray:
        import os

        import numpy as np

        from assay.adapt.data import load_image
        out = np.zeros((len(texts), *self.dims), dtype=self.dtype)
        for i, t in enumerate(texts):
            if self.side and os.path.isabs(t):
                out[i] = load_image(t, self.channels, self.side)
            else:
                out[i] = np.array([float(v) for v in t.split()], dtype=self.dtype).reshape(self.dims)
        return out

    def encode(self, texts: Any, batch_size: int = 64) -> np.ndarray:
        import numpy as np
        x = self._inputs(texts)
        step = self.batch or batch_size
        rows = [np.asarray(self.session.run([self.output], {self.input: x[i:i + step]})[0], dtype=np.float32)
                for i in range(0, len(x), step)]
        if not rows:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        return np.concatenate([r.reshape(len(r), -1) for r in rows]).astype(np.float32)
