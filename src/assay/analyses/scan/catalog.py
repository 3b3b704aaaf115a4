"""The scan's rule IDs: data only, so that rendering results needs no rule code."""

from __future__ import annotations

# Every ID a rule can report, for documentation and SARIF: id -> (family, severity, title).
CATALOG: dict[str, tuple[str, str, str]] = {
    "PICKLE001": ("pickle", "critical", "Dangerous callable imported or called"),
    "PICKLE002": ("pickle", "medium", "Import not known to be safe in this kind of file"),
    "PICKLE003": ("pickle", "critical", "Attribute traversal in an imported name"),
    "PICKLE004": ("pickle", "high", "Dynamic attribute access"),
    "PICKLE005": ("pickle", "critical", "Import machinery or interpreter internals"),
    "PICKLE006": ("pickle", "high", "Nested pickle"),
    "PICKLE007": ("pickle", "medium", "Extension-registry opcodes"),
    "PICKLE008": ("pickle", "high", "Pickle where none is expected"),
    "ARCHIVE001": ("archive", "high", "Member path leaves the extraction folder"),
    "ARCHIVE002": ("archive", "high", "Local and central headers disagree"),
    "ARCHIVE003": ("archive", "high", "Duplicate member names"),
    "ARCHIVE004": ("archive", "high", "Overlapping member data"),
    "ARCHIVE005": ("archive", "medium", "CRC-32 mismatch"),
    "ARCHIVE006": ("archive", "high", "Compression bomb"),
    "ARCHIVE007": ("archive", "medium", "Encrypted member"),
    "ARCHIVE008": ("archive", "medium", "Nested archive"),
    "ARCHIVE009": ("archive", "high", "Polyglot file"),
    "ARCHIVE010": ("archive", "medium", "Legacy tar-format PyTorch file"),
    "KERAS001": ("keras", "critical", "Lambda layer"),
    "KERAS002": ("keras", "high", "Custom code outside keras"),
    "KERAS003": ("keras", "high", "Config names a file or URL loader"),
    "ONNX001": ("onnx", "high", "External data outside the model folder"),
    "ONNX002": ("onnx", "medium", "Operator from a custom domain"),
    "GGUF001": ("gguf", "high", "Malformed GGUF header"),
    "SAFETENSORS001": ("safetensors", "high", "Header breaks the safetensors format"),
    "FORMAT001": ("format", "medium", "Content does not match the file extension"),
    "FORMAT002": ("format", "high", "Data after the end of the format"),
    "TEMPLATE001": ("template", "critical", "Chat template reaches Python internals"),
    "TEMPLATE002": ("template", "high", "Chat template leaves the sandbox's intended surface"),
}
