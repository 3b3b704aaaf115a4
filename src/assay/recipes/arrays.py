"""In-memory arrays in assay's terms: canonical dtype names, tensor digests (the same
`assay-tensor-v1` digests `assay id` computes from files) and a deterministic safetensors writer
for build outputs (sorted names, sorted metadata, no randomness: two equal builds write equal bytes).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping

import numpy as np

from assay.analyses.identity import TensorDigest, model_identity, tensor_digest
from assay.model.dtypes import DTYPES
from assay.model.tensor import TensorRecord

# canonical dtype name -> safetensors dtype code
_ST_CODES = {"bool": "BOOL", "uint8": "U8", "int8": "I8", "uint16": "U16", "int16": "I16",
             "uint32": "U32", "int32": "I32", "uint64": "U64", "int64": "I64", "float16": "F16",
             "bfloat16": "BF16", "float32": "F32", "float64": "F64"}


def canonical_dtype(arr: np.ndarray) -> str:
    """assay's canonical dtype name of a NumPy array (ValueError for object and string arrays)."""
    want = arr.dtype.newbyteorder("<") if arr.dtype.itemsize > 1 else arr.dtype
    for d in DTYPES.values():
        if not d.is_block and d.numpy == want:
            return d.name
    raise ValueError(f"arrays of dtype {arr.dtype} are not tensors assay can record")


def _canonical(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return np.ascontiguousarray(arr)


def array_digest(name: str, arr: np.ndarray) -> TensorDigest:
    """The `assay-tensor-v1` digest of an in-memory array."""
    arr = _canonical(arr)
    data = arr.reshape(-1).view(np.uint8) if arr.size else np.zeros(0, np.uint8)
    rec = TensorRecord(name, DTYPES[canonical_dtype(arr)], tuple(int(d) for d in arr.shape), None,
                       loader=lambda: memoryview(data))
    return tensor_digest(rec, threads=1)


def digests(tensors: Mapping[str, np.ndarray]) -> tuple[str, str, dict[str, str]]:
    """(content identity, named identity, {name: tensor digest}) of in-memory tensors."""
    ds = [array_digest(k, v) for k, v in sorted(tensors.items())]
    content, named = model_identity(ds)
    return content, named, {d.name: d.text for d in ds}


def write_safetensors(path: str, tensors: Mapping[str, np.ndarray],
                      metadata: Mapping[str, str] | None = None) -> None:
    """Write tensors as safetensors, byte-for-byte the same for the same tensors and metadata."""
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in sorted(metadata.items())}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        arr = _canonical(tensors[name])
        code = _ST_CODES.get(canonical_dtype(arr))
        if code is None:
            raise ValueError(f"tensor {name!r}: dtype {arr.dtype} cannot be written as safetensors")
        blob = arr.tobytes()
        header[name] = {"dtype": code, "shape": [int(d) for d in arr.shape],
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = f"{path}.partial"
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)))
        fh.write(text)
        for blob in blobs:
            fh.write(blob)
    os.replace(tmp, path)
