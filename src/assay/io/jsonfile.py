"""Small JSON side files (config.json, pooling and tokenizer configs), read under a size limit."""

from __future__ import annotations

import json
import os
from typing import Any

from assay.errors import FormatError, LimitError

MAX_SIDE_FILE = 16 << 20


def read_json_file(path: str, max_bytes: int = MAX_SIDE_FILE) -> Any:
    """The parsed document; one-line errors for an oversized, non-UTF-8 or invalid file."""
    if os.path.getsize(path) > max_bytes:
        raise LimitError(path, f"side file larger than {max_bytes} bytes")
    try:
        with open(path, "rb") as fh:
            return json.loads(fh.read().decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise FormatError(path, f"not valid JSON ({exc})") from None
