"""The only layer that knows file formats. One ordered table picks the reader by content.

The first reader whose `sniff` accepts a file's content reads it; file names are never used to
choose. Folders go to the folder reader, which reads each weight file through this same table.
"""

from __future__ import annotations

import os

from assay.errors import FormatError, UnknownFormatError, UsageError
from assay.formats.base import Probe, Reader
from assay.limits import DEFAULT_LIMITS, Limits
from assay.model.artifact import ModelArtifact


def _readers() -> list[Reader]:
    # Reader modules import their heavy libraries (onnx, h5py, gguf) only inside `read`.
    from assay.formats import (
        gguf_format,
        keras,
        leela,
        numpy_format,
        onnx_format,
        plain_pickle,
        pytorch,
        safetensors,
        sklearn,
        templates,
    )

    table = [safetensors.READER, pytorch.ZIP_READER, numpy_format.NPY_READER,
             numpy_format.NPZ_READER, pytorch.LEGACY_READER, pytorch.TAR_READER]
    for mod in (gguf_format, keras, onnx_format, leela, sklearn, plain_pickle, templates):
        table.extend(mod.READERS)
    return sorted(table, key=lambda r: ORDER.index(r.name))


# The order in which readers are asked. Specific magic bytes first, generic containers last.
ORDER = [
    "safetensors", "gguf", "numpy-npy", "hdf5-keras", "pytorch-zip", "keras", "numpy-npz",
    "pytorch-legacy", "pytorch-tar", "lc0", "leela-zero", "joblib", "onnx", "pickle",
    "json-config", "jinja-template",
]

_TABLE: list[Reader] | None = None


def readers() -> list[Reader]:
    global _TABLE
    if _TABLE is None:
        _TABLE = _readers()
    return _TABLE


def detect(path: str, limits: Limits = DEFAULT_LIMITS) -> tuple[Reader, Probe]:
    probe = Probe.of(path, limits)
    if probe.size == 0:
        raise UnknownFormatError(path, "file is empty")
    for r in readers():
        if r.sniff(probe):
            return r, probe
    if probe.zip_error is not None:
        raise probe.zip_error
    raise UnknownFormatError(path, "not a model weight format assay recognises "
                             f"(first bytes {probe.head[:8].hex()})")


def read_file(path: str, limits: Limits = DEFAULT_LIMITS) -> ModelArtifact:
    reader, probe = detect(path, limits)
    return reader.read(probe)


def read_path(path: str, limits: Limits = DEFAULT_LIMITS) -> ModelArtifact:
    """Read a file or a model folder into one `ModelArtifact`."""
    if not os.path.exists(path):
        raise UsageError(path, "no such file or folder")
    if os.path.isdir(path):
        from assay.formats import folder
        return folder.read_folder(path, limits)
    if not os.path.isfile(path):
        raise UsageError(path, "not a regular file")
    try:
        return read_file(path, limits)
    except RecursionError:
        raise FormatError(path, "structure nested too deeply") from None
    except MemoryError:
        raise FormatError(path, "structure too large for memory") from None


__all__ = ["ORDER", "Probe", "Reader", "detect", "read_file", "read_path", "readers"]
