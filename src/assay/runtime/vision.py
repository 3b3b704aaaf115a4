"""Small convolutional image networks built in code from their tensors, as feature extractors.

One architecture so far, recognised by tensor names and shapes (the `nn.Sequential` of the
digits recipes): `0` Conv2d(c_in, w, k, padding k//2), ReLU, `2` Conv2d(w, w2, k, padding k//2),
ReLU, MaxPool2d(2), Flatten, `6` Linear(w2 * (s/2)^2, classes). The features are the flattened
pooled activations (the classifier's input); the image side `s` follows from the shapes. An image
is given as space-separated pixel values (row-major, square, scaled as the base expects) or as
an absolute path of an image file (`adapt.data.load_image`: grey or RGB as the network takes,
resized to `s` x `s`, values in [0, 1]).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from assay.adapt.data import Examples, check_images, load_image
from assay.errors import FormatError, UnsupportedError
from assay.model.artifact import ModelArtifact
from assay.runtime import require

if TYPE_CHECKING:
    import numpy as np

CONV1, CONV2, LINEAR = "0", "2", "6"


def shapes(art: ModelArtifact) -> tuple[int, int, int, int, int]:
    """(channels in, conv1 width, conv2 width, kernel, image side) of a recognised network."""
    by = {t.name: tuple(t.shape) for t in art.tensors}
    want = [f"{m}.{p}" for m in (CONV1, CONV2, LINEAR) for p in ("weight", "bias")]
    if set(by) != set(want):
        raise UnsupportedError(art.path, "not a network assay builds in code: expected exactly the tensors "
                                         f"{', '.join(want)} (conv, conv, linear)")
    c1 = by[f"{CONV1}.weight"]
    c2 = by[f"{CONV2}.weight"]
    lin = by[f"{LINEAR}.weight"]
    if len(c1) != 4 or len(c2) != 4 or len(lin) != 2 or c2[1] != c1[0] or c1[2] != c1[3] or \
            c2[2:] != c1[2:] or c1[2] % 2 == 0:
        raise FormatError(art.path, f"convolution shapes {c1} and {c2} do not chain")
    cells = lin[1] // c2[0]
    half = math.isqrt(cells)
    if cells * c2[0] != lin[1] or half * half != cells:
        raise FormatError(art.path, f"linear input {lin[1]} is not {c2[0]} channels of a square map")
    return c1[1], c1[0], c2[0], c1[2], 2 * half


class ImageEncoder:
    """The convolutional part of the network: images (as pixel strings) to feature rows."""

    def __init__(self, art: ModelArtifact) -> None:
        require("torch")
        import numpy as np
        import torch
        from torch import nn

        c_in, w1, w2, k, side = shapes(art)
        self.side, self.channels, self.name = side, c_in, art.path
        self.model = nn.Sequential(nn.Conv2d(c_in, w1, k, padding=k // 2), nn.ReLU(),
                                   nn.Conv2d(w1, w2, k, padding=k // 2), nn.ReLU(), nn.MaxPool2d(2),
                                   nn.Flatten())
        state = {t.name: torch.from_numpy(np.array(t.read(), dtype=np.float32)) for t in art.tensors
                 if t.name.split(".")[0] in (CONV1, CONV2)}
        self.model.load_state_dict(state)
        self.model.train(False)
        self.dim = w2 * (side // 2) ** 2

    def pixels(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np
        n = self.channels * self.side * self.side
        out = np.zeros((len(texts), self.channels, self.side, self.side), dtype=np.float32)
        for i, t in enumerate(texts):
            if os.path.isabs(t):
                out[i] = load_image(t, self.channels, self.side)
                continue
            try:
                v = np.array([float(x) for x in t.split()], dtype=np.float32)
            except ValueError:
                raise FormatError(None, f"image {i}: pixel values must be numbers") from None
            if v.size != n:
                raise FormatError(None, f"image {i}: {v.size} pixel values, the network takes {n} "
                                        f"({self.channels}x{self.side}x{self.side})")
            out[i] = v.reshape(self.channels, self.side, self.side)
        return out

    def check(self, ex: Examples) -> None:
        """Every example must be an image this network takes (one `DataError` naming the first
        that is not)."""
        check_images(ex, self.channels, self.side)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        import numpy as np
        import torch
        x = self.pixels(texts)
        rows = []
        with torch.inference_mode():
            for i in range(0, len(x), batch_size):
                rows.append(self.model(torch.from_numpy(x[i:i + batch_size])).numpy())
        return np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, self.dim), np.float32)


def build(art: ModelArtifact) -> ImageEncoder:
    return ImageEncoder(art)
