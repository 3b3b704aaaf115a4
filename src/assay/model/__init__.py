"""The in-memory model: `ModelArtifact`, `TensorRecord`, the canonical dtype table.

The names are imported from their modules when first used, so that a process that needs only
one of them (a scan's parent reading `Location`s back from its workers) imports only its module."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assay.model.artifact import Location, ModelArtifact, Observation
    from assay.model.dtypes import DTYPES, DType, dtype, from_numpy, register_block_dtype
    from assay.model.tensor import ByteSpan, TensorRecord, map_file, register_decoder

__all__ = ["DTYPES", "ByteSpan", "DType", "Location", "ModelArtifact", "Observation",
           "TensorRecord", "dtype", "from_numpy", "map_file", "register_block_dtype",
           "register_decoder"]

# public name -> the module that defines it
_WHERE = {
    **dict.fromkeys(("Location", "ModelArtifact", "Observation"), "assay.model.artifact"),
    **dict.fromkeys(("DTYPES", "DType", "dtype", "from_numpy", "register_block_dtype"),
                    "assay.model.dtypes"),
    **dict.fromkeys(("ByteSpan", "TensorRecord", "map_file", "register_decoder"), "assay.model.tensor"),
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'assay.model' has no attribute {name!r}")
    from importlib import import_module
    value = getattr(import_module(where), name)
    globals()[name] = value            # once: later lookups do not come back here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
