"""The only layer that knows file formats. One ordered table picks the reader by content.

The first reader whose `sniff` accepts a file's content reads it; file names are never used to
choose. Folders go to the folder reader, which reads each weight file through this same table.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from assay._lazy import lazy_names
from assay.errors import FormatError, UnknownFormatError, UsageError
from assay.limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from assay.formats.base import Probe, Reader
    from assay.model.artifact import ModelArtifact

# The order in which readers are asked: specific magic bytes first, generic containers last.
# Each entry names its module; a module is imported only when its reader is asked, so reading
# a safetensors file never imports the ONNX, HDF5 or GGUF readers.
TABLE: list[tuple[str, str]] = [
    ("safetensors", "safetensors"), ("gguf", "gguf_format"), ("numpy-npy", "numpy_format"),
    ("hdf5-keras", "keras"), ("pytorch-zip", "pytorch"), ("keras", "keras"),
    ("numpy-npz", "numpy_format"), ("pytorch-legacy", "pytorch"), ("pytorch-tar", "pytorch"),
    ("lc0", "leela"), ("leela-zero", "leela"), ("joblib", "sklearn"), ("onnx", "onnx_format"),
    ("gensim-keyedvectors", "wordvec"), ("word2vec-binary", "wordvec"), ("word-vectors-text", "wordvec"),
    ("pickle", "plain_pickle"), ("zip", "plain_zip"), ("json-config", "templates"),
    ("jinja-template", "templates"),
]
ORDER = [name for name, _ in TABLE]

_LOADED: dict[str, Reader] = {}


# the readers' shared types load with the first reader: a process that only asks which
# libraries files need (the scan's parent) never imports them
__getattr__, __dir__ = lazy_names(__name__, globals(), dict.fromkeys(("Probe", "Reader"),
                                                                   "assay.formats.base"))


def _module_readers(module: str) -> list[Reader]:
    import importlib

    from assay.formats.base import Reader

    mod = importlib.import_module(f"assay.formats.{module}")
    found: list[Reader] = []
    for value in vars(mod).values():
        if isinstance(value, Reader):
            found.append(value)
        elif isinstance(value, list) and value and all(isinstance(v, Reader) for v in value):
            found.extend(value)
    return found


def reader(name: str) -> Reader:
    """The reader called `name`, importing its module on first use."""
    if name not in _LOADED:
        module = dict(TABLE)[name]
        for r in _module_readers(module):
            _LOADED.setdefault(r.name, r)
        if name not in _LOADED:
            raise LookupError(f"module assay.formats.{module} has no reader {name!r}")
    return _LOADED[name]


def readers() -> list[Reader]:
    """Every reader, in the order they are asked."""
    return [reader(name) for name in ORDER]


def _libraries(head: bytes) -> tuple[str, ...]:
    """Libraries that reading (and scanning) a file with this head will import. Weights are
    read without any: the pickle machine, the protobuf walk, the GGUF parser, the HDF5
    structure reader and NumPy's type strings are assay's own (h5py still reads HDF5 files
    using what that reader does not, and datasets stored in chunks). Chat templates are
    analysed with Jinja's parser."""
    if head[:4] == b"GGUF":
        return ("jinja2",)                # GGUF metadata often carries a chat template
    if head[:4] == b"PK\x03\x04" or head[:6] == b"\x93NUMPY" or head[:1] == b"\x80":
        return ()
    if b"{%" in head or b"chat_template" in head:
        return ("jinja2",)
    return ()


def libraries_needed(paths: list[str]) -> list[tuple[str, ...]]:
    """For each file, the libraries reading it will import (from its first 4 KiB)."""
    out: list[tuple[str, ...]] = []
    for path in paths:
        try:
            with open(path, "rb") as fh:
                out.append(_libraries(fh.read(4096)))
        except OSError:
            out.append(())
    return out


def detect(path: str, limits: Limits = DEFAULT_LIMITS) -> tuple[Reader, Probe]:
    from assay.formats.base import Probe
    probe = Probe.of(path, limits)
    if probe.size == 0:
        raise UnknownFormatError(path, "file is empty")
    for name in ORDER:
        r = reader(name)
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


__all__ = ["ORDER", "TABLE", "Probe", "Reader", "detect", "read_file", "read_path", "reader", "readers"]
