"""assay: read, scan, identify and trace pretrained model weights without executing them.

Public API: `open_model`, `inspect`, `identify`, `verify`, `diff`, `scan`, the tensor model
(`ModelArtifact`, `TensorRecord`, `Observation`), `Limits`, and the errors rooted at `AssayError`.

The names are imported when first used (`assay.scan`, `from assay import scan`), so that the
command line, which imports this package first, only pays for the modules its command needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from assay._lazy import lazy_names

if TYPE_CHECKING:
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

# public name -> the module that defines it
_WHERE = {
    **dict.fromkeys(("diff", "identify", "inspect", "open_model", "scan", "verify"), "assay.api"),
    **dict.fromkeys(("AssayError", "FormatError", "LimitError", "UnknownFormatError",
                     "UnsupportedError", "UsageError"), "assay.errors"),
    "Limits": "assay.limits",
    **dict.fromkeys(("ModelArtifact", "Observation", "TensorRecord"), "assay.model"),
}


__getattr__, __dir__ = lazy_names(__name__, globals(), _WHERE)
