"""The in-memory model: `ModelArtifact`, `TensorRecord`, the canonical dtype table.

The names are imported from their modules when first used, so that a process that needs only
one of them (a scan's parent reading `Location`s back from its workers) imports only its module."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assay._lazy import lazy_names

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


__getattr__, __dir__ = lazy_names(__name__, globals(), _WHERE)
