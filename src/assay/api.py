"""The public Python API: the only module that joins format readers to analyses.

    >>> import assay
    >>> art = assay.open_model("model.safetensors")      # never executes file content
    >>> art.tensors[0].name, art.tensors[0].read().shape
    >>> assay.inspect("model.safetensors").parameters
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from assay.analyses.summary import Summary, summarize
from assay.errors import FormatError, UsageError
from assay.formats import read_path
from assay.limits import DEFAULT_LIMITS, Limits
from assay.model.artifact import ModelArtifact

if TYPE_CHECKING:
    from assay.analyses.diff import DiffResult
    from assay.analyses.identity import Identity, Manifest, Verification

# Analyses that need NumPy or BLAKE3 are imported by the functions that use them, so that
# reading a header (`inspect`) starts fast.


def open_model(path: str, limits: Limits = DEFAULT_LIMITS) -> ModelArtifact:
    """Read a weight file or model folder into the tensor model. Raises `AssayError` on bad input."""
    return read_path(str(path), limits)


def inspect(path: str, *, tensors: bool = False, limits: Limits = DEFAULT_LIMITS) -> Summary:
    """Summarise a weight file or folder: format, files, totals, dtypes, largest tensors."""
    return summarize(open_model(path, limits), with_tensors=tensors)


def identify(path: str, *, limits: Limits = DEFAULT_LIMITS,
             progress: Callable[[int], None] | None = None,
             on_open: Callable[[ModelArtifact], None] | None = None) -> Identity:
    """Content and named identity of the weights at `path` (see docs/identity.md)."""
    art = open_model(path, limits)
    if on_open:
        on_open(art)
    from assay.analyses import identity
    try:
        return identity.identify(art, progress)
    except OSError as exc:
        raise FormatError(path, f"read failed while hashing: {exc}") from None


def read_manifest(path: str) -> Manifest:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(64 << 20)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(path, f"cannot read manifest: {exc}") from None
    from assay.documents import manifest
    return manifest.from_text(text, path)


def verify(manifest_path: str, path: str, *, limits: Limits = DEFAULT_LIMITS,
           progress: Callable[[int], None] | None = None) -> Verification:
    """Check the weights at `path` against a manifest written by `assay id --manifest`."""
    from assay.analyses import identity
    m = read_manifest(manifest_path)
    return identity.verify(identify(path, limits=limits, progress=progress), m)


def diff(a: str, b: str, *, limits: Limits = DEFAULT_LIMITS,
         progress: Callable[[int], None] | None = None,
         on_open: Callable[[ModelArtifact, ModelArtifact], None] | None = None) -> DiffResult:
    """What changed from the weights at `a` to those at `b`, and how they relate."""
    art_a, art_b = open_model(a, limits), open_model(b, limits)
    if on_open:
        on_open(art_a, art_b)
    from assay.analyses import diff as diff_analysis
    try:
        return diff_analysis.diff(art_a, art_b, progress)
    except OSError as exc:
        raise FormatError(f"{a} / {b}", f"read failed while comparing: {exc}") from None
