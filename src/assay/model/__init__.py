"""The in-memory model: `ModelArtifact`, `TensorRecord`, the canonical dtype table."""

from assay.model.artifact import Location, ModelArtifact, Observation
from assay.model.dtypes import DTYPES, DType, dtype, from_numpy, register_block_dtype
from assay.model.tensor import ByteSpan, TensorRecord, map_file, register_decoder

__all__ = ["DTYPES", "ByteSpan", "DType", "Location", "ModelArtifact", "Observation",
           "TensorRecord", "dtype", "from_numpy", "map_file", "register_block_dtype",
           "register_decoder"]
