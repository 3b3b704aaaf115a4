"""Files that carry chat templates but no weights: JSON configs (`tokenizer_config.json`,
`chat_template.json`) and Jinja template files. They are read so that scans see every template
a runtime would render; they hold no tensors.

`chat_template` may be a string or a list of `{"name", "template"}` objects (named templates).
"""

from __future__ import annotations

import json
from typing import Any

from assay.errors import FormatError, LimitError
from assay.formats.base import Probe, Reader, trailing
from assay.model.artifact import ModelArtifact

MAX_TEXT = 16 << 20


def _text(p: Probe, what: str) -> str:
    if p.size > MAX_TEXT:
        raise LimitError(p.path, f"{what}: {p.size} bytes is over the {MAX_TEXT}-byte limit")
    with open(p.path, "rb") as fh:
        raw = fh.read(MAX_TEXT + 1)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FormatError(p.path, f"{what}: not UTF-8 text") from None


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4      # a multi-byte character cut by the head's end
    return True


def _text_prefix(head: bytes) -> bytes:
    """The head up to its first NUL or invalid UTF-8 byte (a JSON file may carry data after it)."""
    head = head.split(b"\x00", 1)[0]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return head[:exc.start]
    return head


def sniff_json(p: Probe) -> bool:
    head = _text_prefix(p.head).lstrip()
    return head[:1] == b"{" and head[1:].lstrip()[:1] in (b'"', b"}") and p.size <= MAX_TEXT


def record_templates(art: ModelArtifact, value: Any, path: str, key: str = "chat_template") -> None:
    if isinstance(value, str):
        art.observe("template", key, path, text=value)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict) and isinstance(item.get("template"), str):
                art.observe("template", f"{key}[{item.get('name', i)}]", path, text=item["template"])


def read_json(p: Probe) -> ModelArtifact:
    if p.size > MAX_TEXT:
        raise LimitError(p.path, f"json: {p.size} bytes is over the {MAX_TEXT}-byte limit")
    with open(p.path, "rb") as fh:
        raw = fh.read(MAX_TEXT + 1)
    bom = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    text = raw[bom:].decode("utf-8", "surrogateescape")
    try:
        doc, end = json.JSONDecoder().raw_decode(text, len(text) - len(text.lstrip()))
    except (ValueError, RecursionError) as exc:
        raise FormatError(p.path, f"json: not valid JSON ({exc})") from None
    stop = bom + len(text[:end].encode("utf-8", "surrogateescape"))
    try:
        raw[:stop].decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(p.path, "json: not UTF-8 text") from None
    art = ModelArtifact(path=p.path, format="json-config", files=[p.path])
    after = raw[stop:]
    trailing(art, p.path, raw, stop + len(after) - len(after.lstrip()), what="the JSON document")
    if isinstance(doc, dict):
        record_templates(art, doc.get("chat_template"), p.path)
        art.metadata["json"] = {"keys": sorted(doc)[:64]}
    return art


def sniff_jinja(p: Probe) -> bool:
    return _is_text(p.head) and (b"{%" in p.head or b"{{" in p.head)


def read_jinja(p: Probe) -> ModelArtifact:
    art = ModelArtifact(path=p.path, format="jinja-template", files=[p.path])
    art.observe("template", "template file", p.path, text=_text(p, "jinja"))
    return art


READERS = [
    Reader("json-config", sniff_json, read_json, "JSON configuration (chat templates are recorded)"),
    Reader("jinja-template", sniff_jinja, read_jinja, "Jinja chat template file"),
]
