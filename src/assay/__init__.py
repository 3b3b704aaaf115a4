"""assay: read, scan, identify and trace pretrained model weights without executing them.

Public API: `open_model`, `inspect`, `identify`, `verify`, `diff`, `scan`, the tensor model
(`ModelArtifact`, `TensorRecord`, `Observation`), `Limits`, and the errors rooted at `AssayError`.
"""

from assay.api import diff, identify, inspect, open_model, scan, verify
from assay.errors import (
    AssayError,
    FormatError,
    LimitError,
    UnknownFormatError,
    UnsupportedError,
    UsageError,
)
from assay.limits import Limits
from assay.model import ModelArtifact, Observation, TensorRecord

__version__ = "0.1.0"

__all__ = [
    "AssayError", "FormatError", "LimitError", "Limits", "ModelArtifact", "Observation",
    "TensorRecord", "UnknownFormatError", "UnsupportedError", "UsageError", "__version__",
    "diff", "identify", "inspect", "open_model", "scan", "verify",
]
