"""The public Python API: the only module that joins format readers to analyses.

    >>> import assay
    >>> art = assay.open_model("model.safetensors")      # never executes file content
    >>> art.tensors[0].name, art.tensors[0].read().shape
    >>> assay.inspect("model.safetensors").parameters
"""

from __future__ import annotations

from assay.analyses.summary import Summary, summarize
from assay.formats import read_path
from assay.limits import DEFAULT_LIMITS, Limits
from assay.model.artifact import ModelArtifact


def open_model(path: str, limits: Limits = DEFAULT_LIMITS) -> ModelArtifact:
    """Read a weight file or model folder into the tensor model. Raises `AssayError` on bad input."""
    return read_path(str(path), limits)


def inspect(path: str, *, tensors: bool = False, limits: Limits = DEFAULT_LIMITS) -> Summary:
    """Summarise a weight file or folder: format, files, totals, dtypes, largest tensors."""
    return summarize(open_model(path, limits), with_tensors=tensors)
