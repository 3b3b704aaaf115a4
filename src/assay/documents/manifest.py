"""The identity manifest (`assay.manifest/1`): per-tensor digests that pin weights by content."""

from __future__ import annotations

import json
import re
from typing import Any

from assay.analyses.identity import MODEL_V, TENSOR_V, Manifest, TensorDigest
from assay.errors import FormatError

SCHEMA = "assay.manifest/1"
_MODEL = re.compile(rf"^{MODEL_V}:[0-9a-f]{{64}}$")
_TENSOR = re.compile(rf"^{TENSOR_V}:([0-9a-f]{{64}})$")


def to_json(m: Manifest) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "content_identity": m.content,
        "named_identity": m.named,
        "tensors": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape), "digest": t.text}
                    for t in sorted(m.tensors, key=lambda t: t.name)],
    }


def from_text(text: str, path: str) -> Manifest:
    """Parse a manifest; every field is checked, a bad one is a FormatError naming it."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise FormatError(path, f"manifest is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise FormatError(path, f"not an {SCHEMA} document")
    content, named, tensors = doc.get("content_identity"), doc.get("named_identity"), doc.get("tensors")
    if not (isinstance(content, str) and _MODEL.match(content)):
        raise FormatError(path, "manifest content_identity is missing or malformed")
    if not (isinstance(named, str) and _MODEL.match(named)):
        raise FormatError(path, "manifest named_identity is missing or malformed")
    if not isinstance(tensors, list):
        raise FormatError(path, "manifest tensors must be a list")
    out = []
    for i, t in enumerate(tensors):
        if not isinstance(t, dict):
            raise FormatError(path, f"manifest tensor {i} is not an object")
        m = _TENSOR.match(str(t.get("digest", "")))
        shape = t.get("shape")
        if not (m and isinstance(t.get("name"), str) and isinstance(t.get("dtype"), str)
                and isinstance(shape, list) and all(isinstance(d, int) for d in shape)):
            raise FormatError(path, f"manifest tensor {i} needs name, dtype, shape and digest")
        out.append(TensorDigest(t["name"], t["dtype"], tuple(shape), bytes.fromhex(m.group(1))))
    return Manifest(content, named, tuple(out))
