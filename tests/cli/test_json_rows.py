"""The scan report's JSON layout: one key per line, one list item (a scanned file) per line."""

from __future__ import annotations

import json

from assay.cli.common import json_rows


def test_rows_parse_back_to_the_document_one_item_per_line() -> None:
    doc = {"schema": "x/1", "totals": {"files": 2}, "empty": [],
           "files": [{"path": "a\nb", "findings": [{"rule": "R1", "offset": None}]},
                     {"path": "ü", "n": 1.5, "ok": True}]}
    text = json_rows(doc)
    assert json.loads(text) == doc
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert '  "totals": {"files": 2},' in lines and '  "empty": [],' in lines
    rows = [line for line in lines if line.startswith('    {"path"')]
    assert len(rows) == 2 and all(json.loads(r.rstrip(",")) in doc["files"] for r in rows)
